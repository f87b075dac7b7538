"""Templates: a layout, pages that extend it, view routes, error pages, async data.

python -m examples.templates.app        # then open http://127.0.0.1:8000/

Everything a template prints is escaped (try /?q=<script>alert(1)</script>);
/books/1 awaits an async function from inside the template.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import simples
from simples import HTTPConnection, HTTPError

BOOKS: list[dict[str, Any]] = [
    {"id": 1, "title": "The Left Hand of Darkness", "author": "Ursula K. Le Guin"},
    {"id": 2, "title": "Kindred", "author": "Octavia E. Butler"},
    {"id": 3, "title": "Solaris", "author": "Stanisław Lem"},
]
REVIEWS = {1: ["A classic.", "Cold & <warm>."], 2: ["Unputdownable."]}

server = simples.server()
# Relative to this file, so the example runs from any working directory; under
# `simples run --reload` templates are re-read when they change.
server.engine(simples.Jinja(Path(__file__).parent / "templates", trim_blocks=True))


def find(query: str) -> list[dict[str, Any]]:
    words = query.lower()
    return [book for book in BOOKS if words in book["title"].lower()]


@server.get("/")
async def books(connection: HTTPConnection) -> None:
    query = connection.query.get("q", "")
    await connection.render("books.html", {"books": find(query), "query": query})


async def reviews(book_id: int) -> list[str]:
    await asyncio.sleep(0.01)  # a database call, say
    return REVIEWS.get(book_id, ["No reviews yet."])


async def book_imports(connection: HTTPConnection) -> dict[str, Any]:
    """Imports for the view route: may be async, runs per request."""
    number = connection.params["id"]
    book = next((b for b in BOOKS if str(b["id"]) == number), None)
    if book is None:
        raise HTTPError(404)
    return {"book": book, "reviews": reviews}


# View shorthand: a template and its imports (a dict, or a function of the connection).
server.get("/books/:id", "book.html", book_imports)
server.get("/about", "about.html", {"blurb": "A tiny shop <em>rendered</em> by simples."})

# Error pages are views too; the 500 page shows when a template (or handler) fails.
server.error(404, "404.html")
server.error(500, "500.html")

if __name__ == "__main__":
    server.listen(8000)

"""Hello, simples: routes, params, query, cookies, headers, errors, middleware.

python -m examples.hello.app          # then open http://127.0.0.1:8000/
"""

from __future__ import annotations

import time
from typing import Any

import simples
from simples import HTTPConnection

server = simples.server()
server.logger()  # one access-log line per exchange


@server.use
async def timing(connection: HTTPConnection, next: Any) -> None:
    started = time.perf_counter()
    connection.on_start(_stamp(started))
    await next()


def _stamp(started: float) -> Any:
    async def add_header(connection: HTTPConnection, body: bytes | None) -> bytes | None:
        connection.header("Server-Timing", f"app;dur={(time.perf_counter() - started) * 1000:.2f}")
        return body

    return add_header


@server.get("/")
async def home(connection: HTTPConnection) -> str:
    return "Hello from simples! Try /users/42?q=hi or /teapot"


@server.get("/users/:id")
async def user(connection: HTTPConnection) -> dict[str, Any]:
    connection.cookie("seen", "1", http_only=True).header("X-Id", connection.params["id"])
    return {
        "id": connection.params["id"],
        "q": connection.query.get("q"),
        "langs": connection.langs,
    }


@server.get("/teapot")
async def teapot(connection: HTTPConnection) -> None:
    raise simples.HTTPError(418)


@server.error(404)
async def not_found(connection: HTTPConnection) -> dict[str, str]:
    return {"error": "not found", "path": connection.path}


if __name__ == "__main__":
    server.listen(8000)

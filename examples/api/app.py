"""A typed JSON API: typed parameters, named routes, validated bodies, OpenAPI.

python -m examples.api.app            # then GET http://127.0.0.1:8000/openapi.json

    curl -X POST localhost:8000/notes -d '{"title": "milk", "tags": ["home"]}'
    curl localhost:8000/notes/1
    curl -X POST localhost:8000/notes -d '{"title": 3}'      # 422, problem+json

See docs/types.md.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import simples
from simples import HTTPConnection


@dataclasses.dataclass
class NoteIn:
    title: str
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Note:
    id: int
    title: str
    tags: list[str]
    token: str


server = simples.server()
api = server.router("/api")  # names cover sub-routers: url_for("note", id=1) is /api/notes/1
notes: dict[int, Note] = {}


@api.get("/notes", name="notes", returns=list[Note])
async def list_notes(connection: HTTPConnection) -> dict[str, Any]:
    """List the notes, a page at a time."""
    page = connection.query.get("page", 1, type=int)  # ?page=x answers 400
    size = connection.query.get("size", 10, type=int)
    chosen = sorted(notes)[(page - 1) * size : page * size]
    following = connection.url_for("notes", query={"page": page + 1, "size": size})
    return {"notes": [notes[key] for key in chosen], "next": following}


@api.post("/notes", name="create_note", body=NoteIn, returns=Note)
async def create_note(connection: HTTPConnection) -> Note:
    """Create a note.

    The body is validated into ``NoteIn``: a body of the wrong shape answers 422."""
    data: NoteIn = await connection.body().json()
    note = Note(len(notes) + 1, data.title, data.tags, str(uuid.uuid4()))
    notes[note.id] = note
    connection.status(201).header("location", connection.url_for("note", id=note.id))
    return note


@api.get("/notes/:id<int>", name="note", returns=Note)
async def get_note(connection: HTTPConnection) -> Note:
    """One note by its number (``/notes/abc`` is a 404: it does not match)."""
    note = notes.get(connection.params["id"])
    if note is None:
        raise simples.HTTPError(404)
    return note


@api.get("/by-token/:token<uuid>", name="note_by_token", returns=Note)
async def by_token(connection: HTTPConnection) -> Note:
    """One note by its token."""
    for note in notes.values():
        if note.token == str(connection.params["token"]):
            return note
    raise simples.HTTPError(404)


@server.get("/openapi.json")
async def openapi(connection: HTTPConnection) -> dict[str, Any]:
    """This API's OpenAPI 3.1 document."""
    return server.openapi("Notes", "1.0")


if __name__ == "__main__":
    server.listen(8000)

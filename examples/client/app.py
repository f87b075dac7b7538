"""The client: a small notes API, tested in-process, then called over the network.

python -m examples.client.app            # runs both checks and prints what it did

What it shows: ``simples.client(server)`` running the app's lifespan and talking
to it with no socket (``get``, ``post(...).send``, ``qs``, cookies kept between
requests, a WebSocket), then ``simples.client(base=...)`` calling the same app
served on a loopback port, and ``ClientError`` for what goes wrong.
"""

from __future__ import annotations

import asyncio
from typing import Any

import simples
from simples import HTTPConnection

server = simples.server()
notes: list[dict[str, Any]] = []


@server.post("/login")
async def login(connection: HTTPConnection) -> dict[str, str]:
    user = (await connection.body().qs()).get("user") or "anonymous"
    connection.cookie("user", user, http_only=True, path="/")
    return {"user": user}


@server.post("/notes")
async def create(connection: HTTPConnection) -> None:
    user = connection.cookies.get("user")
    if user is None:
        raise simples.HTTPError(401)
    note = await connection.body(limit=10_000).json()
    saved = {"id": len(notes) + 1, "user": user, "text": str(note.get("text", ""))}
    notes.append(saved)
    await server.channel("notes").broadcast(saved)
    await connection.status(201).send(saved)


@server.get("/notes")
async def listing(connection: HTTPConnection) -> list[dict[str, Any]]:
    return notes


@server.ws("/live")
async def live(ws: Any) -> None:
    server.channel("notes").bind(ws)
    await ws.send("hello")
    async for _ in ws:
        pass


async def in_process() -> None:
    """What a test does: no socket, the lifespan runs around the block."""
    async with simples.client(server) as client:
        refused = await client.post("/notes").send({"text": "no cookie yet"})
        assert refused.status == 401
        await client.post("/login").qs({"user": "ann"})  # the jar keeps the cookie
        ws = await client.ws("/live")
        assert (await ws.receive()).data == "hello"
        created = await client.post("/notes").type("json").send({"text": "hi"})
        assert created.status == 201
        assert (await created.json())["user"] == "ann"
        pushed = await ws.receive()
        print("in-process: created", await created.json(), "pushed", pushed.data)
        await ws.close()


async def over_the_network() -> None:
    """The same app served on a free loopback port, called like any other service."""
    host, port = (await server.start(0, "127.0.0.1"))[0]
    try:
        async with simples.client(base=f"http://{host}:{port}", timeout=5) as client:
            response = await client.get("/notes")
            print("network: GET /notes", response.status, await response.json())
            try:
                await (await client.get("/notes")).json(limit=2)
            except simples.ClientError as error:
                print("network: a limit works as a guard:", error.message[:60], "...")
    finally:
        await server.stop()


async def main() -> None:
    await in_process()
    await over_the_network()


if __name__ == "__main__":
    asyncio.run(main())

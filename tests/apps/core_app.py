"""A small app served by separate processes in tests (CLI, listen(), granian)."""

from __future__ import annotations

import asyncio
import os
import sys

import simples
from simples import HTTPConnection

server = simples.server()


@server.get("/")
async def home(connection: HTTPConnection) -> dict[str, object]:
    return {"pid": os.getpid(), "protocol": connection.protocol}


@server.get("/users/:id")
async def user(connection: HTTPConnection) -> dict[str, object]:
    connection.cookie("seen", "1", http_only=True).header("X-Id", connection.params["id"])
    return {
        "id": connection.params["id"],
        "q": connection.query.get("q"),
        "langs": connection.langs,
    }


@server.get("/slow")
async def slow(connection: HTTPConnection) -> str:
    print("slow started", flush=True)  # a test waits for it before it signals
    await asyncio.sleep(float(connection.query.get("s", "1")))
    return "finished"


@server.get("/stream")
async def stream(connection: HTTPConnection) -> None:
    for index in range(3):
        await connection.write(f"{index}\n")
    await connection.end()


server.on("stop", lambda: print("stop callback ran", flush=True))

if __name__ == "__main__":
    engine = sys.argv[2] if len(sys.argv) > 2 else "uvicorn"
    server.listen(int(sys.argv[1]), engine=engine)

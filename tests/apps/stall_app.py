"""Served by a separate process in tests/test_loop_stall.py: the event loop's
responsiveness is measured without the test process's threads in the way."""

from __future__ import annotations

import simples
from simples import HTTPConnection, WebSocketConnection

server = simples.server()


@server.get("/ping")
async def ping(connection: HTTPConnection) -> str:
    return "pong"


@server.post("/stream")
async def stream(connection: HTTPConnection) -> dict[str, int]:
    size = 0
    async for chunk in connection.body(limit=0):
        size += len(chunk)
    return {"size": size}


@server.ws("/echo")
async def echo(ws: WebSocketConnection) -> None:
    async for message in ws:
        await ws.send(message.data)

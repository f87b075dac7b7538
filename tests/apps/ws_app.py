"""A small WebSocket app served by a separate process (granian, listen())."""

from __future__ import annotations

import sys

import simples
from simples import WebSocketConnection

server = simples.server()


@server.ws("/echo/:name", protocols=["v1"])
async def echo(ws: WebSocketConnection) -> None:
    async for message in ws:
        await ws.send(f"{ws.params['name']} {ws.protocol} {ws.subprotocol} {message.data}")


@server.ws("/no")
async def no(ws: WebSocketConnection) -> None:
    await ws.error(401)


if __name__ == "__main__":
    engine = sys.argv[2] if len(sys.argv) > 2 else "uvicorn"
    server.listen(int(sys.argv[1]), engine=engine)

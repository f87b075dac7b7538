"""A WebSocket app for the cross-process broker tests.

Each worker process runs it with a ``RedisBroker`` on the Redis named by
``SIMPLES_TEST_REDIS``, either through ``server.listen()``
(``python -m tests.apps.ws_broker_app PORT``) or through uvicorn's own command
line (``python -m uvicorn tests.apps.ws_broker_app:server``).
"""

from __future__ import annotations

import os
import sys

import simples
from simples import HTTPConnection, WebSocketConnection

broker = simples.RedisBroker(
    os.environ["SIMPLES_TEST_REDIS"], channel="simples-test:ws", timeout=1.0, heartbeat=1.0
)
server = simples.server()
server.config(broker=broker)


@server.get("/pid")
async def pid(connection: HTTPConnection) -> dict[str, object]:
    return {"pid": os.getpid(), "broker": broker.connected}


@server.ws("/room/:name")
async def room(ws: WebSocketConnection) -> None:
    channel = server.channel(ws.params["name"])
    channel.bind(ws)
    await ws.send(f"joined {os.getpid()}")
    async for message in ws:
        text = message.data
        if text.startswith("all:"):
            await server.broadcast(text[4:])
        elif text.startswith("bin:"):
            await channel.broadcast(text[4:].encode())
        elif text.startswith("others:"):
            await channel.broadcast(text[7:], filter=lambda other: other is not ws)
        else:
            await channel.broadcast({"pid": os.getpid(), "text": text})


if __name__ == "__main__":
    server.listen(int(sys.argv[1]))

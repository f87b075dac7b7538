"""Chat rooms over WebSocket: one channel per room, names from the session.

    python examples/chat/app.py                       # one process
    REDIS_URL=redis://127.0.0.1:6379/0 simples run examples.chat.app:server --workers 4

Then open http://127.0.0.1:8000/ in two windows. With ``REDIS_URL`` the rooms
span every worker process (and every machine on that Redis).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import simples
from simples import HTTPConnection, WebSocketConnection

PORT = int(os.environ.get("PORT", "8000"))
HERE = Path(__file__).resolve().parent

server = simples.server()
server.session()  # the name typed on the page lives in the session
server.static(str(HERE / "public"))
if os.environ.get("REDIS_URL"):
    server.config(broker=simples.RedisBroker(os.environ["REDIS_URL"]))

# Browsers always send Origin on a WebSocket handshake: only this site's pages
# may open one (another site's page would ride on the user's session cookie).
ORIGINS = [f"http://127.0.0.1:{PORT}", f"http://localhost:{PORT}"]


@server.post("/name")
async def set_name(connection: HTTPConnection) -> dict[str, str]:
    form = await connection.body().qs()
    name = (form.get("name") or "").strip()[:32]
    if not name:
        connection.status(400)
        return {"error": "a name, please"}
    assert connection.session is not None
    connection.session["user"] = name
    return {"name": name}


@server.ws("/chat/:room", limit=16_000, origins=ORIGINS, timeout=300)
async def chat(ws: WebSocketConnection) -> None:
    assert ws.session is not None
    user = ws.session.get("user") or "anonymous"
    room = server.channel("room:" + ws.params["room"])
    room.bind(ws)
    await room.broadcast({"kind": "joined", "from": user, "at": time.time()})

    async def left(info: dict[str, Any]) -> None:
        # a close listener runs however the socket ended (closed, lost, timed out)
        await room.broadcast({"kind": "left", "from": user, "at": time.time()})

    ws.on("close", left)
    async for message in ws:
        if message.type != "text" or not message.data.strip():
            continue
        said = {"kind": "said", "from": user, "text": message.data, "at": time.time()}
        await room.broadcast(said)


if __name__ == "__main__":
    server.listen(PORT)

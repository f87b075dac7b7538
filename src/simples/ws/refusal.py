"""Refusing a WebSocket handshake with an HTTP status.

With the ASGI "WebSocket Denial Response" extension
(https://asgi.readthedocs.io/en/latest/extensions.html#websocket-denial-response)
the answer goes through the router's error routes, as for an HTTP request;
without it the socket is closed before being accepted, which servers answer
with 403.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..errors import reason_phrase
from ..types import Message as ASGIMessage
from ..types import Scope, Send

if TYPE_CHECKING:
    from .connection import WebSocketConnection

__all__ = ["refuse"]

logger = logging.getLogger("simples")


async def refuse(
    scope: Scope, send: Send, code: int, ws: WebSocketConnection | None = None
) -> None:
    """Answer a handshake with HTTP status ``code``: through the router's error
    routes when the server supports ``websocket.http.response``, else by closing
    before accepting (servers answer that with 403)."""
    if "websocket.http.response" not in (scope.get("extensions") or {}):
        await send({"type": "websocket.close", "code": 1008})
        return

    async def as_websocket(message: ASGIMessage) -> None:
        kind = message["type"]
        if kind in ("http.response.start", "http.response.body"):
            message = {**message, "type": "websocket." + kind}
        await send(message)

    if ws is not None:
        from ..connection import HTTPConnection

        connection = HTTPConnection(scope, ws.request.receive, as_websocket, ws.router, ws.host)
        connection.forwarded(ws.ip, "https" if ws.protocol == "wss" else "http", None)
        connection.adopt(ws)
        try:
            await connection.error(code)
            return
        except Exception as exc:
            if connection.started:
                return
            logger.error("error route %d failed on a WebSocket handshake", code, exc_info=exc)
    body = reason_phrase(code).encode()
    await send({
        "type": "websocket.http.response.start",
        "status": code,
        "headers": [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
        ],
    })
    await send({"type": "websocket.http.response.body", "body": body})

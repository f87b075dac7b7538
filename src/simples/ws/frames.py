"""What goes over a WebSocket: received messages, close codes, outgoing frames.

Close codes follow RFC 6455 §7.4 and the IANA "WebSocket Close Code Number"
registry; the ASGI messages are those of the ASGI WebSocket specification
(https://asgi.readthedocs.io/en/latest/specs/www.html#websocket).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterable
from typing import Any, Final

from ..encode import dumps_json
from ..types import Message as ASGIMessage

__all__ = [
    "RESERVED_EVENTS",
    "Message",
    "WebSocketClosed",
    "check_close",
    "encode_frame",
]

# Close codes an endpoint may send (RFC 6455 §7.4, IANA registry). 1004-1006
# and 1015 are reserved, 1010 is the client's to send.
_SENDABLE_CODES: Final = frozenset(
    {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011, 1012, 1013, 1014}
)
# Event names a client can never trigger in advanced mode: they belong to the
# connection's own life cycle (``ws.on("close", fn)``).
RESERVED_EVENTS: Final = frozenset({"close", "error", "message", "open"})


class WebSocketClosed(Exception):
    """Raised by ``send``/``receive`` on a connection that is over. Escaping a
    handler it is not an error: the client left."""

    def __init__(self, code: int = 1006, reason: str = "") -> None:
        self.code = code
        self.reason = reason
        super().__init__(code, reason)


def check_close(code: int, reason: str) -> None:
    """Raise ``ValueError`` unless a server may send this close code and reason."""
    if type(code) is not int or not (code in _SENDABLE_CODES or 3000 <= code <= 4999):
        raise ValueError(
            f"close code {code!r} cannot be sent: use 1000-1003, 1007-1009, 1011-1014 "
            "or an application code in 3000-4999"
        )
    if not isinstance(reason, str):
        raise TypeError(f"a close reason is a str, not {type(reason).__name__}")
    if len(reason.encode()) > 123:
        raise ValueError("a close reason is at most 123 bytes of UTF-8 (RFC 6455 §5.5)")


def encode_frame(data: Any) -> tuple[ASGIMessage, int]:
    """What ``send(data)`` puts on the wire and its size: str → text, bytes →
    binary, anything else → JSON text."""
    kind = type(data)
    if kind is str:
        return {"type": "websocket.send", "text": data}, len(data)
    if kind is bytes:
        return {"type": "websocket.send", "bytes": data}, len(data)
    if isinstance(data, bytearray | memoryview):
        raw = bytes(data)
        return {"type": "websocket.send", "bytes": raw}, len(raw)
    if isinstance(data, str):
        return {"type": "websocket.send", "text": str(data)}, len(data)
    text = dumps_json(data).decode()
    return {"type": "websocket.send", "text": text}, len(text)


class Message:
    """One received message: ``type`` is ``"text"`` or ``"binary"``, ``data`` a
    str or bytes. In advanced mode an ``{"event", "data"}`` envelope arrives with
    ``event`` set and ``data`` the envelope's (parsed) data."""

    __slots__ = ("data", "event", "type")

    def __init__(self, type: str, data: Any, event: str | None = None) -> None:
        self.type = type
        self.data = data
        self.event = event

    def json(self) -> Any:
        """``data`` parsed as JSON (raises ``ValueError`` when it is not JSON)."""
        return json.loads(self.data)

    def __repr__(self) -> str:
        event = f", event={self.event!r}" if self.event is not None else ""
        return f"Message({self.type!r}, {self.data!r}{event})"


async def notify(listeners: Iterable[Callable[[Any], Any]], data: Any) -> None:
    """Call each ``on(event, fn)`` listener with an event's data (sync or async),
    in registration order: the server's and the client's advanced mode alike."""
    for listener in tuple(listeners):
        result = listener(data)
        if inspect.isawaitable(result):
            await result

"""The client side of a WebSocket, the same for both transports."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol, Self

from simples.encode import dumps_json
from simples.ws import Message
from simples.ws.frames import notify

from .base import ClientError

_MISSING: Any = object()

Listener = Callable[[Any], Any]


class Channel(Protocol):
    """What a transport gives the WebSocket: frames in and out, and the close."""

    subprotocol: str | None
    set_cookies: list[str]
    close_code: int | None
    close_reason: str

    async def send(self, frame: str | bytes) -> None: ...

    async def recv(self) -> str | bytes | None:
        """The next frame, ``None`` once the socket is closed."""
        ...

    async def close(self, code: int, reason: str) -> None: ...


class WebSocket:
    """An open WebSocket: ``send``, ``receive``, ``async for message in ws``,
    ``close``; in advanced mode ``send(event, data)`` and ``on(event, fn)``."""

    def __init__(self, channel: Channel, url: str, timeout: float | None, advanced: bool) -> None:
        self._channel = channel
        self.url = url
        self.timeout = timeout
        self.advanced = advanced
        self._listeners: dict[str, list[Listener]] = {}

    def __repr__(self) -> str:
        return f"<WebSocket {self.url} close_code={self.close_code}>"

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server chose (``None``: none)."""
        return self._channel.subprotocol

    @property
    def close_code(self) -> int | None:
        """``None`` while open; then the code of the close (1005: none was given,
        1006: the connection dropped without a close frame, RFC 6455 §7.1.5)."""
        return self._channel.close_code

    @property
    def close_reason(self) -> str:
        return self._channel.close_reason

    @property
    def closed(self) -> bool:
        return self._channel.close_code is not None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---------------------------------------------------------------- sending

    async def send(self, data: Any, payload: Any = _MISSING) -> None:
        """str → text frame, bytes → binary, anything else → JSON text;
        ``send(event, data)`` sends an ``{"event", "data"}`` envelope (advanced)."""
        frame: str | bytes
        if payload is not _MISSING:
            if not isinstance(data, str):
                raise TypeError(f"an event name is a str, not {type(data).__name__}")
            frame = dumps_json({"event": data, "data": payload}).decode()
        elif isinstance(data, str):
            frame = data
        elif isinstance(data, bytes | bytearray | memoryview):
            frame = bytes(data)
        else:
            frame = dumps_json(data).decode()
        if self.closed:
            raise ClientError(f"the WebSocket {self.url} is closed (code {self.close_code})")
        await self._channel.send(frame)

    def on(self, event: str, listener: Listener) -> Self:
        """Call ``listener(data)`` (sync or async) for each ``{"event": event}`` message
        while the socket is iterated or ``receive()`` is awaited (advanced mode)."""
        if not self.advanced:
            raise ValueError("ws.on(event, fn) needs advanced=True: client.ws(url, advanced=True)")
        if not isinstance(event, str) or not event:
            raise ValueError("an event name is a non-empty str")
        if not callable(listener):
            raise TypeError("on() takes a callable listener")
        self._listeners.setdefault(event, []).append(listener)
        return self

    # -------------------------------------------------------------- receiving

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Message]:
        while True:
            message = await self._next()
            if message is None:
                return
            yield message

    async def receive(self) -> Message:
        """The next message (``.data``, ``.type``; ``.event`` in advanced mode).
        Raises ``ClientError`` once the socket is closed or after ``timeout``."""
        message = await self._next()
        if message is None:
            raise ClientError(
                f"the WebSocket {self.url} is closed (code {self.close_code}"
                + (f", {self.close_reason!r})" if self.close_reason else ")")
            )
        return message

    async def _next(self) -> Message | None:
        while True:
            try:
                async with asyncio.timeout(self.timeout):
                    frame = await self._channel.recv()
            except TimeoutError:
                raise ClientError(
                    f"no WebSocket message from {self.url} within {self.timeout} s"
                ) from None
            if frame is None:
                return None
            if isinstance(frame, bytes):
                return Message("binary", frame)
            if not self.advanced:
                return Message("text", frame)
            message = await self._route(frame)
            if message is not None:
                return message

    async def _route(self, frame: str) -> Message | None:
        try:
            envelope = json.loads(frame)
        except (ValueError, RecursionError):
            return Message("text", frame)
        if type(envelope) is not dict or type(envelope.get("event")) is not str:
            return Message("text", frame)
        event: str = envelope["event"]
        data = envelope.get("data")
        listeners = self._listeners.get(event)
        if not listeners:
            return Message("text", data, event)
        await notify(listeners, data)
        return None

    # ---------------------------------------------------------------- closing

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close with ``code`` (1000, or 3000-4999 for applications, RFC 6455 §7.4);
        closing twice does nothing."""
        if type(code) is not int or not (code == 1000 or 3000 <= code <= 4999 or
                                          code in (1001, 1002, 1003, 1007, 1008, 1009, 1010,
                                                   1011)):
            raise ValueError(f"close code {code!r} cannot be sent (RFC 6455 §7.4)")
        if len(reason.encode()) > 123:
            raise ValueError("a close reason is at most 123 bytes of UTF-8 (RFC 6455 §5.5)")
        if self.closed:
            return
        await self._channel.close(code, reason)

"""WebSocket routes, connections, channels and brokers (SPEC §5, §6).

One ``WebSocketConnection`` per socket. The handshake runs like an HTTP
exchange: routing, origin and subprotocol checks, the session, then the
middlewares with the handler at the end of the chain. The socket is accepted
lazily, on the handler's first ``send``/``receive`` (or an explicit
``accept()``), so a handler can still refuse with an HTTP status after looking
at the request.

Outgoing frames from the handler are sent directly, so a slow reader slows
the handler down (the ASGI server's own back-pressure). Frames from broadcasts
go through a per-socket queue bounded in bytes: a broadcaster waits a while
for a congested socket, and a socket that still cannot keep up is closed with
1013 rather than buffered without bound.

Broadcasts are delivered to this process's sockets at once and handed to the
configured broker, which carries them to the other processes; the default
``LocalBroker`` stays inside the process, ``RedisBroker`` uses Redis pub/sub.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import sys
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

from .chain import run_chain
from .encode import dumps_json
from .errors import HTTPError, reason_phrase
from .feature import is_on
from .http.headers import validate_header_name, validate_header_value
from .request import RawResponse, Request
from .types import Message as ASGIMessage
from .types import Receive, Scope, Send

if TYPE_CHECKING:
    from .config import Settings
    from .router import Route, Router
    from .server import Server
    from .sessions import SessionManager

__all__ = [
    "Broker",
    "Channel",
    "LocalBroker",
    "Message",
    "RedisBroker",
    "WebSocketClosed",
    "WebSocketConnection",
    "broadcast_all",
    "channel_of",
    "close_all",
    "handle_websocket",
]

logger = logging.getLogger("simples")

_MISSING: Final[Any] = object()

# Bytes of broadcast frames a socket may have waiting (each frame also counts
# _FRAME_COST, so a flood of tiny frames is bounded too). Past the limit the
# socket is congested: a broadcaster waits for it up to SEND_TIMEOUT seconds,
# then closes it with 1013. Frames from other processes cannot wait: past
# _HARD_FACTOR times the limit the socket is closed at once.
SEND_QUEUE_LIMIT: Final = 1 << 20
SEND_TIMEOUT: Final = 5.0
_HARD_FACTOR: Final = 4
_FRAME_COST: Final = 64
# How long a forced close frame may wait for room in the peer's window.
CLOSE_TIMEOUT: Final = 5.0

# Connection states
_CONNECTING: Final = 0
_OPEN: Final = 1
_CLOSING: Final = 2  # close() called: queued frames flush, then the close frame
_CLOSED: Final = 3  # the close frame went out, or the connection is gone
_REFUSED: Final = 4  # the handshake was answered with an HTTP status

# Close codes an endpoint may send (RFC 6455 §7.4, IANA registry). 1004-1006
# and 1015 are reserved, 1010 is the client's to send.
_SENDABLE_CODES: Final = frozenset(
    {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011, 1012, 1013, 1014}
)
# Event names a client can never trigger in advanced mode: they belong to the
# connection's own life cycle (``ws.on("close", fn)``).
RESERVED_EVENTS: Final = frozenset({"close", "error", "message", "open"})

Deliver = Callable[[bytes], None]
Listener = Callable[[Any], Any]

# _current_task(loop): the task running on ``loop``, through C code only.
# asyncio.current_task is pure Python before 3.12 and cost more than the rest
# of a send; the table it reads is kept by the C task implementation.
_current_task: Callable[[asyncio.AbstractEventLoop], asyncio.Task[Any] | None]
if sys.version_info >= (3, 12):
    _current_task = asyncio.current_task
else:
    _current_task = asyncio.tasks._current_tasks.get  # type: ignore[attr-defined]


def _start_eagerly(coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """Run ``coroutine`` here until it first has to wait; only then hand it to a
    task. A frame to a socket that can take it is written at once, with no task
    to create and schedule: a broadcast to 1,000 idle sockets costs 1,000 writes,
    not 1,000 tasks. None when it finished without waiting."""
    try:
        waiting_for = coroutine.send(None)
    except StopIteration:
        return None
    return asyncio.get_running_loop().create_task(_resume(coroutine, waiting_for))


async def _resume(coroutine: Coroutine[Any, Any, None], waiting_for: Any) -> None:
    """Drive a coroutine that ``_start_eagerly`` started, as a task would."""
    while True:
        try:
            if waiting_for is None:
                await asyncio.sleep(0)  # a bare yield: it only let the loop run
            else:
                # What a task does with a yielded future: take over the "being
                # awaited" flag, which the coroutine's own await has set.
                waiting_for._asyncio_future_blocking = False
                await waiting_for
        except BaseException as exc:  # the coroutine decides, cancellation included
            try:
                waiting_for = coroutine.throw(exc)
            except StopIteration:
                return
            continue
        try:
            waiting_for = coroutine.send(None)
        except StopIteration:
            return


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


class WebSocketConnection(Request):
    """One WebSocket: the request-side members of SPEC §3 plus the socket."""

    __slots__ = (
        "_accepting",
        "_advanced",
        "_channels",
        "_close_code",
        "_close_reason",
        "_closer",
        "_drain_waiters",
        "_hub",
        "_idle",
        "_interrupts",
        "_last_receive",
        "_limit",
        "_listeners",
        "_loop",
        "_queue",
        "_queued",
        "_reader",
        "_sender",
        "_sending",
        "_sessions",
        "_state",
        "_timeout",
        "_writer",
        "queue_limit",
        "send_timeout",
        "subprotocol",
    )

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        router: Router,
        host: str,
        hub: _Hub | None = None,
    ) -> None:
        protocol = "wss" if scope.get("scheme") in ("wss", "https") else "ws"
        Request.__init__(self, scope, receive, send, router, host, protocol)
        self._hub = hub
        self._loop = asyncio.get_running_loop()
        self._state = _CONNECTING
        self._accepting: asyncio.Future[None] | None = None
        self._advanced = False
        self._limit = 1 << 20
        self._timeout: float | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._last_receive = 0.0
        self._listeners: dict[str, list[Listener]] | None = None
        self._channels: set[Channel] = set()
        self._close_code: int | None = None
        self._close_reason = ""
        self._closer: asyncio.Task[None] | None = None
        # broadcast frames waiting for the writer: (message, counted bytes, waiter)
        self._queue: deque[tuple[ASGIMessage, int, asyncio.Future[None] | None]] = deque()
        self._queued = 0
        self._writer: asyncio.Task[None] | None = None
        self._sending = False
        self._reader: asyncio.Task[Any] | None = None
        self._sender: asyncio.Task[Any] | None = None
        self._interrupts: set[asyncio.Task[Any]] | None = None
        self._sessions: SessionManager | None = None
        self._drain_waiters: list[asyncio.Future[None]] | None = None
        self.subprotocol: str | None = None
        self.queue_limit = SEND_QUEUE_LIMIT
        self.send_timeout = SEND_TIMEOUT

    def __repr__(self) -> str:
        states = ("connecting", "open", "closing", "closed", "refused")
        return f"<WebSocketConnection {self.path} {states[self._state]}>"

    @property
    def response(self) -> RawResponse:
        """The raw ASGI side of the socket, for third-party code: ``response.send``."""
        return RawResponse(self._send)

    # ------------------------------------------------------------------ state

    @property
    def accepted(self) -> bool:
        """Whether the handshake completed (the socket may have closed since)."""
        return self._state in (_OPEN, _CLOSING, _CLOSED)

    @property
    def closed(self) -> bool:
        """Whether the connection is over (closed, lost or refused)."""
        return self._state >= _CLOSING

    @property
    def close_code(self) -> int | None:
        """The close code once the connection is over (1006: lost without a close frame)."""
        return self._close_code

    @property
    def close_reason(self) -> str:
        return self._close_reason

    @property
    def channels(self) -> frozenset[str]:
        """Names of the channels this socket is bound to."""
        return frozenset(channel.name for channel in self._channels)

    def keep(self, timeout: float | None = _MISSING) -> Any:
        """Get or set the idle timeout: close with 1001 after ``timeout`` seconds
        without receiving a message (``0``/``None`` turns it off)."""
        if timeout is _MISSING:
            return self._timeout
        if timeout is not None and timeout < 0:
            raise ValueError("keep() timeout must be positive")
        self._timeout = float(timeout) if timeout else None
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if self._state == _OPEN:
            self._arm_idle()
        return self

    # -------------------------------------------------------------- handshake

    async def accept(
        self, subprotocol: str | None = _MISSING, headers: Mapping[str, str] | None = None
    ) -> None:
        """Complete the handshake. It happens by itself on the first ``send`` or
        ``receive``; call it to choose the subprotocol or add response headers.
        ``subprotocol`` must be one the client offered."""
        state = self._state
        if state != _CONNECTING:
            if state in (_OPEN, _CLOSING, _CLOSED):
                return
            raise RuntimeError("the handshake was already refused")
        if self._accepting is not None:
            await self._accepting
            return
        chosen = self.subprotocol if subprotocol is _MISSING else subprotocol
        if chosen is not None and chosen not in self.scope.get("subprotocols", ()):
            raise ValueError(f"subprotocol {chosen!r} was not offered by the client")
        self._accepting = asyncio.get_running_loop().create_future()
        try:
            raw: list[tuple[bytes, bytes]] = []
            for name, value in (headers or {}).items():
                raw.append((
                    validate_header_name(name).encode("latin-1"),
                    validate_header_value(value).encode("latin-1"),
                ))
            cookie = await self._commit_session(at_accept=True)
            if cookie is not None:
                raw.append((b"set-cookie", cookie.encode("latin-1")))
            message: ASGIMessage = {"type": "websocket.accept"}
            if chosen is not None:
                message["subprotocol"] = chosen
            if raw:
                message["headers"] = raw
            self.subprotocol = chosen
            try:
                await self._send(message)
            except OSError:
                self._lost()
                raise WebSocketClosed(1006) from None
            self._state = _OPEN
            if self._hub is not None:
                self._hub.connections.add(self)
            if self._timeout is not None:
                self._arm_idle()
            if self._queue and self._writer is None:
                self._start_writer()
        finally:
            waiter, self._accepting = self._accepting, None
            waiter.set_result(None)

    async def error(self, code: int) -> None:
        """Refuse the handshake with HTTP status ``code`` (through the router's
        error routes when the server supports it, else 403); after the handshake,
        close with 1008 (4xx) or 1011 (5xx)."""
        if type(code) is not int or not 400 <= code <= 599:
            raise ValueError(f"error() needs a status in 400-599, got {code!r}")
        if self._state == _CONNECTING:
            await self._refuse(code)
        elif self._state == _REFUSED:
            raise RuntimeError("the handshake was already refused")
        else:
            self._abort(1008 if code < 500 else 1011, reason_phrase(code))

    async def _refuse(self, code: int) -> None:
        if self._state != _CONNECTING:
            raise RuntimeError("the handshake is over; it can no longer be refused")
        self._state = _REFUSED
        self._close_code = 1006
        # OSError: the client left before hearing the answer
        with contextlib.suppress(OSError):
            await refuse(self.scope, self._send, code, self)

    # --------------------------------------------------------------- receiving

    def __aiter__(self) -> WebSocketConnection:
        return self

    async def receive(self) -> Message:
        """The next message; raises ``WebSocketClosed`` once the connection is over."""
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            raise WebSocketClosed(self._close_code or 1005, self._close_reason) from None

    async def __anext__(self) -> Message:
        if self._state == _CONNECTING:
            await self.accept()
        while True:
            if self._state != _OPEN:
                raise StopAsyncIteration
            task = _current_task(self._loop)
            self._reader = task
            try:
                event = await self._receive()
            except asyncio.CancelledError:
                if self._interrupted(task):
                    raise StopAsyncIteration from None
                raise
            finally:
                self._reader = None
            kind = event["type"]
            if kind == "websocket.receive":
                text = event.get("text")
                limit = self._limit
                if text is not None:
                    size = len(text)
                    # a str of n characters is n to 4n bytes of UTF-8: encode only when it matters
                    if limit and size * 4 > limit and (size > limit or len(text.encode()) > limit):
                        self._abort(1009, "message too big")
                        raise StopAsyncIteration
                    message = Message("text", text)
                else:
                    data = event.get("bytes") or b""
                    if limit and len(data) > limit:
                        self._abort(1009, "message too big")
                        raise StopAsyncIteration
                    message = Message("binary", data)
                if self._timeout is not None:
                    self._last_receive = asyncio.get_running_loop().time()
                if self._advanced:
                    routed = await self._route_event(message)
                    if routed is None:
                        continue
                    message = routed
                return message
            if kind == "websocket.disconnect":
                self._disconnected(event.get("code", 1005), event.get("reason") or "")
                raise StopAsyncIteration

    async def _route_event(self, message: Message) -> Message | None:
        """Advanced mode: hand an envelope to its listeners; return what is left
        for ``async for`` (None when a listener took it or it was dropped)."""
        if message.type != "text":
            return message
        try:
            envelope = json.loads(message.data)
        except (ValueError, RecursionError):
            return message
        if type(envelope) is not dict:
            return message
        event = envelope.get("event")
        if type(event) is not str:
            return message
        if event in RESERVED_EVENTS:
            logger.debug("WebSocket %s: ignored reserved event %r", self.path, event)
            return None
        data = envelope.get("data")
        listeners = self._listeners.get(event) if self._listeners is not None else None
        if not listeners:
            return Message("text", data, event)
        for listener in tuple(listeners):
            result = listener(data)
            if isinstance(result, Awaitable):
                await result
        return None

    def on(self, event: str, listener: Listener) -> WebSocketConnection:
        """Call ``listener(data)`` (sync or async) for each ``{"event": event}``
        message (advanced routes), or ``listener({"code", "reason"})`` once the
        connection is over for ``event="close"``."""
        if not isinstance(event, str) or not event:
            raise ValueError("an event name is a non-empty str")
        if not callable(listener):
            raise TypeError("on() takes a callable listener")
        if event in RESERVED_EVENTS and event != "close":
            raise ValueError(f"event name {event!r} is reserved; iterate the socket for messages")
        if event != "close" and not self._advanced:
            raise ValueError(
                "ws.on(event, fn) needs an advanced route: router.ws(path, handler, advanced=True)"
            )
        listeners = self._listeners
        if listeners is None:
            listeners = self._listeners = {}
        listeners.setdefault(event, []).append(listener)
        return self

    # ----------------------------------------------------------------- sending

    async def send(self, data: Any, payload: Any = _MISSING) -> None:
        """Send ``data``: str → text frame, bytes → binary, anything else → JSON
        text. ``send(event, data)`` sends an ``{"event", "data"}`` envelope."""
        kind = type(data)
        message: ASGIMessage
        if payload is not _MISSING:
            if not isinstance(data, str):
                raise TypeError(f"an event name is a str, not {kind.__name__}")
            text = dumps_json({"event": data, "data": payload}).decode()
            message = {"type": "websocket.send", "text": text}
        elif kind is str:
            message = {"type": "websocket.send", "text": data}
        elif kind is bytes:
            message = {"type": "websocket.send", "bytes": data}
        else:
            message = encode_frame(data)[0]
        if self._state != _OPEN:
            if self._state == _CONNECTING:
                await self.accept()
            if self._state != _OPEN:
                raise WebSocketClosed(self._close_code or 1006, self._close_reason)
        await self._deliver(message)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close with ``code`` after the frames already queued. Before the
        handshake completed, this refuses it (403). Closing twice does nothing."""
        check_close(code, reason)
        state = self._state
        if state == _CONNECTING:
            await self._refuse(403)
            return
        if state != _OPEN:
            return
        self._state = _CLOSING
        self._close_code = code
        self._close_reason = reason
        # RuntimeError: a server that already considers the socket closed
        with contextlib.suppress(WebSocketClosed, RuntimeError):
            await self._deliver({"type": "websocket.close", "code": code, "reason": reason})
        self._state = _CLOSED
        self._detach()

    async def _deliver(self, message: ASGIMessage) -> None:
        """Send in order with queued broadcast frames; wait until it is written."""
        if self._sending or self._writer is not None or self._queue:
            waiter = asyncio.get_running_loop().create_future()
            self._queue.append((message, 0, waiter))
            if self._writer is None and not self._sending:
                self._start_writer()
            await waiter
            return
        self._sending = True
        task = _current_task(self._loop)
        self._sender = task
        try:
            await self._send(message)
        except asyncio.CancelledError:
            if self._interrupted(task):
                raise WebSocketClosed(self._close_code or 1006, self._close_reason) from None
            raise
        except OSError:
            self._lost()
            raise WebSocketClosed(1006) from None
        finally:
            self._sending = False
            self._sender = None
            if self._queue and self._writer is None and self._state in (_OPEN, _CLOSING):
                self._start_writer()

    def _post(self, message: ASGIMessage, size: int) -> bool:
        """Queue a broadcast frame without waiting. True when the socket is now
        congested (the broadcaster should wait for it)."""
        state = self._state
        if state > _OPEN:
            return False
        queued = self._queued + size + _FRAME_COST
        if queued > self.queue_limit * _HARD_FACTOR:
            if state == _OPEN:
                self._too_slow()
            # not accepted yet: frames wait for the handshake, up to the hard limit
            return False
        self._queued = queued
        self._queue.append((message, size + _FRAME_COST, None))
        if state != _OPEN:
            return False
        if self._writer is None and not self._sending:
            self._start_writer()
        return self._queued > self.queue_limit

    def _too_slow(self) -> None:
        logger.warning(
            "WebSocket %s: the client does not read fast enough (%d bytes waiting); "
            "closing with 1013", self.path, self._queued,
        )
        self._abort(1013, "too slow: send queue full")

    def _wake_drained(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def _start_writer(self) -> None:
        self._writer = _start_eagerly(self._write_queue())

    async def _write_queue(self) -> None:
        queue = self._queue
        waiter: asyncio.Future[None] | None = None
        try:
            while queue:
                message, counted, waiter = queue.popleft()
                self._queued -= counted
                try:
                    await self._send(message)
                except Exception as exc:
                    # OSError: the peer is gone (ASGI); RuntimeError: the server
                    # already considers the socket closed. Anything else is a
                    # bug somewhere, reported, but it must not reach the
                    # broadcaster that started this writer.
                    if isinstance(exc, OSError | RuntimeError):
                        logger.debug("WebSocket %s: send failed: %r", self.path, exc)
                    else:
                        logger.error("WebSocket %s: send failed", self.path, exc_info=exc)
                    if waiter is not None and not waiter.done():
                        waiter.set_exception(WebSocketClosed(1006))
                    self._lost()
                    return
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
                waiter = None
                if self._drain_waiters is not None and self._queued <= self.queue_limit:
                    self._wake_drained()
        except asyncio.CancelledError:
            if waiter is not None and not waiter.done():
                waiter.set_exception(WebSocketClosed(self._close_code or 1006, self._close_reason))
            raise
        finally:
            # Started eagerly, the first step runs before self._writer is set;
            # a writer replaced after a cancellation must not clear its successor.
            if self._writer is asyncio.current_task():
                self._writer = None

    # ----------------------------------------------------------------- closing

    def _abort(self, code: int, reason: str) -> None:
        """Close now, dropping queued frames: used for oversized messages, slow
        readers, idle timeouts, errors and shutdown. Never waits."""
        state = self._state
        if state == _CONNECTING or state >= _CLOSED:
            return
        self._state = _CLOSED
        if self._close_code is None or state == _OPEN:
            self._close_code = code
            self._close_reason = reason
        self._drop_queue()
        if self._sender is not None and self._sender is not asyncio.current_task():
            self._interrupt(self._sender)
        self._closer = asyncio.get_running_loop().create_task(self._send_close(code, reason))
        self._detach()
        if self._reader is not None and self._reader is not asyncio.current_task():
            self._interrupt(self._reader)

    async def _send_close(self, code: int, reason: str) -> None:
        try:
            message = {"type": "websocket.close", "code": code, "reason": reason}
            await asyncio.wait_for(self._send(message), CLOSE_TIMEOUT)
        except (OSError, RuntimeError, TimeoutError) as exc:
            logger.debug("WebSocket %s: close frame not sent: %r", self.path, exc)

    def _drop_queue(self) -> None:
        writer = self._writer
        if writer is not None and writer is not asyncio.current_task():
            writer.cancel()
        self._writer = None
        closed = WebSocketClosed(self._close_code or 1006, self._close_reason)
        for _, _, waiter in self._queue:
            if waiter is not None and not waiter.done():
                waiter.set_exception(closed)
        self._queue.clear()
        self._queued = 0
        self._wake_drained()

    def _disconnected(self, code: int, reason: str) -> None:
        """The server says the connection is over (peer close, or our close echoed)."""
        if self._close_code is None or self._state == _OPEN:
            self._close_code = code
            self._close_reason = reason
        self._state = max(self._state, _CLOSED)
        self._drop_queue()
        self._detach()

    def _lost(self) -> None:
        if self._state < _CLOSED:
            self._disconnected(1006, "")
            if self._reader is not None and self._reader is not asyncio.current_task():
                self._interrupt(self._reader)

    def _detach(self) -> None:
        """Leave every channel and the server's registry; stop the idle timer."""
        for channel in tuple(self._channels):
            channel._members.discard(self)
        self._channels.clear()
        if self._hub is not None:
            self._hub.connections.discard(self)
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _interrupt(self, task: asyncio.Task[Any]) -> None:
        # Wake a task blocked in receive/send on our behalf; the CancelledError is
        # turned back into "connection over" by _interrupted.
        interrupts = self._interrupts
        if interrupts is None:
            interrupts = self._interrupts = set()
        if task not in interrupts:
            interrupts.add(task)
            task.cancel()

    def _interrupted(self, task: asyncio.Task[Any] | None) -> bool:
        interrupts = self._interrupts
        if task is None or interrupts is None or task not in interrupts:
            return False
        interrupts.discard(task)
        # another cancellation (server shutdown) may be pending too: let it win
        return task.uncancel() == 0

    def _arm_idle(self) -> None:
        timeout = self._timeout
        if timeout is None:
            return
        loop = asyncio.get_running_loop()
        self._last_receive = loop.time()
        self._idle = loop.call_at(self._last_receive + timeout, self._check_idle)

    def _check_idle(self) -> None:
        # Re-arming the timer on every message would cost; the check re-arms instead.
        self._idle = None
        timeout = self._timeout
        if timeout is None or self._state != _OPEN:
            return
        loop = asyncio.get_running_loop()
        deadline = self._last_receive + timeout
        if loop.time() < deadline:
            self._idle = loop.call_at(deadline, self._check_idle)
            return
        self._abort(1001, "idle timeout")

    # ----------------------------------------------------------------- session

    async def _commit_session(self, *, at_accept: bool) -> str | None:
        session, manager = self.session, self._sessions
        if session is None or manager is None:
            return None
        from .sessions import StoreUnavailable

        if not at_accept and (session.is_new or not session.changed):
            # a cookie can no longer reach the browser: only an existing session is saved
            return None
        try:
            return await manager.commit(session, https=self._protocol == "wss")
        except StoreUnavailable as exc:
            logger.error("session store unavailable while saving a WebSocket session: %s", exc)
            return None


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
        from .connection import HTTPConnection

        connection = HTTPConnection(scope, ws._receive, as_websocket, ws.router, ws.host)
        connection._protocol = "https" if ws.protocol == "wss" else "http"
        connection._ip = ws.ip
        connection.params = ws.params
        connection.route = ws.route
        connection.session = ws.session
        connection._data = ws.data
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


# ------------------------------------------------------------------- channels


class Channel:
    """A named group of sockets: ``bind``, ``unbind``, ``broadcast``. The
    members are this process's sockets; broadcasts reach the other processes'
    members through the broker."""

    __slots__ = ("__weakref__", "_hub", "_members", "name")

    def __init__(self, name: str, hub: _Hub) -> None:
        self.name = name
        self._hub = hub
        self._members: set[WebSocketConnection] = set()

    def __repr__(self) -> str:
        return f"<Channel {self.name!r}: {len(self._members)} local socket(s)>"

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, ws: object) -> bool:
        return ws in self._members

    @property
    def members(self) -> frozenset[WebSocketConnection]:
        """This process's sockets bound to the channel."""
        return frozenset(self._members)

    def bind(self, ws: WebSocketConnection) -> Channel:
        """Add ``ws``; it leaves by itself when it closes."""
        if not isinstance(ws, WebSocketConnection):
            raise TypeError(f"bind() takes a WebSocketConnection, not {type(ws).__name__}")
        if ws._state <= _OPEN:
            self._members.add(ws)
            ws._channels.add(self)
        return self

    def unbind(self, ws: WebSocketConnection) -> Channel:
        self._members.discard(ws)
        ws._channels.discard(self)
        return self

    async def broadcast(
        self, data: Any, filter: Callable[[WebSocketConnection], bool] | None = None
    ) -> None:
        """Send ``data`` to every member, here and (without ``filter``) in every
        process reached by the broker. ``filter(ws) -> bool`` is a Python
        function, so it runs here only: a filtered broadcast stays local."""
        message, size = encode_frame(data)
        await self._hub.broadcast(self._members, self.name, message, size, filter)


# -------------------------------------------------------------------- brokers


@runtime_checkable
class Broker(Protocol):
    """Carries broadcasts between processes. ``publish(payload)`` must reach the
    ``deliver`` callbacks of every subscriber (its own process's included, which
    ignores its own messages). A broker is configured with
    ``server.config(broker=...)``."""

    async def subscribe(self, deliver: Deliver) -> None: ...

    async def unsubscribe(self, deliver: Deliver) -> None: ...

    async def publish(self, payload: bytes) -> None: ...


class LocalBroker:
    """The default: broadcasts stay in this process. Servers of one process that
    share an instance reach each other's sockets, across event loops too."""

    def __init__(self) -> None:
        self._subscribers: dict[Deliver, asyncio.AbstractEventLoop] = {}

    async def subscribe(self, deliver: Deliver) -> None:
        self._subscribers[deliver] = asyncio.get_running_loop()

    async def unsubscribe(self, deliver: Deliver) -> None:
        self._subscribers.pop(deliver, None)

    async def publish(self, payload: bytes) -> None:
        _fan_in(self._subscribers, payload)


def _fan_in(subscribers: Mapping[Deliver, asyncio.AbstractEventLoop], payload: bytes) -> None:
    """Call each subscriber on its own loop."""
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    for deliver, loop in tuple(subscribers.items()):
        if loop is running:
            try:
                deliver(payload)
            except Exception:
                logger.exception("delivering a broadcast failed")
        elif not loop.is_closed():
            loop.call_soon_threadsafe(deliver, payload)


class RedisBroker:
    """Broadcasts through Redis pub/sub, so they reach every worker process and
    machine subscribed to the same Redis ``channel``.

    Delivery is at most once: while Redis is unreachable, broadcasts still reach
    this process's sockets but not the others', and the subscriber reconnects by
    itself (backing off up to one second). A silent connection is probed with
    PING every ``heartbeat`` seconds and replaced when no answer comes within
    ``timeout``."""

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        channel: str = "simples:ws",
        *,
        timeout: float = 2.0,
        heartbeat: float = 5.0,
        **options: Any,
    ) -> None:
        try:
            import redis.asyncio  # noqa: F401 - fail at configuration, not at the first broadcast
        except ImportError as exc:  # pragma: no cover - redis is an optional dependency
            raise ImportError("RedisBroker needs redis: pip install 'simples-web[redis]'") from exc
        self.url = url
        self.channel = channel
        self.timeout = timeout
        self.heartbeat = heartbeat
        self._options = options
        self._subscribers: dict[Deliver, asyncio.AbstractEventLoop] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener: asyncio.Task[None] | None = None
        self._publisher: Any = None
        self._ready: asyncio.Event | None = None
        self._up = False
        self._down_since: float | None = None
        self._dropped = 0
        self._publish_failing = False

    def __repr__(self) -> str:
        state = "connected" if self._up else "not connected"
        return f"<RedisBroker {self.url} channel={self.channel!r} {state}>"

    @property
    def connected(self) -> bool:
        """Whether the subscriber is connected to Redis right now."""
        return self._up

    def _client(self, *, retries: int) -> Any:
        from redis.asyncio import Redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # Reconnection is ours (with backoff); redis-py's own retries would hide an outage.
        return Redis.from_url(
            self.url,
            socket_connect_timeout=self.timeout,
            retry=Retry(NoBackoff(), retries),
            **self._options,
        )

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None and not self._loop.is_closed():
                raise RuntimeError("a RedisBroker serves one event loop; create one per loop")
            self._loop = loop
            self._listener = None
            self._publisher = None
            self._ready = asyncio.Event()
            self._up = False

    async def subscribe(self, deliver: Deliver) -> None:
        self._bind_loop()
        self._subscribers[deliver] = asyncio.get_running_loop()
        if self._listener is None or self._listener.done():
            self._listener = asyncio.get_running_loop().create_task(self._listen())
        assert self._ready is not None
        try:
            # Give the first subscription a moment, so a broadcast right after the
            # first connection is not missed; never block a handshake on an outage.
            await asyncio.wait_for(self._ready.wait(), self.timeout)
        except TimeoutError:
            logger.warning("Redis broker %s not reachable yet; retrying in the background",
                           self.url)

    async def unsubscribe(self, deliver: Deliver) -> None:
        self._subscribers.pop(deliver, None)
        if self._subscribers:
            return
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            await _quietly(publisher.aclose())
        self._up = False

    async def publish(self, payload: bytes) -> None:
        self._bind_loop()
        if self._listener is not None and not self._up:
            self._dropped += 1
            return
        if self._publisher is None:
            self._publisher = self._client(retries=0)
        try:
            try:
                await asyncio.wait_for(self._publisher.publish(self.channel, payload), self.timeout)
            except (OSError, redis_errors()) as exc:
                if isinstance(exc, TimeoutError):
                    raise
                # A pooled connection from before a Redis restart fails once:
                # drop the pool's connections and try again on a fresh one.
                await _quietly(self._publisher.connection_pool.disconnect())
                await asyncio.wait_for(self._publisher.publish(self.channel, payload), self.timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._dropped += 1
            if not self._publish_failing:
                self._publish_failing = True
                logger.warning(
                    "Redis broker %s: publish failed, broadcast stayed local: %r", self.url, exc
                )
            return
        if self._publish_failing:
            self._publish_failing = False
            logger.info("Redis broker %s: publishing again", self.url)

    async def _listen(self) -> None:
        delay = 0.0
        while True:
            client = self._client(retries=0)
            pubsub = client.pubsub()
            try:
                await asyncio.wait_for(pubsub.subscribe(self.channel), self.timeout)
                await self._pump(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._went_down(exc)
            finally:
                self._up = False
                await _quietly(pubsub.aclose())
                await _quietly(client.aclose())
            delay = min(max(delay * 2, 0.05), 1.0)
            await asyncio.sleep(delay)

    async def _pump(self, pubsub: Any) -> None:
        loop = asyncio.get_running_loop()
        heard = loop.time()
        pinged: float | None = None
        while True:
            message = await pubsub.get_message(timeout=min(1.0, self.heartbeat))
            now = loop.time()
            if message is None:
                if pinged is not None:
                    if now - pinged > self.timeout:
                        raise ConnectionError("Redis did not answer PING")
                elif now - heard > self.heartbeat:
                    await asyncio.wait_for(pubsub.ping(), self.timeout)
                    pinged = now
                continue
            heard = now
            pinged = None
            kind = message.get("type")
            if kind == "message":
                data = message.get("data")
                if isinstance(data, bytes):
                    _fan_in(self._subscribers, data)
            elif kind == "subscribe":
                self._came_up()

    def _came_up(self) -> None:
        self._up = True
        if self._ready is not None:
            self._ready.set()
        if self._down_since is not None:
            logger.warning(
                "Redis broker %s reachable again after %.1f s; "
                "%d broadcast(s) stayed local meanwhile",
                self.url, time.monotonic() - self._down_since, self._dropped,
            )
            self._down_since = None
            self._dropped = 0

    def _went_down(self, exc: BaseException) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            logger.warning(
                "Redis broker %s unreachable (%r): "
                "broadcasts reach this process only until it is back",
                self.url, exc,
            )


def redis_errors() -> type[Exception]:
    """redis-py's connection error (a subclass of neither OSError nor ConnectionError)."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    return RedisConnectionError


async def _quietly(awaitable: Awaitable[Any]) -> None:
    try:
        await awaitable
    except Exception as exc:
        logger.debug("ignored while closing a Redis connection: %r", exc)


# ------------------------------------------------------------ per-server hub

_WIRE: Final = b"simples-ws/1 "


def _wire(origin: str, channel: str | None, message: ASGIMessage) -> bytes:
    text = message.get("text")
    meta = {"o": origin, "c": channel, "k": "b" if text is None else "t"}
    header = json.dumps(meta, separators=(",", ":"))
    body: bytes = message["bytes"] if text is None else text.encode()
    return b"".join((_WIRE, header.encode(), b"\n", body))


class _Hub:
    """A server's sockets and channels, and its link to the broker."""

    def __init__(self, server: Server) -> None:
        self.id = secrets.token_hex(8)
        self._server = weakref.ref(server)
        self.connections: set[WebSocketConnection] = set()
        # A channel lives while the application holds it or a socket is bound
        # to it: rooms created per conversation do not pile up.
        self.channels: weakref.WeakValueDictionary[str, Channel] = weakref.WeakValueDictionary()
        self.local = LocalBroker()
        self.subscribed: Broker | None = None
        self.closing = False
        self._warned_filter = False

    def configured(self) -> Broker:
        server = self._server()
        broker = server.settings.sections["broker"]["broker"] if server is not None else None
        if broker is None:
            return self.local
        if not isinstance(broker, Broker):
            raise TypeError(
                f"the broker {broker!r} needs async subscribe(deliver), unsubscribe(deliver) "
                "and publish(payload) methods"
            )
        return broker

    async def activate(self) -> None:
        """Subscribe to the configured broker (again, if the configuration changed)."""
        broker = self.configured()
        if broker is self.subscribed:
            return
        old, self.subscribed = self.subscribed, broker
        if old is not None:
            await old.unsubscribe(self.deliver)
        await broker.subscribe(self.deliver)

    async def deactivate(self) -> None:
        broker, self.subscribed = self.subscribed, None
        if broker is not None:
            await broker.unsubscribe(self.deliver)

    def deliver(self, payload: bytes) -> None:
        """A broadcast from another process: pass it to the local sockets."""
        if not payload.startswith(_WIRE):
            return
        head, _, body = payload[len(_WIRE):].partition(b"\n")
        try:
            meta = json.loads(head)
            origin, name, kind = meta["o"], meta["c"], meta["k"]
            message: ASGIMessage = (
                {"type": "websocket.send", "text": body.decode()} if kind == "t"
                else {"type": "websocket.send", "bytes": body}
            )
        except (ValueError, KeyError, TypeError) as exc:
            logger.debug("ignored a malformed broadcast from the broker: %r", exc)
            return
        if origin == self.id:
            return
        if name is None:
            members: Iterable[WebSocketConnection] = self.connections
        else:
            channel = self.channels.get(name)
            if channel is None:
                return
            members = channel._members
        _fan_out(members, message, len(body), None)

    async def broadcast(
        self,
        members: Iterable[WebSocketConnection],
        name: str | None,
        message: ASGIMessage,
        size: int,
        filter: Callable[[WebSocketConnection], bool] | None,
    ) -> None:
        congested = _fan_out(members, message, size, filter)
        broker = self.configured()
        if broker is not self.local:
            if filter is None:
                await broker.publish(_wire(self.id, name, message))
            elif not self._warned_filter:
                self._warned_filter = True
                logger.warning(
                    "a filtered broadcast reaches this process's sockets only: a filter "
                    "function cannot run in other processes (bind the audience to a channel)"
                )
        if congested:
            await _relieve(congested)
        else:
            # let the writers run before the caller queues more
            await asyncio.sleep(0)


def _fan_out(
    members: Iterable[WebSocketConnection],
    message: ASGIMessage,
    size: int,
    filter: Callable[[WebSocketConnection], bool] | None,
) -> list[WebSocketConnection]:
    """Queue ``message`` on each member; return the congested ones."""
    congested = []
    for ws in tuple(members):
        if (filter is None or filter(ws)) and ws._post(message, size):
            congested.append(ws)
    return congested


async def _relieve(congested: list[WebSocketConnection]) -> None:
    """Back-pressure for broadcasters: wait until each congested socket drains
    below its limit, at most its ``send_timeout``; close those that do not."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    pending: dict[asyncio.Future[None], WebSocketConnection] = {}
    for ws in congested:
        waiter = loop.create_future()
        if ws._drain_waiters is None:
            ws._drain_waiters = []
        ws._drain_waiters.append(waiter)
        pending[waiter] = ws
    while pending:
        nearest = min(start + ws.send_timeout for ws in pending.values())
        done, _ = await asyncio.wait(pending, timeout=max(0.0, nearest - loop.time()))
        for waiter in done:
            del pending[waiter]
        now = loop.time()
        for waiter, ws in tuple(pending.items()):
            if now >= start + ws.send_timeout:
                del pending[waiter]
                waiter.cancel()
                if ws._queued > ws.queue_limit:
                    ws._too_slow()


_HUBS: weakref.WeakKeyDictionary[Server, _Hub] = weakref.WeakKeyDictionary()


def hub_of(server: Server) -> _Hub:
    hub = _HUBS.get(server)
    if hub is None:
        hub = _HUBS[server] = _Hub(server)
    return hub


def channel_of(server: Server, name: str) -> Channel:
    """``server.channel(name)``: the channel, created on first use."""
    if not isinstance(name, str) or not name:
        raise ValueError("a channel name is a non-empty str")
    hub = hub_of(server)
    channel = hub.channels.get(name)
    if channel is None:
        channel = hub.channels[name] = Channel(name, hub)
    return channel


async def broadcast_all(
    server: Server, data: Any, filter: Callable[[WebSocketConnection], bool] | None = None
) -> None:
    """``server.broadcast(data)``: every socket of every ws route, in every process."""
    message, size = encode_frame(data)
    hub = hub_of(server)
    await hub.broadcast(hub.connections, None, message, size, filter)


async def close_all(server: Server, code: int = 1001, reason: str = "server shutting down") -> None:
    """Close every socket of ``server`` (graceful shutdown) and leave the broker."""
    hub = _HUBS.get(server)
    if hub is None:
        return
    check_close(code, reason)
    hub.closing = True
    try:
        sockets = tuple(hub.connections)
        for ws in sockets:
            ws._abort(code, reason)
        closers = [ws._closer for ws in sockets if ws._closer is not None]
        if closers:
            await asyncio.wait(closers, timeout=CLOSE_TIMEOUT)
        await hub.deactivate()
    finally:
        hub.closing = False


# ------------------------------------------------------------------ handshake


async def handle_websocket(server: Server, scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI ``websocket`` scope: route, check, run the chain and the handler."""
    first = await receive()
    if first["type"] != "websocket.connect":
        return  # the client left before the handshake
    located = server.locate(scope)
    if isinstance(located, int):
        await refuse(scope, send, located)
        return
    router, host, forwarded = located
    hub = hub_of(server)
    ws = WebSocketConnection(scope, receive, send, router, host, hub)
    if forwarded is not None:
        ip, proto, fhost = forwarded
        if proto is not None:
            proto = "wss" if proto in ("https", "wss") else "ws"
        ws.forwarded(ip, proto, fhost)
    try:
        await _run(hub, ws)
    finally:
        await _finish(ws)


async def _run(hub: _Hub, ws: WebSocketConnection) -> None:
    try:
        if hub.closing:
            await ws._refuse(503)
            return
        endpoint = _prepare(ws)
        if isinstance(endpoint, int):
            await ws._refuse(endpoint)
            return
        settings = ws.router.settings
        session = settings.section("session")
        if session is not None and is_on(session, ws) and not await _load_session(ws, settings):
            return
        await hub.activate()
        chain: tuple[Callable[[Any, Any], Awaitable[Any]], ...] = ws.router.chain()
        if chain:
            await run_chain(ws, chain, endpoint)
        else:
            await endpoint(ws)
        if ws._state == _CONNECTING:
            # a middleware ended the chain without answering: nothing agreed to the socket
            await ws._refuse(403)
        if ws._state == _OPEN:
            await ws.close(1000)
    except WebSocketClosed:
        pass  # the client left
    except HTTPError as error:
        await _fail(ws, error.code)
    except asyncio.CancelledError:
        ws._abort(1001, "server shutting down")
        raise
    except Exception as exc:
        logger.error("unhandled error in WebSocket %s", ws.path, exc_info=exc)
        ws.data["error"] = exc
        await _fail(ws, 500)


def _prepare(ws: WebSocketConnection) -> Callable[[WebSocketConnection], Awaitable[None]] | int:
    """Match the route and check origin and subprotocol, before any user code
    runs: the endpoint to call, or the status to refuse with."""
    match = ws.router.match_ws(ws.path)
    if match is None:
        return _not_found
    route, ws.params = match
    ws.route = route
    options = route.options
    ws._limit = options.get("limit") or 0
    ws._advanced = bool(options.get("advanced"))
    timeout = options.get("timeout")
    ws._timeout = float(timeout) if timeout else None
    origins = options.get("origins")
    if origins is not None:
        origin = ws.headers.get("origin")
        # Browsers always send Origin; clients without it are not browsers, and
        # cross-site WebSocket hijacking needs a browser.
        if origin is not None:
            from .cors import origin_allowed

            if not origin_allowed(origin, origins):
                logger.info("WebSocket %s refused: origin %r not allowed", ws.path, origin)
                return 403
    protocols = options.get("protocols")
    if protocols:
        offered = ws.scope.get("subprotocols") or ()
        chosen = next((name for name in protocols if name in offered), None)
        if chosen is None:
            logger.info("WebSocket %s refused: no supported subprotocol in %r", ws.path, offered)
            return 403
        ws.subprotocol = chosen
    return _endpoint_of(route)


async def _not_found(ws: WebSocketConnection) -> None:
    await ws._refuse(404)


def _endpoint_of(route: Route) -> Callable[[WebSocketConnection], Awaitable[None]]:
    handler = route.handler

    async def endpoint(ws: WebSocketConnection) -> None:
        await handler(ws)  # type: ignore[arg-type]
        # SPEC §6: returning from the handler closes with 1000 (advanced routes
        # included: iterating the socket is what hands events to listeners).
        # closed here, inside the chain, so that a middleware's code after
        # next() sees the socket over
        if ws._state == _CONNECTING:
            await ws.accept()
        if ws._state == _OPEN:
            await ws.close(1000)

    return endpoint


async def _fail(ws: WebSocketConnection, code: int) -> None:
    if ws._state == _CONNECTING:
        with contextlib.suppress(OSError):
            await ws._refuse(code)
    else:
        ws._abort(1008 if code < 500 else 1011, reason_phrase(code))


async def _finish(ws: WebSocketConnection) -> None:
    """After the handler: the close frame out, the session saved, listeners told."""
    closer = ws._closer
    if closer is not None:
        await closer
    ws._detach()
    ws._drop_queue()
    if ws._idle is not None:
        ws._idle.cancel()
    if ws._state == _REFUSED:
        return
    if ws.session is not None:
        await ws._commit_session(at_accept=False)
    listeners = ws._listeners.get("close") if ws._listeners is not None else None
    if listeners:
        info = {"code": ws._close_code or 1005, "reason": ws._close_reason}
        for listener in listeners:
            try:
                result = listener(info)
                if isinstance(result, Awaitable):
                    await result
            except Exception:
                logger.exception("a WebSocket close listener failed: %s", ws.path)


async def _load_session(ws: WebSocketConnection, settings: Settings) -> bool:
    from .sessions import FEATURE, StoreUnavailable

    manager: SessionManager = settings.state(FEATURE)
    try:
        ws.session = await manager.load(ws.cookies.get(manager.cookie))
    except StoreUnavailable as exc:
        logger.error("session store unavailable, WebSocket refused with 503: %s", exc)
        await ws._refuse(503)
        return False
    ws._sessions = manager
    return True


"""One WebSocket: the request side of the handshake, then the socket.

The socket is accepted lazily, on the handler's first ``send``/``receive`` (or
an explicit ``accept()``), so a handler can still refuse with an HTTP status
after looking at the request. The handler's frames are sent directly; frames
from broadcasts go through the connection's ``Outbox``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from ..encode import dumps_json
from ..errors import reason_phrase
from ..http.headers import validate_header_name, validate_header_value
from ..request import RawResponse, Request
from ..timers import IdleDeadline
from ..types import Message as ASGIMessage
from ..types import Receive, Scope, Send
from .frames import (
    RESERVED_EVENTS,
    Message,
    WebSocketClosed,
    check_close,
    encode_frame,
    notify,
)
from .outbox import Outbox
from .refusal import refuse as refuse_handshake

if TYPE_CHECKING:
    from ..router import Router
    from ..sessions import Session, SessionManager
    from .channels import Channel, Hub

__all__ = ["CLOSE_TIMEOUT", "Listener", "WebSocketConnection"]

logger = logging.getLogger("simples")

_MISSING: Final[Any] = object()

# How long a forced close frame may wait for room in the peer's window.
CLOSE_TIMEOUT: Final = 5.0

# Connection states
_CONNECTING: Final = 0
_OPEN: Final = 1
_CLOSING: Final = 2  # close() called: queued frames flush, then the close frame
_CLOSED: Final = 3  # the close frame went out, or the connection is gone
_REFUSED: Final = 4  # the handshake was answered with an HTTP status

Listener = Callable[[Any], Any]


class WebSocketConnection(Request):
    """One WebSocket: the request-side members (``Request``) plus the socket."""

    __slots__ = (
        "_accepting",
        "_advanced",
        "_channels",
        "_close_code",
        "_close_reason",
        "_closer",
        "_hub",
        "_idle",
        "_interrupts",
        "_limit",
        "_listeners",
        "_loop",
        "_reader",
        "_sender",
        "_sessions",
        "_state",
        "_timeout",
        "outbox",
        "subprotocol",
    )

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        router: Router,
        host: str,
        hub: Hub | None = None,
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
        self._idle: IdleDeadline | None = None
        self._listeners: dict[str, list[Listener]] | None = None
        self._channels: set[Channel] = set()
        self._close_code: int | None = None
        self._close_reason = ""
        self._closer: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[Any] | None = None
        self._sender: asyncio.Task[Any] | None = None
        self._interrupts: set[asyncio.Task[Any]] | None = None
        self._sessions: SessionManager | None = None
        self.subprotocol: str | None = None
        #: Framework-internal: the broadcast frames waiting for this socket.
        self.outbox = Outbox(
            send, self.path, lost=self._lost, too_slow=self._too_slow,
            closed_error=self._closed_error,
        )  # fmt: skip

    def __repr__(self) -> str:
        states = ("connecting", "open", "closing", "closed", "refused")
        return f"<WebSocketConnection {self.path} {states[self._state]}>"

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

    @property
    def queue_limit(self) -> int:
        """Bytes of broadcast frames that may wait before the socket is congested."""
        return self.outbox.limit

    @queue_limit.setter
    def queue_limit(self, value: int) -> None:
        self.outbox.limit = value

    @property
    def send_timeout(self) -> float:
        """How long a broadcaster waits for this socket to drain before closing it (1013)."""
        return self.outbox.timeout

    @send_timeout.setter
    def send_timeout(self, value: float) -> None:
        self.outbox.timeout = value

    def keep(self, timeout: float | None = _MISSING) -> Any:
        """Get or set the idle timeout: close with 1001 after ``timeout`` seconds
        without receiving a message (``0``/``None`` turns it off)."""
        if timeout is _MISSING:
            return self._timeout
        if timeout is not None and timeout < 0:
            raise ValueError("keep() timeout must be positive")
        self._timeout = float(timeout) if timeout else None
        if self._idle is not None:
            self._idle.stop()
            self._idle = None
        if self._state == _OPEN:
            self._arm_idle()
        return self

    def _set_state(self, state: int) -> None:
        self._state = state
        outbox = self.outbox
        outbox.accepting = state <= _OPEN
        outbox.writable = state in (_OPEN, _CLOSING)

    # ---------------------------------------- framework-internal: the handshake

    def apply_route(self, route: Any, params: dict[str, Any]) -> None:
        """Framework-internal: take the matched route's options (message size
        limit, advanced mode, idle timeout)."""
        self.route = route
        self.params = params
        options = route.options
        self._limit = options.get("limit") or 0
        self._advanced = bool(options.get("advanced"))
        timeout = options.get("timeout")
        self._timeout = float(timeout) if timeout else None

    def hand_off(self) -> None:
        """Framework-internal: an app mounted with ``router.mount`` takes the
        socket over; this connection sends nothing more (no close frame, no
        session save)."""
        if self._state != _CONNECTING:
            raise RuntimeError("the handshake is over; the socket can no longer be handed off")
        self._set_state(_REFUSED)

    @property
    def response(self) -> RawResponse:
        """The raw ASGI side of the socket, for third-party code: ``response.send``."""
        return RawResponse(self._send)

    def use_sessions(self, session: Session, manager: SessionManager) -> None:
        """Framework-internal: the session loaded for the handshake and its manager."""
        self.session = session
        self._sessions = manager

    def note_bound(self, channel: Channel) -> None:
        """Framework-internal: ``channel.bind(ws)`` added this socket."""
        self._channels.add(channel)

    def note_unbound(self, channel: Channel) -> None:
        """Framework-internal: ``channel.unbind(ws)`` removed this socket."""
        self._channels.discard(channel)

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
            self._set_state(_OPEN)
            if self._hub is not None:
                self._hub.connections.add(self)
            if self._timeout is not None:
                self._arm_idle()
            self.outbox.open()
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
            await self.refuse(code)
        elif self._state == _REFUSED:
            raise RuntimeError("the handshake was already refused")
        else:
            self.close_now(1008 if code < 500 else 1011, reason_phrase(code))

    async def refuse(self, code: int) -> None:
        """Framework-internal (handlers call ``error(code)``): answer the
        handshake with HTTP status ``code``."""
        if self._state != _CONNECTING:
            raise RuntimeError("the handshake is over; it can no longer be refused")
        self._set_state(_REFUSED)
        self._close_code = 1006
        # OSError: the client left before hearing the answer
        with contextlib.suppress(OSError):
            await refuse_handshake(self.scope, self._send, code, self)

    async def fail(self, code: int) -> None:
        """Framework-internal: the handler failed with HTTP status ``code``;
        refuse the handshake, or close with 1008/1011 after it."""
        if self._state == _CONNECTING:
            with contextlib.suppress(OSError):
                await self.refuse(code)
        else:
            self.close_now(1008 if code < 500 else 1011, reason_phrase(code))

    async def finish(self) -> None:
        """Framework-internal, after the handler: the close frame out, the
        session saved, the close listeners told."""
        closer = self._closer
        if closer is not None:
            await closer
        self._detach()
        self.outbox.drop()
        if self._state == _REFUSED:
            return
        if self.session is not None:
            await self._commit_session(at_accept=False)
        listeners = self._listeners.get("close") if self._listeners is not None else None
        if listeners:
            info = {"code": self._close_code or 1005, "reason": self._close_reason}
            for listener in listeners:
                try:
                    result = listener(info)
                    if isinstance(result, Awaitable):
                        await result
                except Exception:
                    logger.exception("a WebSocket close listener failed: %s", self.path)

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
            task = asyncio.current_task(self._loop)
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
                        self.close_now(1009, "message too big")
                        raise StopAsyncIteration
                    message = Message("text", text)
                else:
                    data = event.get("bytes") or b""
                    if limit and len(data) > limit:
                        self.close_now(1009, "message too big")
                        raise StopAsyncIteration
                    message = Message("binary", data)
                if self._idle is not None:
                    self._idle.touch()
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
        await notify(listeners, data)
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
            await self.refuse(403)
            return
        if state != _OPEN:
            return
        self._set_state(_CLOSING)
        self._close_code = code
        self._close_reason = reason
        # RuntimeError: a server that already considers the socket closed
        with contextlib.suppress(WebSocketClosed, RuntimeError):
            await self._deliver({"type": "websocket.close", "code": code, "reason": reason})
        self._set_state(_CLOSED)
        self._detach()

    async def _deliver(self, message: ASGIMessage) -> None:
        """Send in order with queued broadcast frames; wait until it is written."""
        outbox = self.outbox
        if outbox.sending or outbox.writing or outbox.queue:
            await outbox.put(message)
            return
        outbox.sending = True
        task = self._sender = asyncio.current_task(self._loop)
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
            outbox.sending = False
            self._sender = None
            if outbox.queue:
                outbox.resume()

    def _too_slow(self) -> None:
        logger.warning(
            "WebSocket %s: the client does not read fast enough (%d bytes waiting); "
            "closing with 1013", self.path, self.outbox.queued,
        )
        self.close_now(1013, "too slow: send queue full")

    def _closed_error(self) -> WebSocketClosed:
        return WebSocketClosed(self._close_code or 1006, self._close_reason)

    # ----------------------------------------------------------------- closing

    def close_now(self, code: int, reason: str) -> asyncio.Task[None] | None:
        """Framework-internal (handlers call ``close()`` or ``error()``): close
        at once, dropping queued frames. Used for oversized messages, slow
        readers, idle timeouts, errors and shutdown; never waits. Returns the
        task sending the close frame, if there is one."""
        state = self._state
        if state == _CONNECTING or state >= _CLOSED:
            return self._closer
        self._set_state(_CLOSED)
        if self._close_code is None or state == _OPEN:
            self._close_code = code
            self._close_reason = reason
        self.outbox.drop()
        if self._sender is not None and self._sender is not asyncio.current_task():
            self._interrupt(self._sender)
        self._closer = asyncio.get_running_loop().create_task(self._send_close(code, reason))
        self._detach()
        if self._reader is not None and self._reader is not asyncio.current_task():
            self._interrupt(self._reader)
        return self._closer

    async def _send_close(self, code: int, reason: str) -> None:
        try:
            message = {"type": "websocket.close", "code": code, "reason": reason}
            await asyncio.wait_for(self._send(message), CLOSE_TIMEOUT)
        except (OSError, RuntimeError, TimeoutError) as exc:
            logger.debug("WebSocket %s: close frame not sent: %r", self.path, exc)

    def _disconnected(self, code: int, reason: str) -> None:
        """The server says the connection is over (peer close, or our close echoed)."""
        if self._close_code is None or self._state == _OPEN:
            self._close_code = code
            self._close_reason = reason
        self._set_state(max(self._state, _CLOSED))
        self.outbox.drop()
        self._detach()

    def _lost(self) -> None:
        if self._state < _CLOSED:
            self._disconnected(1006, "")
            if self._reader is not None and self._reader is not asyncio.current_task():
                self._interrupt(self._reader)

    def _detach(self) -> None:
        """Leave every channel and the server's registry; stop the idle timer."""
        for channel in tuple(self._channels):
            channel.discard(self)
        self._channels.clear()
        if self._hub is not None:
            self._hub.connections.discard(self)
        if self._idle is not None:
            self._idle.stop()
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
        if self._timeout is not None:
            self._idle = IdleDeadline(self._timeout, self._idle_expired)

    def _idle_expired(self) -> None:
        self._idle = None
        if self._state == _OPEN:
            self.close_now(1001, "idle timeout")

    # ----------------------------------------------------------------- session

    async def _commit_session(self, *, at_accept: bool) -> str | None:
        session, manager = self.session, self._sessions
        if session is None or manager is None:
            return None
        from ..sessions import StoreUnavailable

        if not at_accept and (session.is_new or not session.changed):
            # a cookie can no longer reach the browser: only an existing session is saved
            return None
        try:
            return await manager.commit(session, https=self.protocol == "wss")
        except StoreUnavailable as exc:
            logger.error("session store unavailable while saving a WebSocket session: %s", exc)
            return None

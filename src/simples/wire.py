"""uvicorn's protocols, made safe: a deadline on the HTTP head, WebSocket
frames handled in bounded turns.

uvicorn bounds the wait *between* requests (``timeout_keep_alive``) but not the
time a client takes to send a head once it started: a client that sends one
header byte now and then (Slowloris) holds its connection, and its file
descriptor, for ever. Both parsers (httptools, h11) are subclassed here, and
the class is handed to uvicorn as ``http=`` (``"simples.wire:H11"``, a string,
so that worker processes import it too):

* the clock starts when the connection is made and again when a response is
  complete (a keep-alive connection then waits for its next head, or for the
  rest of a body the application did not read);
* it stops when a head is complete (httptools: ``on_headers_complete``; h11: a
  new request cycle was made from a ``Request`` event);
* past ``limits["header_timeout"]`` seconds (read from the served app, 0 = off)
  the connection is closed without an answer, as uvicorn's own keep-alive
  timeout does.

One timer per connection, re-armed lazily: marking a head complete or a
response done only notes the time (no timer call per request).

WebSocket (``WSProto``, uvicorn's ``wsproto`` protocol, handed over as
``ws="simples.wire:WSProto"``): uvicorn parses everything one read brought in
one go, and wsproto costs about 40 µs per frame here, so 100,000 one-byte
fragments of one message (700 KB, two or three reads) held the event loop for
seconds and every other connection waited. ``WSProto`` handles at most
``WS_EVENTS_PER_TURN`` frames per turn of the loop; the rest waits for the
next turn (``loop.call_soon``) with reading paused, so the backlog never grows
beyond what one read brought.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator, Iterator
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.wsproto_impl import WSProtocol
from wsproto import ConnectionType, WSConnection
from wsproto.events import Event

from .limits import LIMITS

# what ``start()``/``listen()``/the CLI accept as ``http=``
PARSERS = ("auto", "httptools", "h11")


def protocol(http: str) -> str:
    """The import string of the guarded protocol for a parser name."""
    if http not in PARSERS:
        raise ValueError(f"http is one of {', '.join(PARSERS)}, not {http!r}")
    if http == "auto":
        try:
            import httptools  # noqa: F401
        except ImportError:
            http = "h11"
        else:
            http = "httptools"
    return "simples.wire:HttpTools" if http == "httptools" else "simples.wire:H11"


def header_timeout(config: Any, app: Any) -> float:
    """``limits["header_timeout"]`` of the served simples app (once per config)."""
    cached = getattr(config, "simples_header_timeout", None)
    if cached is not None:
        return float(cached)
    # uvicorn may wrap the app in middleware that keeps it as ``.app``
    for _ in range(8):
        if hasattr(app, "settings") or not hasattr(app, "app"):
            break
        app = app.app
    settings = getattr(app, "settings", None)
    limits = getattr(settings, "limits", None)
    value = LIMITS["header_timeout"] if limits is None else limits["header_timeout"]
    config.simples_header_timeout = value
    return float(value)


class _HeadDeadline:
    """The mixin: ``_head_since`` is when the wait for a head began, or None."""

    # set by the uvicorn protocol this is mixed into
    config: Any
    app: Any
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    cycle: Any

    _head_since: float | None = None
    _head_timer: asyncio.TimerHandle | None = None
    _head_timeout: float = 0.0

    def _head_start(self) -> None:
        timeout = self._head_timeout = header_timeout(self.config, self.app)
        if timeout > 0:
            now = self._head_since = self.loop.time()
            self._head_timer = self.loop.call_at(now + timeout, self._head_check)

    def _head_check(self) -> None:
        since = self._head_since
        now = self.loop.time()
        if since is not None and now >= since + self._head_timeout:
            self._head_timer = None
            if not self.transport.is_closing():
                self.transport.close()
            return
        when = (now if since is None else since) + self._head_timeout
        self._head_timer = self.loop.call_at(when, self._head_check)

    def _head_stop(self) -> None:
        timer = self._head_timer
        if timer is not None:
            timer.cancel()
            self._head_timer = None

    # The hooks both protocols share (cooperative: the protocol's own runs first).

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._head_start()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_stop()
        super().connection_lost(exc)  # type: ignore[misc]

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._head_wait()

    def _head_wait(self) -> None:
        # a response is complete: unless a pipelined head is already in, the
        # connection now waits for a head (or for the rest of an unread body)
        if self._head_timer is not None and self.cycle.response_complete:
            self._head_since = self.loop.time()


class H11(_HeadDeadline, H11Protocol):
    """uvicorn's h11 protocol with the head deadline."""

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:
            self._head_since = None  # a Request event made a new cycle

    def handle_websocket_upgrade(self, event: Any) -> None:
        self._head_stop()
        super().handle_websocket_upgrade(event)


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is optional
    pass
else:

    class HttpTools(_HeadDeadline, HttpToolsProtocol):
        """uvicorn's httptools protocol with the head deadline."""

        def on_headers_complete(self) -> None:
            self._head_since = None
            super().on_headers_complete()

        def handle_websocket_upgrade(self) -> None:
            self._head_stop()
            super().handle_websocket_upgrade()


# WebSocket frames handled per turn of the event loop: about 3 ms of parsing
# at 40 µs a frame, so a concurrent request waits at most that long.
WS_EVENTS_PER_TURN = 64


class _TurnConnection(WSConnection):
    """wsproto's server connection whose ``events()`` hands out at most
    ``WS_EVENTS_PER_TURN`` events; ``more`` says whether it stopped short.

    The events left over stay in one suspended generator, which also picks up
    data fed in meanwhile (wsproto parses its buffer lazily)."""

    def __init__(self) -> None:
        super().__init__(ConnectionType.SERVER)
        self._pending: Iterator[Event] | None = None
        self.more = False

    def events(self) -> Generator[Event, None, None]:
        pending = self._pending
        if pending is None:
            pending = self._pending = super().events()
        self.more = False
        for _ in range(WS_EVENTS_PER_TURN):
            event = next(pending, None)
            if event is None:
                self._pending = None
                return
            yield event
        self.more = True


class WSProto(WSProtocol):
    """uvicorn's wsproto protocol, handling frames in bounded turns.

    ``read_paused`` is uvicorn's "reading is paused" flag: uvicorn sets it
    when a message is complete and clears it in ``receive()`` once the app
    took every message. Here it is also set while frames wait for their turn,
    and reading resumes only when both are done."""

    conn: WSConnection

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn = self._turns = _TurnConnection()
        self._next_turn: asyncio.Handle | None = None

    def handle_events(self) -> None:
        if self._next_turn is not None:
            return  # data fed while frames wait: that turn handles them too
        super().handle_events()
        if self._turns.more:
            if not self.read_paused:
                self.read_paused = True
                self.transport.pause_reading()
            self._next_turn = self.loop.call_soon(self._turn)

    def _turn(self) -> None:
        self._next_turn = None
        self.handle_events()
        if self._next_turn is None and self.read_paused and self.queue.empty():
            # the backlog is done and the app has taken every message
            self.read_paused = False
            self.transport.resume_reading()

    async def receive(self) -> Any:
        message = await self.queue.get()
        # as uvicorn's, but never while frames wait for their turn (the
        # backlog would grow by a read per message the app takes)
        if self.read_paused and self._next_turn is None and self.queue.empty():
            self.read_paused = False
            self.transport.resume_reading()
        return message

    def connection_lost(self, exc: Exception | None) -> None:
        if self._next_turn is not None:
            self._next_turn.cancel()
            self._next_turn = None
        super().connection_lost(exc)

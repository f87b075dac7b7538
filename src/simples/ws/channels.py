"""Channels and the per-server hub: who gets a broadcast.

Broadcasts are delivered to this process's sockets at once (queued on each
socket's ``Outbox``) and handed to the configured broker, which carries them to
the other processes; the default ``LocalBroker`` stays inside the process.
A broadcaster waits for congested sockets (back-pressure), up to each socket's
``send_timeout``, and closes those that stay congested with 1013.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

from ..types import Message as ASGIMessage
from .brokers import Broker, LocalBroker
from .connection import CLOSE_TIMEOUT, WebSocketConnection
from .frames import check_close, encode_frame
from .outbox import Outbox, write_all

if TYPE_CHECKING:
    from ..server import Server

__all__ = ["Channel", "Hub", "broadcast_all", "channel_of", "close_all", "hub_of"]

logger = logging.getLogger("simples")

Filter = Callable[[WebSocketConnection], bool]


class Channel:
    """A named group of sockets: ``bind``, ``unbind``, ``broadcast``. The
    members are this process's sockets; broadcasts reach the other processes'
    members through the broker."""

    __slots__ = ("__weakref__", "_hub", "_members", "name")

    def __init__(self, name: str, hub: Hub) -> None:
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
        if not ws.closed:
            self._members.add(ws)
            ws.note_bound(self)
        return self

    def unbind(self, ws: WebSocketConnection) -> Channel:
        self._members.discard(ws)
        ws.note_unbound(self)
        return self

    def discard(self, ws: WebSocketConnection) -> None:
        """Framework-internal: a closing socket leaves (it forgets the channel itself)."""
        self._members.discard(ws)

    async def broadcast(self, data: Any, filter: Filter | None = None) -> None:
        """Send ``data`` to every member, here and (without ``filter``) in every
        process reached by the broker. ``filter(ws) -> bool`` is a Python
        function, so it runs here only: a filtered broadcast stays local."""
        message, size = encode_frame(data)
        await self._hub.broadcast(self._members, self.name, message, size, filter)


# ------------------------------------------------------------ per-server hub

_WIRE: Final = b"simples-ws/1 "


def _wire(origin: str, channel: str | None, message: ASGIMessage) -> bytes:
    text = message.get("text")
    meta = {"o": origin, "c": channel, "k": "b" if text is None else "t"}
    header = json.dumps(meta, separators=(",", ":"))
    body: bytes = message["bytes"] if text is None else text.encode()
    return b"".join((_WIRE, header.encode(), b"\n", body))


class Hub:
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
            members = channel.members
        _fan_out(members, message, len(body), None)

    async def broadcast(
        self,
        members: Iterable[WebSocketConnection],
        name: str | None,
        message: ASGIMessage,
        size: int,
        filter: Filter | None,
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
    filter: Filter | None,
) -> list[WebSocketConnection]:
    """Queue ``message`` on each member and start the writers of the idle ones;
    return the congested members."""
    congested = []
    idle: list[Outbox] = []
    for ws in tuple(members):
        if (filter is None or filter(ws)) and ws.outbox.post(message, size, idle):
            congested.append(ws)
    write_all(idle)
    return congested


async def _relieve(congested: list[WebSocketConnection]) -> None:
    """Back-pressure for broadcasters: wait until each congested socket drains
    below its limit, at most its ``send_timeout``; close those that do not."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    pending: dict[asyncio.Future[None], WebSocketConnection] = {}
    for ws in congested:
        # the writers started by the fan-out may have drained it already
        if ws.outbox.congested:
            pending[ws.outbox.wait_drained()] = ws
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
                if ws.outbox.congested:
                    ws.outbox.too_slow()


_HUBS: weakref.WeakKeyDictionary[Server, Hub] = weakref.WeakKeyDictionary()


def hub_of(server: Server) -> Hub:
    hub = _HUBS.get(server)
    if hub is None:
        hub = _HUBS[server] = Hub(server)
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


async def broadcast_all(server: Server, data: Any, filter: Filter | None = None) -> None:
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
        closers = [
            closer for ws in tuple(hub.connections)
            if (closer := ws.close_now(code, reason)) is not None
        ]  # fmt: skip
        if closers:
            await asyncio.wait(closers, timeout=CLOSE_TIMEOUT)
        await hub.deactivate()
    finally:
        hub.closing = False

"""Brokers: how broadcasts travel between processes.

``LocalBroker`` keeps them inside the process (servers of one process sharing an
instance reach each other's sockets, across event loops too); ``RedisBroker``
uses Redis pub/sub (https://redis.io/docs/latest/develop/interact/pubsub/).
A broker only moves opaque payloads: the hub in ``channels`` encodes and
decodes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, runtime_checkable

__all__ = ["Broker", "Deliver", "LocalBroker", "RedisBroker", "redis_errors"]

logger = logging.getLogger("simples")

Deliver = Callable[[bytes], None]



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
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

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

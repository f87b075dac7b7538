"""The send queue of one socket: frames waiting to be written, and the writer.

Outgoing frames from a handler are sent directly, so a slow reader slows the
handler down (the ASGI server's own back-pressure). Frames from broadcasts go
through this queue, bounded in bytes: a broadcaster waits a while for a
congested socket, and a socket that still cannot keep up is closed with 1013
(RFC 6455 §7.4.1, "Try Again Later") rather than buffered without bound.

A broadcast to many idle sockets writes their frames in one task, not one task
per socket (``write_all``). On Python 3.12+ that task starts eagerly
(``asyncio.eager_task_factory``,
https://docs.python.org/3/library/asyncio-task.html#eager-task-factory): the
frames are written before ``broadcast`` returns, and a task is only kept if a
send has to wait. On 3.11 the task runs on the loop's next turn. Either way,
once a send waits, the sockets after it get writers of their own so that one
slow client does not hold up the others.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Final

from ..types import Message as ASGIMessage
from ..types import Send
from .frames import WebSocketClosed

__all__ = ["SEND_QUEUE_LIMIT", "SEND_TIMEOUT", "Outbox", "start_task", "write_all"]

logger = logging.getLogger("simples")

# Bytes of broadcast frames a socket may have waiting (each frame also counts
# FRAME_COST, so a flood of tiny frames is bounded too). Past the limit the
# socket is congested: a broadcaster waits for it up to SEND_TIMEOUT seconds,
# then closes it with 1013. Frames from other processes cannot wait: past
# HARD_FACTOR times the limit the socket is closed at once.
SEND_QUEUE_LIMIT: Final = 1 << 20
SEND_TIMEOUT: Final = 5.0
HARD_FACTOR: Final = 4
FRAME_COST: Final = 64

EAGER: Final = sys.version_info >= (3, 12)

if sys.version_info >= (3, 12):

    def start_task(
        loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, None]
    ) -> asyncio.Task[None]:
        """Run ``coroutine`` in a task that starts at once, here, and is only
        scheduled if it has to wait (an eager task). The task may be done on
        return."""
        return asyncio.eager_task_factory(loop, coroutine)

else:

    def start_task(
        loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, None]
    ) -> asyncio.Task[None]:
        """Run ``coroutine`` in a task (Python 3.11 has no eager tasks: it starts
        on the loop's next turn)."""
        return loop.create_task(coroutine)


# A queued frame: the ASGI message, the bytes it counts, and the future of the
# handler waiting for it (None for broadcast frames, which nobody awaits).
_Frame = tuple[ASGIMessage, int, "asyncio.Future[None] | None"]


class Outbox:
    """The frames waiting for one socket and the state of its writer.

    Framework-internal: the connection owns one (``ws.outbox``) and flips
    ``accepting``/``writable`` as its state changes; channels post broadcast
    frames to it. Handlers never need it: ``ws.queue_limit`` and
    ``ws.send_timeout`` are its ``limit`` and ``timeout``."""

    __slots__ = (
        "_closed_error",
        "_drain_waiters",
        "_name",
        "_on_lost",
        "_on_too_slow",
        "_queued",
        "_send",
        "_writer",
        "accepting",
        "limit",
        "queue",
        "sending",
        "timeout",
        "writable",
        "writing",
    )

    def __init__(
        self,
        send: Send,
        name: str,
        *,
        lost: Callable[[], None],
        too_slow: Callable[[], None],
        closed_error: Callable[[], WebSocketClosed],
    ) -> None:
        self._send = send
        self._name = name
        self._on_lost = lost
        self._on_too_slow = too_slow
        self._closed_error = closed_error
        #: the frames waiting: (message, bytes counted, the handler's waiter or None)
        self.queue: deque[_Frame] = deque()
        self._queued = 0
        #: a writer (a task of its own or a batch) is in charge of the queue
        self.writing = False
        # the task inside flush() for this outbox right now
        self._writer: asyncio.Task[Any] | None = None
        self._drain_waiters: list[asyncio.Future[None]] | None = None
        #: broadcast frames are taken (before the handshake and while open)
        self.accepting = True
        #: frames may be written (open, or closing after the queued frames)
        self.writable = False
        #: the handler is sending a frame directly, outside the queue
        self.sending = False
        self.limit = SEND_QUEUE_LIMIT
        self.timeout = SEND_TIMEOUT

    def __len__(self) -> int:
        return len(self.queue)

    @property
    def queued(self) -> int:
        """Bytes of broadcast frames waiting (each counting ``FRAME_COST`` more)."""
        return self._queued

    @property
    def congested(self) -> bool:
        return self._queued > self.limit

    @property
    def busy(self) -> bool:
        """Whether a frame sent now has to queue behind others."""
        return self.sending or self.writing or bool(self.queue)

    # -------------------------------------------------------------- queueing

    def post(
        self, message: ASGIMessage, size: int, idle: list[Outbox] | None = None
    ) -> bool:
        """Queue a broadcast frame without waiting. True when the socket is now
        congested (the broadcaster should wait for it). An outbox that needs a
        writer is added to ``idle`` for ``write_all``, or given one at once when
        ``idle`` is None."""
        if not self.accepting:
            return False
        queued = self._queued + size + FRAME_COST
        if queued > self.limit * HARD_FACTOR:
            if self.writable:
                self._on_too_slow()
            # not accepted yet: frames wait for the handshake, up to the hard limit
            return False
        self._queued = queued
        self.queue.append((message, size + FRAME_COST, None))
        if not self.writable:
            return False
        if not self.writing and not self.sending:
            if idle is None:
                self.start_writer()
            else:
                self.writing = True
                idle.append(self)
        return self._queued > self.limit

    async def put(self, message: ASGIMessage) -> None:
        """Queue a frame of the handler's behind the waiting ones and wait until
        it is written (``WebSocketClosed`` if the socket goes first)."""
        waiter = asyncio.get_running_loop().create_future()
        self.queue.append((message, 0, waiter))
        if not self.writing and not self.sending:
            self.start_writer()
        await waiter

    def open(self) -> None:
        """The handshake completed: write what waited for it."""
        self.writable = True
        if self.queue and not self.writing:
            self.start_writer()

    def resume(self) -> None:
        """A direct send finished: write what queued up meanwhile."""
        if self.queue and not self.writing and self.writable:
            self.start_writer()

    def too_slow(self) -> None:
        """The client does not read fast enough: the connection closes with 1013."""
        self._on_too_slow()

    def wait_drained(self) -> asyncio.Future[None]:
        """A future resolved once the queue is back under ``limit`` (or dropped)."""
        waiter = asyncio.get_running_loop().create_future()
        if self._drain_waiters is None:
            self._drain_waiters = []
        self._drain_waiters.append(waiter)
        return waiter

    def drop(self) -> None:
        """Forget every waiting frame (the socket is over): stop the writer, fail
        the handler's waiting sends, release the broadcasters waiting to drain."""
        self.accepting = self.writable = False
        writer = self._writer
        if writer is not None and writer is not asyncio.current_task():
            writer.cancel()
        self._writer = None
        self.writing = False
        if self.queue:
            closed = self._closed_error()
            for _, _, waiter in self.queue:
                if waiter is not None and not waiter.done():
                    waiter.set_exception(closed)
            self.queue.clear()
        self._queued = 0
        self._wake_drained()

    def _wake_drained(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    # --------------------------------------------------------------- writing

    def start_writer(self) -> None:
        """Give the queue a task of its own."""
        self.writing = True
        start_task(asyncio.get_running_loop(), self._write_alone())

    def hand_over(self) -> None:
        """A batch left this outbox to itself: start its own writer, if it still
        has one to wait for."""
        if self.writing and self._writer is None:
            start_task(asyncio.get_running_loop(), self._write_alone())

    async def _write_alone(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        await self.flush(task)

    async def flush(self, task: asyncio.Task[Any]) -> None:
        """Write the queue until it is empty; ``task`` is the one running this
        (so that ``drop`` can cancel it). Does nothing if the outbox was dropped
        or another task writes it."""
        if not self.writing or self._writer is not None:
            return
        self._writer = task
        queue = self.queue
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
                        logger.debug("WebSocket %s: send failed: %r", self._name, exc)
                    else:
                        logger.error("WebSocket %s: send failed", self._name, exc_info=exc)
                    if waiter is not None and not waiter.done():
                        waiter.set_exception(WebSocketClosed(1006))
                    self._on_lost()
                    return
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
                waiter = None
                if self._drain_waiters is not None and self._queued <= self.limit:
                    self._wake_drained()
        except asyncio.CancelledError:
            if waiter is not None and not waiter.done():
                waiter.set_exception(self._closed_error())
            raise
        finally:
            # drop() may have replaced the writer meanwhile: leave its successor be
            if self._writer is task:
                self._writer = None
                self.writing = False


class _Batch:
    """Writes the queues of several idle outboxes one after the other, in one
    task; once a send has to wait, the outboxes not reached yet get writers of
    their own (``split``)."""

    __slots__ = ("done", "index", "outboxes", "split_off")

    def __init__(self, outboxes: list[Outbox]) -> None:
        self.outboxes = outboxes
        self.index = -1
        self.done = False
        self.split_off = False

    async def run(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        try:
            outboxes = self.outboxes
            for index, outbox in enumerate(outboxes):
                if self.split_off:
                    return
                self.index = index
                await outbox.flush(task)
        finally:
            self.done = True

    def split(self) -> None:
        if self.done or self.split_off:
            return
        self.split_off = True
        for outbox in self.outboxes[self.index + 1 :]:
            outbox.hand_over()


def write_all(outboxes: list[Outbox]) -> None:
    """Write the queues of ``outboxes`` (each marked as having a writer by
    ``post``), in one task rather than one task each."""
    if not outboxes:
        return
    loop = asyncio.get_running_loop()
    if len(outboxes) == 1:
        outboxes[0].hand_over()
        return
    batch = _Batch(outboxes)
    task = start_task(loop, batch.run())
    if task.done():
        return
    if EAGER:
        # started eagerly and had to wait: the rest gets writers now
        batch.split()
    else:
        # Its first step runs on the next turn, just before this callback: if
        # that step had to wait, the rest gets writers then.
        loop.call_soon(batch.split)

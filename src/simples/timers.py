"""Idle deadlines: one helper for ``keep()``, the body's idle timeout and the
WebSocket idle timeout.

A deadline fires once ``idle`` seconds pass without ``touch()``. It holds one
timer, re-armed lazily: ``touch()`` only notes the time (a timer call per
chunk or message would cost more than the chunk), and when the timer fires it
re-arms itself at the last touch plus ``idle`` unless that moment is past.

Most deadlines end young (an exchange is over in milliseconds, its ``keep()``
or body deadline with it): a deadline of at least ``YOUTH`` seconds starts
without a timer of its own, as one of the loop's young deadlines that share
one timer (``_Young``), and gets its own only if it lives ``YOUTH`` seconds.
Creating and stopping one that ends young is a set insertion and a removal.

What firing does is the owner's choice (``expire``): the WebSocket closes its
socket; the HTTP exchange and the body reader cancel their task with
``TaskDeadline``, whose ``withdraw()`` is the one place a cancellation it caused
is told apart from any other and taken back (``Task.uncancel``, see
https://docs.python.org/3/library/asyncio-task.html#asyncio.Task.uncancel).

``asyncio.timeout()`` would do the cancel and the uncancel itself, but entering
one costs several microseconds per exchange (measured on Python 3.11), which is
more than the rest of a small response; a deadline costs nothing until it is
asked for.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, Final

# How long a deadline may live before it gets a timer of its own.
YOUTH: Final = 0.05


class IdleDeadline:
    """Calls ``expire()`` once ``idle`` seconds pass with no ``touch()``.

    While ``paused`` the clock does not count (the body reader pauses while the
    handler, not the client, is the one being slow)."""

    __slots__ = ("_expire", "_handle", "_last", "_loop", "_young", "expired", "idle", "paused")

    def __init__(self, idle: float, expire: Callable[[], Any]) -> None:
        if idle <= 0:
            raise ValueError(f"an idle timeout is a positive number of seconds, got {idle!r}")
        self.idle = float(idle)
        self.expired = False
        self.paused = False
        self._expire = expire
        loop = self._loop = asyncio.get_running_loop()
        self._last = loop.time()
        self._handle: asyncio.TimerHandle | None = None
        self._young: _Young | None = None
        if self.idle < YOUTH:
            self._handle = loop.call_at(self._last + self.idle, self._check)
        else:
            self._join_young()

    def _join_young(self) -> None:
        """Wait as one of this loop's young deadlines (see the module's docs)."""
        loop = self._loop
        young = getattr(_threads, "young", None)
        if young is None or young.loop is not loop:
            young = _threads.young = _Young(loop)
        self._young = young
        young.add(self)

    def touch(self) -> None:
        """Note activity now (cheap: no timer is moved)."""
        self._last = self._loop.time()

    def stop(self) -> None:
        """Disarm for good. Safe to call more than once."""
        young = self._young
        if young is not None:
            young.discard(self)
            self._young = None
        handle = self._handle
        if handle is not None:
            handle.cancel()
            self._handle = None

    @property
    def active(self) -> bool:
        return self._handle is not None or self._young is not None

    def grown(self) -> None:
        """Called by :class:`_Young` once this deadline lived ``YOUTH`` seconds:
        from now on it keeps time with its own timer."""
        self._young = None
        self._check()

    def _check(self) -> None:
        now = self._loop.time()
        deadline = self._last + self.idle
        if self.paused:
            deadline = now + self.idle
            self._last = now
        if now < deadline:
            self._handle = self._loop.call_at(deadline, self._check)
            return
        self._handle = None
        self.expired = True
        self._expire()


class TaskDeadline(IdleDeadline):
    """An idle deadline that cancels the task which created it.

    The task catches ``CancelledError`` and asks ``withdraw()``: ``True`` means
    this deadline caused it, the cancellation is taken back and the task goes on
    to answer (408); ``False`` means someone else cancelled and the error must
    propagate."""

    __slots__ = ("_task",)

    def __init__(self, idle: float) -> None:
        self._task = asyncio.current_task()
        super().__init__(idle, self._cancel)

    def _cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def withdraw(self) -> bool:
        if not self.expired or self._task is None:
            return False
        self.expired = False
        # Another cancellation (a server shutdown) may be pending as well: then
        # the count stays above zero and that one wins.
        return self._task.uncancel() == 0


class BodyDeadline(TaskDeadline):
    """The body reader's deadline: an idle timeout, a minimum average rate and
    a total bound, in the one lazily re-armed timer of :class:`IdleDeadline`.

    Only time spent waiting for the client counts (``resume()`` before a
    ``receive()``, ``pause()`` after it): a handler slow with a chunk does not
    lower the client's rate. ``received`` is added to by the reader (bytes off
    the wire). Per chunk: two clock reads and an addition, no timer call.

    Most bodies are over within a millisecond of their first wait (granian
    hands every body over after one): it starts young, whatever its bounds
    (they are at least ``YOUTH`` seconds in practice: the smallest step is
    0.05 s).

    * ``idle``: seconds without a byte (``inf`` = off);
    * ``min_rate``: bytes per second averaged over the waiting time, checked
      once ``grace`` seconds of it passed (0 = off);
    * ``total``: seconds of waiting for the whole body (0 = off).

    ``reason`` says which bound was missed once it expired."""

    __slots__ = ("_since", "grace", "min_rate", "reason", "received", "total", "waited")

    def __init__(
        self, idle: float, *, min_rate: float = 0, grace: float = 0, total: float = 0
    ) -> None:
        # ints (the limits) or floats: only compared, added and formatted
        self.min_rate = min_rate
        self.grace = grace
        self.total = total
        self.received = 0
        self.waited = 0.0
        self.reason = ""
        self._task = asyncio.current_task()
        # not IdleDeadline.__init__: an idle deadline under YOUTH would get its
        # own timer at once, while here the rate or the total bound may be what
        # applies (idle inf), and the clock starts paused
        self.idle = idle
        if not idle > 0:
            raise ValueError(f"an idle timeout is a positive number of seconds, got {idle!r}")
        self.expired = False
        self.paused = True
        # _expire stays unset: _check cancels the task itself
        loop = self._loop = asyncio.get_running_loop()
        self._last = self._since = loop.time()
        self._handle = None
        self._join_young()

    def resume(self) -> None:
        """The reader waits for the client from now on."""
        self._last = self._since = self._loop.time()
        self.paused = False

    def pause(self) -> None:
        """The client delivered (or the wait ended): its clock stops."""
        now = self._loop.time()
        if not self.paused:
            self.waited += now - self._since
            self.paused = True
        self._last = now

    def _next_in(self, waited: float) -> float:
        """Seconds of waiting from ``waited`` on before a bound can be missed."""
        step = self.idle
        if self.total:
            step = min(step, self.total - waited)
        rate = self.min_rate
        if rate:
            if waited < self.grace:
                step = min(step, self.grace - waited)
            else:
                # the average falls under the rate at received / rate seconds
                step = min(step, self.received / rate - waited)
        # never a busy loop, never a timer past what the loop accepts
        return min(max(step, 0.05), 86400.0)

    def _check(self) -> None:
        now = self._loop.time()
        waited = self.waited
        if not self.paused:
            waited += now - self._since
            if now - self._last >= self.idle:
                self.reason = f"no body bytes for {self.idle:g} s"
            elif self.total and waited >= self.total:
                self.reason = f"the body took over {self.total:g} s"
            elif (
                self.min_rate and waited >= self.grace and self.received < self.min_rate * waited
            ):
                self.reason = (
                    f"the body came at {self.received / waited:.0f} bytes/s, "
                    f"under {self.min_rate:g} bytes/s"
                )
            if self.reason:
                self._handle = None
                self.expired = True
                self._cancel()
                return
        step = self._next_in(waited)
        if not self.paused:
            step = min(step, max(self._last + self.idle - now, 0.05))
        self._handle = self._loop.call_at(now + step, self._check)


class _Young:
    """The deadlines of one loop that are younger than ``YOUTH`` seconds,
    with the one timer they share: when it fires, each member still running
    is handed its own timer (``grown()``). The timer runs only while there
    are members, at most once per ``YOUTH``."""

    __slots__ = ("_handle", "loop", "members")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.members: set[IdleDeadline] = set()
        self._handle: asyncio.TimerHandle | None = None

    def add(self, deadline: IdleDeadline) -> None:
        self.members.add(deadline)
        if self._handle is None:
            self._handle = self.loop.call_at(self.loop.time() + YOUTH, self._grow)

    def discard(self, deadline: IdleDeadline) -> None:
        """``deadline`` ended young: it will never need a timer."""
        self.members.discard(deadline)

    def _grow(self) -> None:
        grown, self.members = self.members, set()
        self._handle = None
        for deadline in grown:
            deadline.grown()


# The young deadlines of the loop running in each thread (the sync client runs
# its own loop in a thread of its own).
_threads = threading.local()

"""Idle deadlines: one helper for ``keep()``, the body's idle timeout and the
WebSocket idle timeout.

A deadline fires once ``idle`` seconds pass without ``touch()``. It holds one
timer, re-armed lazily: ``touch()`` only notes the time (a timer call per
chunk or message would cost more than the chunk), and when the timer fires it
re-arms itself at the last touch plus ``idle`` unless that moment is past.

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
from collections.abc import Callable
from typing import Any


class IdleDeadline:
    """Calls ``expire()`` once ``idle`` seconds pass with no ``touch()``.

    While ``paused`` the clock does not count (the body reader pauses while the
    handler, not the client, is the one being slow)."""

    __slots__ = ("_expire", "_handle", "_last", "_loop", "expired", "idle", "paused")

    def __init__(self, idle: float, expire: Callable[[], Any]) -> None:
        if idle <= 0:
            raise ValueError(f"an idle timeout is a positive number of seconds, got {idle!r}")
        self.idle = float(idle)
        self.expired = False
        self.paused = False
        self._expire = expire
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()
        self._handle: asyncio.TimerHandle | None = self._loop.call_at(
            self._last + self.idle, self._check
        )

    def touch(self) -> None:
        """Note activity now (cheap: no timer is moved)."""
        self._last = self._loop.time()

    def stop(self) -> None:
        """Disarm for good. Safe to call more than once."""
        handle = self._handle
        if handle is not None:
            handle.cancel()
            self._handle = None

    @property
    def active(self) -> bool:
        return self._handle is not None

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

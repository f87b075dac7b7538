"""Unit checks behind tests/test_wire.py: the head check's framing rules and
the body deadline's clock (waiting time only, idle / rate / total)."""

from __future__ import annotations

import asyncio
import math
import threading
from typing import Any

import pytest

from simples.server import _sound
from simples.timers import YOUTH, BodyDeadline, IdleDeadline, TaskDeadline

CL = (b"content-length", b"3")
TE = (b"transfer-encoding", b"chunked")


@pytest.mark.parametrize(
    ("fields", "version", "sound"),
    [
        ([CL], "1.1", True),
        ([TE], "1.1", True),
        ([(b"transfer-encoding", b"gzip, chunked")], "1.1", True),
        ([(b"transfer-encoding", b"gzip"), TE], "1.1", True),  # one list over two lines
        ([(b"transfer-encoding", b"CHUNKED ")], "1.1", True),
        ([TE, CL], "1.1", False),
        ([CL, TE], "1.1", False),
        ([(b"transfer-encoding", b"chunked, gzip")], "1.1", False),
        ([(b"transfer-encoding", b"chunked, chunked")], "1.1", False),
        ([TE, TE], "1.1", False),
        ([(b"transfer-encoding", b"")], "1.1", False),
        ([(b"transfer-encoding", b"gzip,,chunked")], "1.1", False),
        ([TE], "1.0", False),
        ([CL, CL], "1.1", False),
        ([CL, (b"content-length", b"4")], "1.1", False),
        ([(b"content-length", b"3, 3")], "1.1", False),
        ([(b"content-length", b"-3")], "1.1", False),
        ([(b"content-length", b"")], "1.1", False),
        ([(b"content-type", b"a/b"), (b"content-type", b"a/b")], "1.1", False),
        ([(b"range", b"bytes=0-1"), (b"origin", b"x"), (b"if-range", b"y")], "1.1", True),
        ([(b"origin", b"x"), (b"origin", b"x")], "1.1", False),
    ],
)
def test_framing_rules(fields: list[tuple[bytes, bytes]], version: str, sound: bool) -> None:
    assert _sound(fields, version) is sound


async def _expires(deadline: BodyDeadline, seconds: float) -> bool:
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        assert deadline.withdraw()
        return True
    return False


def test_the_rate_is_checked_after_the_grace() -> None:
    async def main() -> tuple[bool, str, float]:
        loop = asyncio.get_running_loop()
        deadline = BodyDeadline(math.inf, min_rate=1000, grace=0.2)
        deadline.resume()
        deadline.received = 50  # far under 1000 B/s
        started = loop.time()
        expired = await _expires(deadline, 2)
        return expired, deadline.reason, loop.time() - started

    expired, reason, elapsed = asyncio.run(main())
    assert expired
    assert "bytes/s" in reason
    assert 0.15 < elapsed < 1.0


def test_handler_time_is_not_the_clients() -> None:
    async def main() -> bool:
        deadline = BodyDeadline(0.2, min_rate=1000, grace=0.1, total=0.3)
        deadline.resume()
        deadline.received = 1000
        await asyncio.sleep(0.05)
        deadline.pause()  # the handler works for 0.6 s: no bound may fire
        expired = await _expires(deadline, 0.6)
        deadline.stop()
        return expired

    assert not asyncio.run(main())


def test_the_total_bound() -> None:
    async def main() -> tuple[bool, str]:
        deadline = BodyDeadline(10, total=0.3)
        deadline.resume()
        for _ in range(10):  # steady bytes: never idle
            deadline.received += 10_000
            if await _expires(deadline, 0.1):
                return True, deadline.reason
        return False, ""

    expired, reason = asyncio.run(main())
    assert expired
    assert "took over" in reason


def test_idle_still_fires() -> None:
    async def main() -> tuple[bool, str]:
        deadline = BodyDeadline(0.2)
        deadline.resume()
        return await _expires(deadline, 2), deadline.reason

    assert asyncio.run(main()) == (True, "no body bytes for 0.2 s")


class _CountingLoop(asyncio.SelectorEventLoop):
    """A loop that counts the timers it is asked for."""

    timers = 0

    def call_at(self, when: float, callback: Any, *args: Any, context: Any = None) -> Any:
        self.timers += 1
        return super().call_at(when, callback, *args, context=context)


def test_a_deadline_that_ends_young_costs_no_timer_of_its_own() -> None:
    # Under granian every body is handed over after one wait, so every body
    # makes a deadline: those that end within YOUTH share one timer.
    async def main() -> tuple[int, bool, bool]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, _CountingLoop)
        before = loop.timers
        for _ in range(100):
            deadline = BodyDeadline(30, min_rate=1024, grace=10)
            assert deadline.active
            deadline.resume()
            deadline.received += 100
            deadline.pause()
            deadline.stop()
            assert not deadline.active
        short_lived = loop.timers - before
        # one that lives on gets its own timer, and still fires
        late = BodyDeadline(YOUTH / 2)
        late.resume()
        expired = await _expires(late, 2)
        return short_lived, expired, late.active

    loop = _CountingLoop()
    try:
        short_lived, expired, active = loop.run_until_complete(main())
    finally:
        loop.close()
    assert short_lived == 1  # the shared timer of the young ones
    assert expired
    assert not active


def test_young_deadlines_are_kept_per_loop_and_thread() -> None:
    # The sync client runs its own loop in a thread: each loop checks its own.
    results: list[str] = []

    async def one() -> None:
        deadline = BodyDeadline(0.1)
        deadline.resume()
        results.append(deadline.reason if await _expires(deadline, 2) else "missed")

    threads = [threading.Thread(target=asyncio.run, args=(one(),)) for _ in range(3)]
    for thread in threads:
        thread.start()
    asyncio.run(one())
    for thread in threads:
        thread.join(5)
    assert results == ["no body bytes for 0.1 s"] * 4


def test_a_trickle_of_short_waits_still_grows_a_deadline_that_fires() -> None:
    # Every wait is shorter than YOUTH, but the body as a whole is not young:
    # its deadline gets a timer of its own and the rate bound applies.
    async def main() -> tuple[bool, str]:
        deadline = BodyDeadline(30, min_rate=1000, grace=0.2)
        for _ in range(200):
            deadline.resume()
            if await _expires(deadline, YOUTH / 5):
                return True, deadline.reason
            deadline.received += 1  # a byte per wait: far under 1000 B/s
            deadline.pause()
        return False, ""

    expired, reason = asyncio.run(main())
    assert expired
    assert "bytes/s" in reason


def test_keep_and_idle_deadlines_that_end_young_share_one_timer() -> None:
    # The timeout section arms keep() on every exchange: ended within YOUTH,
    # it costs no timer of its own. Shorter than YOUTH, it gets one at once.
    async def main() -> tuple[int, int, bool, bool]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, _CountingLoop)
        before = loop.timers
        for _ in range(100):
            deadline = TaskDeadline(30)
            assert deadline.active
            deadline.touch()
            deadline.stop()
            assert not deadline.active
        young = loop.timers - before
        before = loop.timers
        fired: list[bool] = []
        short = IdleDeadline(YOUTH / 5, lambda: fired.append(True))
        own = loop.timers - before
        # one that outlives its youth gets its own timer and still fires
        grown = IdleDeadline(YOUTH * 2, lambda: fired.append(True))
        await asyncio.sleep(YOUTH * 4)
        return young, own, fired == [True, True], short.active or grown.active

    loop = _CountingLoop()
    try:
        young, own, both_fired, active = loop.run_until_complete(main())
    finally:
        loop.close()
    assert young == 1  # the shared timer of the young ones
    assert own == 1
    assert both_fired
    assert not active

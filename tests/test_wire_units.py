"""Unit checks behind tests/test_wire.py: the head check's framing rules and
the body deadline's clock (waiting time only, idle / rate / total)."""

from __future__ import annotations

import asyncio
import math

import pytest

from simples.server import _sound
from simples.timers import BodyDeadline

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

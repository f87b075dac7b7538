"""Soak: thousands of slow clients against one server, with simples' defaults.

For each engine (uvicorn+httptools, uvicorn+h11, granian) a server runs
``tests.apps.wire_app`` in a subprocess limited to 1,024 file descriptors, with
simples' default limits (``header_timeout`` 10 s, ``body_min_rate`` 1 KiB/s
after ``body_grace`` 10 s). Two phases, each bounded in time:

1. slow heads: ``--heads`` connections (2,000) each send a head one byte a
   second (Slowloris), never finishing it;
2. slow bodies: ``--bodies`` connections (1,000) each send a complete head, then
   a body one byte a second (never idle long enough for ``body_timeout``).

All the while one client asks ``GET /ping`` every 100 ms on a fresh connection.
The summary gives, per engine and phase: how many slow connections were cut and
how long each was held (median, max), how many were never accepted or still
open at the end, the server's most open descriptors, and the ping latencies
(median, p99, max) with the pings that failed.

    ./dev soak                         # all three engines, defaults
    .venv/bin/python bench/soak.py --engines h11 --heads 500 --bodies 0

Only loopback traffic; every loop is bounded (``--cap`` seconds per phase).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER_FDS = 1024


@dataclass
class Phase:
    name: str
    held: list[float] = field(default_factory=list)  # seconds until the server closed
    statuses: dict[str, int] = field(default_factory=dict)
    refused: int = 0  # never connected
    open_at_end: int = 0
    pings: list[float] = field(default_factory=list)
    ping_failures: int = 0
    max_fds: int = 0
    seconds: float = 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _limit_fds() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (SERVER_FDS, SERVER_FDS))


def start_server(engine: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}",
        "WIRE_LIMITS": "{}",  # simples' defaults
    }
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.apps.wire_app", str(port), engine],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_limit_fds,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /ping HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
                if sock.recv(100).startswith(b"HTTP/1.1 200"):
                    return child
        except OSError:
            time.sleep(0.2)
    stop_server(child)
    raise RuntimeError(f"{engine} did not come up")


def stop_server(child: subprocess.Popen[bytes]) -> None:
    child.send_signal(signal.SIGINT)
    try:
        child.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(10)


def count_fds(pid: int) -> int:
    total = 0
    for proc in [pid, *_children(pid)]:
        with contextlib.suppress(OSError):
            total += len(os.listdir(f"/proc/{proc}/fd"))
    return total


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


async def slow_client(
    port: int, head: bytes, piece: bytes, phase: Phase, cap: float, stop: asyncio.Event
) -> None:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), cap)
    except (OSError, TimeoutError):
        phase.refused += 1
        return
    started = time.monotonic()
    received = b""
    try:
        writer.write(head)
        while not stop.is_set():
            try:
                chunk = await asyncio.wait_for(reader.read(4096), 1.0)
            except TimeoutError:
                writer.write(piece)
                continue
            if not chunk:
                break
            received += chunk
        else:
            phase.open_at_end += 1
            return
    except OSError:
        pass  # reset: closed by the server
    finally:
        writer.close()
    phase.held.append(time.monotonic() - started)
    status = received[9:12].decode() or "none"
    phase.statuses[status] = phase.statuses.get(status, 0) + 1


async def pinger(port: int, phase: Phase, stop: asyncio.Event) -> None:
    while not stop.is_set():
        started = time.monotonic()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), 5
            )
            writer.write(b"GET /ping HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            if not answer.endswith(b"pong"):
                phase.ping_failures += 1
            else:
                phase.pings.append(time.monotonic() - started)
        except (OSError, TimeoutError):
            phase.ping_failures += 1
        await asyncio.sleep(0.1)


async def watch_fds(pid: int, phase: Phase, stop: asyncio.Event) -> None:
    while not stop.is_set():
        phase.max_fds = max(phase.max_fds, count_fds(pid))
        await asyncio.sleep(0.5)


async def run_phase(
    name: str, port: int, pid: int, count: int, head: bytes, piece: bytes, cap: float
) -> Phase:
    phase = Phase(name)
    stop = asyncio.Event()
    started = time.monotonic()
    helpers = [
        asyncio.create_task(pinger(port, phase, stop)),
        asyncio.create_task(watch_fds(pid, phase, stop)),
    ]
    clients = []
    for index in range(count):
        clients.append(asyncio.create_task(slow_client(port, head, piece, phase, cap, stop)))
        if index % 100 == 99:
            await asyncio.sleep(0.05)  # a ramp, not a SYN flood
    timer = asyncio.get_running_loop().call_later(cap, stop.set)
    await asyncio.gather(*clients)
    timer.cancel()
    phase.seconds = time.monotonic() - started
    await asyncio.sleep(1)  # pings after the storm
    stop.set()
    await asyncio.gather(*helpers)
    return phase


def summary(engine: str, phase: Phase) -> dict[str, object]:
    def ms(values: list[float], q: float) -> float:
        if not values:
            return float("nan")
        ordered = sorted(values)
        return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    held = sorted(phase.held)
    return {
        "engine": engine,
        "phase": phase.name,
        "cut": len(held),
        "held_median_s": round(statistics.median(held), 1) if held else None,
        "held_max_s": round(held[-1], 1) if held else None,
        "answers": phase.statuses,
        "never_accepted": phase.refused,
        "open_at_end": phase.open_at_end,
        "server_max_fds": phase.max_fds,
        "pings": len(phase.pings),
        "ping_failed": phase.ping_failures,
        "ping_median_ms": ms(phase.pings, 0.5),
        "ping_p99_ms": ms(phase.pings, 0.99),
        "ping_max_ms": ms(phase.pings, 1.0),
        "seconds": round(phase.seconds, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", default="httptools,h11,granian")
    parser.add_argument("--heads", type=int, default=2000, help="slow-head connections")
    parser.add_argument("--bodies", type=int, default=1000, help="slow-body connections")
    parser.add_argument("--cap", type=float, default=60, help="seconds a phase may last")
    parser.add_argument("--json", action="store_true", help="print JSON lines only")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.heads + args.bodies + 100:
        print(f"soak: the client needs {args.heads + args.bodies + 100} descriptors, has {hard}")
        return 2
    rows = []
    for engine in args.engines.split(","):
        port = free_port()
        child = start_server(engine, port)
        try:
            for name, count, head, piece in (
                ("slow heads", args.heads, b"GET /ping HTTP/1.1\r\nHost: h\r\nX-Slow: ", b"a"),
                (
                    "slow bodies",
                    args.bodies,
                    b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000\r\n\r\n",
                    b"b",
                ),
            ):
                if count <= 0:
                    continue
                phase = asyncio.run(run_phase(name, port, child.pid, count, head, piece, args.cap))
                row = summary(engine, phase)
                rows.append(row)
                print(json.dumps(row), flush=True)
        finally:
            stop_server(child)
    if not args.json:
        print()
        columns = [
            ("engine", 9), ("phase", 11), ("cut", 5), ("held_median_s", 6), ("held_max_s", 6),
            ("never_accepted", 6), ("open_at_end", 5), ("server_max_fds", 6), ("pings", 5),
            ("ping_failed", 5), ("ping_median_ms", 7), ("ping_p99_ms", 7), ("ping_max_ms", 7),
        ]  # fmt: skip
        print(" ".join(name[:width].ljust(width) for name, width in columns))
        for row in rows:
            print(" ".join(str(row[name])[:width].ljust(width) for name, width in columns))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

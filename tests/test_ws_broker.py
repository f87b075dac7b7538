"""Broadcasts across worker processes through a real Redis: two uvicorn
processes, one started by ``server.listen()`` and one by uvicorn's command line,
a client on each, and Redis stopped and started again mid-run."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.redis_server import RedisProcess, free_port, running_redis

ROOT = Path(__file__).resolve().parent.parent
APP = "tests.apps.ws_broker_app"


class Worker:
    """One server process on its own port."""

    def __init__(self, port: int, child: subprocess.Popen[str]) -> None:
        self.port = port
        self.child = child

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def status(self) -> dict[str, Any]:
        answer: dict[str, Any] = httpx.get(f"http://127.0.0.1:{self.port}/pid", timeout=2).json()
        return answer


@contextmanager
def worker(redis_url: str, *, cli: bool) -> Iterator[Worker]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SIMPLES_TEST_REDIS": redis_url}
    if cli:
        command = [sys.executable, "-m", "uvicorn", f"{APP}:server", "--port", str(port),
                   "--log-level", "warning"]
    else:
        command = [sys.executable, "-m", APP, str(port)]
    child = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            if child.poll() is not None:
                raise RuntimeError(f"worker exited early: {child.communicate()[0]}")
            try:
                httpx.get(f"http://127.0.0.1:{port}/pid", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError("worker did not come up in 20 s") from None
                time.sleep(0.05)
        yield Worker(port, child)
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate(timeout=10)


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisProcess]:
    with running_redis() as process:
        yield process


@pytest.fixture(scope="module")
def workers(redis: RedisProcess) -> Iterator[tuple[Worker, Worker]]:
    with worker(redis.url, cli=False) as first, worker(redis.url, cli=True) as second:
        assert first.status()["pid"] != second.status()["pid"]
        yield first, second


def run(coroutine: Any, seconds: float = 30.0) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coroutine, seconds)

    return asyncio.run(bounded())


async def joined(ws: ClientConnection) -> int:
    """The worker's pid from its greeting: the socket is bound and the worker subscribed."""
    greeting = await ws.recv()
    assert isinstance(greeting, str)
    assert greeting.startswith("joined ")
    return int(greeting.split()[1])


async def nothing_within(ws: ClientConnection, seconds: float) -> bool:
    try:
        await asyncio.wait_for(ws.recv(), seconds)
    except TimeoutError:
        return True
    return False


def test_a_broadcast_in_one_worker_reaches_sockets_in_the_other(
    workers: tuple[Worker, Worker],
) -> None:
    first, second = workers

    async def clients() -> None:
        async with (
            connect(first.url("/room/lobby")) as ann,
            connect(second.url("/room/lobby")) as bob,
            connect(second.url("/room/kitchen")) as cid,
        ):
            pid_a, pid_b = await joined(ann), await joined(bob)
            await joined(cid)
            assert pid_a != pid_b
            await ann.send("hello")
            expected = {"pid": pid_a, "text": "hello"}
            assert json.loads(await ann.recv()) == expected  # delivered locally
            assert json.loads(await bob.recv()) == expected  # through Redis
            await bob.send("bin:raw")
            assert await ann.recv() == b"raw"  # binary frames stay binary
            assert await bob.recv() == b"raw"
            await bob.send("all:everyone")  # server.broadcast crosses too
            assert [await ann.recv(), await bob.recv(), await cid.recv()] == ["everyone"] * 3
            # a filter is a Python function: it runs where it was given, so a
            # filtered broadcast stays in its process
            await bob.send("others:psst")
            assert await nothing_within(ann, 0.3)
            assert await nothing_within(cid, 0.1)

    run(clients())


def test_broadcasts_survive_a_redis_restart(
    redis: RedisProcess, workers: tuple[Worker, Worker]
) -> None:
    first, second = workers

    async def clients() -> None:
        async with (
            connect(first.url("/room/restart")) as ann,
            connect(second.url("/room/restart")) as bob,
        ):
            await joined(ann)
            await joined(bob)
            await ann.send("before")
            assert json.loads(await bob.recv())["text"] == "before"
            assert json.loads(await ann.recv())["text"] == "before"

            await asyncio.to_thread(redis.stop)
            # Redis down: the broadcast still reaches this worker's sockets
            await ann.send("during")
            assert json.loads(await ann.recv())["text"] == "during"
            assert await nothing_within(bob, 0.3)

            await asyncio.to_thread(redis.start)
            # Both workers reconnect by themselves (backing off at most 1 s)
            deadline = time.monotonic() + 15
            arrived = None
            index = 0
            while arrived is None:
                assert time.monotonic() < deadline, "broadcasts did not cross again within 15 s"
                index += 1
                await ann.send(f"after {index}")
                assert json.loads(await ann.recv())["text"] == f"after {index}"
                try:
                    arrived = json.loads(await asyncio.wait_for(bob.recv(), 0.25))
                except TimeoutError:
                    continue
            assert arrived["text"].startswith("after ")
            # and it stays working in the other direction too
            await bob.send("back")
            assert json.loads(await ann.recv())["text"] == "back"

    run(clients(), seconds=40)
    assert first.status()["broker"] is True
    assert second.status()["broker"] is True


def test_sigterm_closes_sockets_with_1001(redis: RedisProcess) -> None:
    with worker(redis.url, cli=False) as alone:

        async def client() -> int | None:
            async with connect(alone.url("/room/bye")) as ws:
                await joined(ws)
                alone.child.send_signal(signal.SIGTERM)
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
                return ws.close_code

        assert run(client()) == 1001
        assert alone.child.wait(15) == 0

"""Requests per second of in-process test clients on the same simples app.

    .venv/bin/python bench/client_bench.py [--rounds 5] [--requests 2000]

``GET /`` answering ``hello`` (text/plain), sent one after the other by:
simples.client (in-process), Starlette's TestClient (sync, anyio portal) and
httpx.AsyncClient over httpx.ASGITransport. Rounds are interleaved (each client
once per round) and the medians are compared.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import simples

app = simples.server()


@app.get("/")
async def hello(connection: simples.HTTPConnection) -> str:
    return "hello"


async def _simples(count: int) -> float:
    async with simples.client(app) as client:
        for _ in range(50):
            await (await client.get("/")).buffer()
        started = time.perf_counter()
        for _ in range(count):
            response = await client.get("/")
            assert await response.buffer() == b"hello"
        return count / (time.perf_counter() - started)


async def _httpx(count: int) -> float:
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for _ in range(50):
            await client.get("/")
        started = time.perf_counter()
        for _ in range(count):
            response = await client.get("/")
            assert response.content == b"hello"
        return count / (time.perf_counter() - started)


def _starlette(count: int) -> float:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its note about httpx versions
        from starlette.testclient import TestClient

    with TestClient(app) as client:
        for _ in range(50):
            client.get("/")
        started = time.perf_counter()
        for _ in range(count):
            response = client.get("/")
            assert response.content == b"hello"
        return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000)
    options = parser.parse_args()
    runners: dict[str, Callable[[int], float]] = {
        "simples.client": lambda n: asyncio.run(_simples(n)),
        "starlette TestClient": _starlette,
        "httpx ASGITransport": lambda n: asyncio.run(_httpx(n)),
    }
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for index in range(options.rounds):
        for name, run in runners.items():
            samples[name].append(run(options.requests))
        print(f"round {index + 1}/{options.rounds} done", file=sys.stderr)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    ours = medians["simples.client"]
    print(f"{'client':<22} {'req/s (median)':>15} {'simples.client is':>18}")
    for name, value in medians.items():
        ratio = "" if name == "simples.client" else f"{ours / value:.2f}x"
        print(f"{name:<22} {value:>15,.0f} {ratio:>18}")


if __name__ == "__main__":
    main()

"""Per-request framework overhead without a network: call each app's ASGI entry in
a loop with a prepared scope and report microseconds per request (median of runs).

    .venv/bin/python bench/overhead.py [--n 20000] [--apps bare,simples,...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import statistics
import sys
import time
from pathlib import Path
from typing import Any

# the apps import their shared data modules (bench_files, ...) by plain name,
# as bench/run.py serves them from bench/apps
sys.path.insert(0, str(Path(__file__).resolve().parent / "apps"))

ENDPOINTS = {
    "plaintext": ("/plaintext", b""),
    "json": ("/json", b""),
    "user": ("/user/42", b"q=hello"),
}
HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"user-agent", b"wrk"),
    (b"cookie", b"session=abc"),
    (b"x-token", b"t"),
]


def scope_for(path: str, query: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": HEADERS,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def measure(app: Any, path: str, query: bytes, n: int) -> float:
    sent: list[Any] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    for _ in range(200):  # warm caches
        await app(scope_for(path, query), receive, send)
    assert sent[0]["status"] == 200, sent[:2]
    started = time.perf_counter()
    for _ in range(n):
        sent.clear()
        await app(scope_for(path, query), receive, send)
    return (time.perf_counter() - started) / n * 1e6


async def lifespan(app: Any) -> None:
    messages = [{"type": "lifespan.startup"}]
    done = asyncio.Event()

    async def receive_lifespan() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await done.wait()
        return {"type": "lifespan.shutdown"}

    async def send_lifespan(message: dict[str, Any]) -> None:
        if message["type"].startswith("lifespan.startup"):
            done.set()

    task = asyncio.create_task(
        app(
            {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
            receive_lifespan,
            send_lifespan,
        )
    )
    await asyncio.wait_for(done.wait(), 5)
    done.clear()
    task.cancel()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--apps", default="bare,simples,starlette,falcon,blacksheep")
    args = parser.parse_args()
    apps = {
        name: importlib.import_module(name if name == "bare" else f"{name}_app").app
        for name in args.apps.split(",")
    }
    for app in apps.values():
        with contextlib.suppress(Exception):  # some apps have no lifespan
            await lifespan(app)
    print(f"{'app':<12}" + "".join(f"{name:>12}" for name in ENDPOINTS) + "   (µs per request)")
    for name, app in apps.items():
        cells = []
        for path, query in ENDPOINTS.values():
            runs = [await measure(app, path, query, args.n) for _ in range(args.rounds)]
            cells.append(statistics.median(runs))
        print(f"{name:<12}" + "".join(f"{cell:>12.2f}" for cell in cells))


if __name__ == "__main__":
    asyncio.run(main())

"""Per-request framework overhead without a network: call each app's ASGI entry in
a loop with a prepared scope and report microseconds per request (median of
interleaved rounds) and Python function calls per request.

    .venv/bin/python bench/overhead.py [--n 20000] [--rounds 5] [--apps bare,simples,...]
    .venv/bin/python bench/overhead.py --endpoints user --calls-only --show-calls 20
    .venv/bin/python bench/overhead.py --apps bare,simples --baseline 4b174da --compiled

Calls are counted with a ``sys.setprofile`` hook: every Python frame entered
(a coroutine resumed counts again, as cProfile counts it), averaged over 100
requests after the warm-up; C functions are counted apart. The counts are
exact and repeatable, unlike the timings on a loaded machine.

``--baseline REV`` adds ``simples@<commit>``: the same simples app on the package
of git revision REV (exported as for ``bench/run.py --baseline``), served by a
worker process of this script, whose timed runs take turns with the others'.
``--compiled`` adds ``simples@compiled`` the same way: this checkout's package
as the opt-in compiled build makes it (built as for ``bench/run.py
--compiled``); the profiler does not see compiled functions, so its call
counts leave them out.

The loop is uvloop when installed, as under uvicorn and granian (their default
when it is): asyncio's own loop runs its timers in Python, which would count
frames no served request pays. ``--asyncio`` uses asyncio's loop; ``--otel``
keeps OpenTelemetry importable (by default it is hidden, as for an app that
does not have it installed: with it, simples looks for a span to name, four
calls more per request while no tracing is set up).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

# the apps import their shared data modules (bench_files, ...) by plain name,
# as bench/run.py serves them from bench/apps
APPS_DIR = Path(__file__).resolve().parent / "apps"
sys.path.insert(0, str(APPS_DIR))

JSON_BODY = (
    b'{"name": "widget", "tags": ["a", "b", "c"], "stock": [100, 50, 60], '
    b'"description": "a widget for the benchmark", "price": 12.5, "active": true}'
)
# name: (method, path, query, body)
ENDPOINTS: dict[str, tuple[str, str, bytes, bytes]] = {
    "plaintext": ("GET", "/plaintext", b"", b""),
    "json": ("GET", "/json", b"", b""),
    "user": ("GET", "/user/42", b"q=hello", b""),
    "json_post": ("POST", "/items", b"", JSON_BODY),
    "static_4k": ("GET", "/static/4k.txt", b"", b""),
    # `json` behind what a typical API turns on: simples' router with CORS,
    # compression, a timeout, the access log and sessions; Starlette's mount
    # with its CORS, GZip and session middlewares
    "stack": ("GET", "/stack/json", b"", b""),
    # the 1st and the 1,000th of 1,000 pattern routes (apps/many_routes.py)
    "route_1": ("GET", "/r0/items/42", b"", b""),
    "route_1000": ("GET", "/r999/items/42", b"", b""),
}
HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"user-agent", b"wrk"),
    (b"cookie", b"session=abc"),
    (b"x-token", b"t"),
]
POST_HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"user-agent", b"wrk"),
    (b"content-type", b"application/json"),
    (b"content-length", str(len(JSON_BODY)).encode()),
]


def scope_for(method: str, path: str, query: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": POST_HEADERS if method == "POST" else HEADERS,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


_NEVER: asyncio.Event | None = None


def receiver(body: bytes) -> Any:
    """The body in one message, then nothing until the app stops listening (an
    app that watches for a disconnect must not spin on an endless body)."""
    message = {"type": "http.request", "body": body, "more_body": False}
    given = False

    async def receive() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return message
        global _NEVER
        if _NEVER is None:
            _NEVER = asyncio.Event()
        await _NEVER.wait()
        return {"type": "http.disconnect"}

    return receive


class Target:
    """One app on one endpoint, warmed up and checked."""

    def __init__(self, app: Any, endpoint: tuple[str, str, bytes, bytes]) -> None:
        self.app = app
        self.method, self.path, self.query, body = endpoint
        self.body = body
        self.sent: list[Any] = []

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    async def once(self) -> None:
        self.sent.clear()
        await self.app(
            scope_for(self.method, self.path, self.query), receiver(self.body), self.send
        )

    async def check(self) -> bool:
        for _ in range(200):  # warm caches
            await self.once()
        return bool(self.sent) and self.sent[0].get("status") == 200

    async def time(self, n: int) -> float:
        once = self.once
        started = time.perf_counter()
        for _ in range(n):
            await once()
        return (time.perf_counter() - started) / n * 1e6

    async def calls(
        self, n: int = 100
    ) -> tuple[float, float, collections.Counter[str], collections.Counter[str]]:
        python = collections.Counter[str]()
        native = collections.Counter[str]()

        def hook(frame: Any, event: str, arg: Any) -> None:
            if event == "call":
                code = frame.f_code
                python[f"{code.co_filename.rpartition('/')[2]}:{code.co_name}"] += 1
            elif event == "c_call":
                code = frame.f_code
                caller = f"{code.co_filename.rpartition('/')[2]}:{code.co_name}"
                native[f"{getattr(arg, '__qualname__', arg)} in {caller}"] += 1

        once = self.once
        sys.setprofile(hook)
        try:
            for _ in range(n):
                await once()
        finally:
            sys.setprofile(None)
        # the loop's own frames: this method's resumption of once() per request
        python[f"{Path(__file__).name}:once"] -= n
        return sum(python.values()) / n, sum(native.values()) / n, python, native


async def lifespan(app: Any) -> Any:
    """Start ``app``'s lifespan; returns a coroutine function that shuts it down."""
    started = asyncio.Event()
    stopping = asyncio.Event()
    first = True

    async def receive_lifespan() -> dict[str, Any]:
        nonlocal first
        if first:
            first = False
            return {"type": "lifespan.startup"}
        await stopping.wait()
        return {"type": "lifespan.shutdown"}

    async def send_lifespan(message: dict[str, Any]) -> None:
        if message["type"].startswith("lifespan.startup"):
            started.set()

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.create_task(app(scope, receive_lifespan, send_lifespan))
    await asyncio.wait_for(started.wait(), 5)

    async def stop() -> None:
        stopping.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)

    return stop


def module_for(name: str) -> str:
    return name if name == "bare" else f"{name}_app"


class PackageWorker:
    """The simples app on another package (another revision's, or the compiled
    build), in a worker process of this script (one process cannot import two
    packages named ``simples``). Its figures are measured there, when the
    parent asks, so they take turns with the parent's own. ``app``: what
    bench/run.py's ``baseline_app`` or ``compiled_app`` gives."""

    def __init__(self, app: Any, endpoints: list[str]) -> None:
        self.name = app.name
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(APPS_DIR), str(app.src)])}
        command = [sys.executable, __file__, "--worker", "--endpoints", ",".join(endpoints)]
        if sys.modules.get("opentelemetry", False) is not None:
            command.append("--otel")
        if not type(asyncio.get_running_loop()).__module__.startswith("uvloop"):
            command.append("--asyncio")
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True
        )
        hello = self.ask(None)
        if not hello["file"].startswith(str(app.src)):
            raise RuntimeError(f"{self.name} imported simples from {hello['file']}")
        # (Python frames, C calls) per request, for the endpoints it serves
        self.calls = {endpoint: (p, c) for endpoint, (p, c) in hello["calls"].items()}

    def ask(self, command: list[Any] | None) -> Any:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        if command is not None:
            self.process.stdin.write(json.dumps(command) + "\n")
            self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.name} worker stopped")
        return json.loads(line)

    def timer(self, endpoint: str) -> Callable[[int], Awaitable[float]]:
        async def time(n: int) -> float:
            return float(self.ask(["time", endpoint, n]))

        return time

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(30)


def package_workers(args: argparse.Namespace, endpoints: list[str]) -> list[PackageWorker]:
    """The workers of ``--baseline`` and ``--compiled``, in that order."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run import baseline_app, compiled_app  # the packages bench/run.py runs

    others = []
    if args.baseline:
        others.append(PackageWorker(baseline_app(args.baseline), endpoints))
    if args.compiled:
        others.append(PackageWorker(compiled_app(), endpoints))
    return others


async def worker(endpoints: list[str]) -> None:
    """``--worker``: the simples app on whatever package the path gives, checked,
    its calls counted, then timed runs on request (JSON lines on stdin/stdout)."""
    import simples

    app = importlib.import_module("simples_app").app
    stop = await lifespan(app)
    targets = {endpoint: Target(app, ENDPOINTS[endpoint]) for endpoint in endpoints}
    calls = {}
    for endpoint, target in targets.items():
        if await target.check():
            python, native, _, _ = await target.calls()
            calls[endpoint] = [python, native]
    hello = {"file": simples.__file__, "calls": calls}
    print(json.dumps(hello), flush=True)
    for line in sys.stdin:
        _, endpoint, n = json.loads(line)
        print(json.dumps(await targets[endpoint].time(n)), flush=True)
    await stop()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000, help="requests per timed run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--apps", default="bare,simples,starlette,falcon,blacksheep")
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS))
    parser.add_argument("--calls-only", action="store_true", help="count calls, no timing")
    parser.add_argument(
        "--show-calls",
        type=int,
        default=0,
        metavar="K",
        help="list the K Python and C functions called most per request (simples only)",
    )
    parser.add_argument(
        "--baseline", metavar="REV", help="also the simples app on git revision REV's package"
    )
    parser.add_argument(
        "--compiled",
        action="store_true",
        help="also the simples app on the opt-in compiled build (its compiled calls uncounted)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    endpoints = args.endpoints.split(",")
    if args.worker:
        await worker(endpoints)
        return
    others = package_workers(args, endpoints)
    apps = {name: importlib.import_module(module_for(name)).app for name in args.apps.split(",")}
    stops = []
    for app in apps.values():
        with contextlib.suppress(Exception):  # some apps have no lifespan
            stops.append(await lifespan(app))
    targets: dict[tuple[str, str], Target | None] = {}
    for name, app in apps.items():
        for endpoint in endpoints:
            target = Target(app, ENDPOINTS[endpoint])
            targets[name, endpoint] = target if await target.check() else None

    calls: dict[tuple[str, str], tuple[float, float]] = {}
    for key, target in targets.items():
        if target is None:
            continue
        python, native, frames, c_calls = await target.calls()
        calls[key] = python, native
        if args.show_calls and key[0] == "simples":
            for kind, total, counter in (("Python", python, frames), ("C", native, c_calls)):
                print(f"\nsimples {key[1]}: {total:.0f} {kind} calls per request")
                for where, count in counter.most_common(args.show_calls):
                    if count:
                        print(f"  {count / 100:6.2f}  {where}")

    # what each served (app, endpoint) is timed with, in table order
    names = list(apps)
    runs: dict[tuple[str, str], Callable[[int], Awaitable[float]]] = {
        key: target.time for key, target in targets.items() if target is not None
    }
    where = names.index("simples") + 1 if "simples" in names else 0
    for other in others:
        names.insert(where, other.name)
        where += 1
        for endpoint, counted in other.calls.items():
            runs[other.name, endpoint] = other.timer(endpoint)
            calls[other.name, endpoint] = counted

    timings: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
    if not args.calls_only:
        ordered = [(name, endpoint) for name in names for endpoint in endpoints]
        live = [(key, runs[key]) for key in ordered if key in runs]
        for round_ in range(args.rounds):  # interleaved: each app once per round
            order = live[round_ % len(live) :] + live[: round_ % len(live)] if live else []
            for key, run in order:
                timings[key].append(await run(args.n))
    for other in others:
        other.close()

    width = 16

    def table(title: str, cell: Any) -> None:
        print(title)
        print(f"{'app':<16}" + "".join(f"{name:>{width}}" for name in endpoints))
        for name in names:
            cells = [
                cell(name, endpoint) if (name, endpoint) in runs else "n/a"
                for endpoint in endpoints
            ]
            print(f"{name:<16}" + "".join(f"{text:>{width}}" for text in cells))

    if not args.calls_only:
        table(
            f"\nµs per request (median of {args.rounds} interleaved rounds of {args.n})",
            lambda name, endpoint: f"{statistics.median(timings[name, endpoint]):.2f}",
        )
    table(
        "\ncalls per request: all (Python + C, as cProfile counts them) / Python frames",
        lambda name, endpoint: f"{sum(calls[name, endpoint]):.0f} / {calls[name, endpoint][0]:.0f}",
    )
    for stop in stops:
        await stop()


if __name__ == "__main__":
    if "--otel" in sys.argv:
        sys.argv.remove("--otel")
    else:
        sys.modules["opentelemetry"] = None  # type: ignore[assignment]
    if "--asyncio" in sys.argv:
        sys.argv.remove("--asyncio")
        asyncio.run(main())
    else:
        try:
            import uvloop
        except ImportError:
            asyncio.run(main())
        else:
            uvloop.run(main())

#!/usr/bin/env python3
"""Benchmark harness: the same endpoints on every framework, on every server engine.

Stdlib only. Run it with the project's virtualenv (``./dev bench`` does):

    .venv/bin/python bench/run.py [--quick] [--rounds 5] [--duration 5]
        [--engines uvicorn,granian] [--apps bare,simples,starlette,falcon,blacksheep]
        [--endpoints plaintext,json,user] [--baseline REV] [--compiled]

Method (see bench/README.md): the server is pinned to one CPU and wrk to the
other; every app is checked (status, headers, body) before it is measured; the
apps are interleaved within each round so that drift hits them all alike; the
report gives medians over the rounds and ratios to the bare ASGI callable.

Adding an endpoint is one ``Endpoint(...)`` entry in ``ENDPOINTS`` plus the
route in each app module that implements it (list them in ``apps=``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import http.client
import importlib.metadata
import importlib.util
import io
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
PROJECT = BENCH.parent
APPS_DIR = BENCH / "apps"
RESULTS = BENCH / "results"
DATA = BENCH / "data"  # made here, not versioned
HOST = "127.0.0.1"


# --------------------------------------------------------------------------- #
# What is measured: endpoints, apps, engines.
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Endpoint:
    """One request that wrk repeats, and what a correct answer looks like.

    ``body`` (bytes) or ``body_file`` (a path, relative to bench/) is the request
    body; it is written next to a generated wrk Lua script, which reads it, so
    binary bodies (uploads) work. ``apps`` names the apps that implement the
    endpoint (``None``: all of them); the others show "n/a".

    Checks run once per server start, before any measurement: ``status``,
    ``content_type`` (a prefix), ``expect_body`` (exact bytes) or ``expect_json``
    (parsed and compared), ``expect_headers`` (exact values), ``expect_cookies``
    (substrings that one Set-Cookie line must all contain, case-insensitively),
    and ``check``, a callable taking the ``Reply`` and returning an error or None.
    """

    name: str
    path: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    body_file: str | None = None
    content_type: str | None = None  # of the request body
    apps: frozenset[str] | None = None
    status: int = 200
    expect_content_type: str | None = None
    expect_body: bytes | None = None
    expect_json: object = None
    expect_headers: tuple[tuple[str, str], ...] = ()
    expect_cookies: tuple[str, ...] = ()
    check: Callable[[Reply], str | None] | None = None

    def served_by(self, app: str) -> bool:
        # "simples@abc1234" is the simples app on another revision (--baseline)
        return self.apps is None or app.partition("@")[0] in self.apps

    def request_body(self) -> bytes | None:
        if self.body is not None:
            return self.body
        if self.body_file is not None:
            return (BENCH / self.body_file).read_bytes()
        return None

    def request_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.content_type is not None:
            headers["Content-Type"] = self.content_type
        return headers


USER_HEADERS = (("Cookie", "session=abc"), ("X-Token", "t"))
# The apps that implement the first endpoints; the variants below (simples_redis)
# exist for one endpoint only.
CORE_APPS = frozenset({"bare", "simples", "starlette", "falcon", "blacksheep"})


def _bench_session() -> Any:
    """bench/apps/bench_session.py (stdlib only): what the session apps agree on."""
    return _bench_module("bench_session")


def _bench_module(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, APPS_DIR / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FILES = _bench_module("bench_files")
FILE_APPS = frozenset({"bare", "simples", "starlette"})


def _template_rendered(reply: Reply) -> str | None:
    body = reply.body
    if (
        b"&lt;script&gt;alert(&#39;escaped&#39;)&lt;/script&gt;" in body
        and body.count(b"<li ") == 10
        and b"<title>Products | Shop</title>" in body
        and b"Product &lt;9&gt;: 11.25" in body
    ):
        return None
    return "the rendered page is not the expected one (layout, 10 rows, escaping)"


def _same_file(name: str) -> Callable[[Reply], str | None]:
    def check(reply: Reply) -> str | None:
        expected = (FILES.ensure() / name).read_bytes()
        return None if reply.body == expected else f"{name}: {len(reply.body)} bytes differ"

    return check


def _gzip_report(reply: Reply) -> str | None:
    import gzip

    try:
        data = json.loads(gzip.decompress(reply.body))
    except (OSError, ValueError) as exc:
        return f"not a gzip JSON body: {exc}"
    return None if data == FILES.REPORT else "the decompressed report differs"


def _session_counted(reply: Reply) -> str | None:
    try:
        n = json.loads(reply.body).get("n")
    except (ValueError, AttributeError):
        return f"body is not a JSON object: {short(reply.body)}"
    if not isinstance(n, int) or n <= 41:
        return f"n = {n!r}: the seeded session (n = 41) was not read"
    return None


# The json_post and upload endpoints: request bodies and the answers they expect.
ITEMS = {"name": "widget", "price": 9.5, "tags": ["red", "small", "new"],
         "stock": list(range(1, 21)), "meta": {"id": 42, "active": True}}  # fmt: skip
ITEMS_BODY = json.dumps(ITEMS).encode()
ITEMS_ANSWER = {"name": "widget", "tags": 3, "stock": 210}
UPLOAD_SIZE = 1_000_000
UPLOAD_BOUNDARY = "----simplesBenchBoundary4f9a2c"


def _upload_body() -> bytes:
    content = (bytes(range(256)) * (UPLOAD_SIZE // 256 + 1))[:UPLOAD_SIZE]
    dash = b"--" + UPLOAD_BOUNDARY.encode()
    return b"".join([
        dash, b'\r\nContent-Disposition: form-data; name="title"\r\n\r\nbench\r\n',
        dash, b'\r\nContent-Disposition: form-data; name="file"; filename="data.bin"\r\n',
        b"Content-Type: application/octet-stream\r\n\r\n", content, b"\r\n",
        dash, b"--\r\n",
    ])  # fmt: skip


UPLOAD_BODY = _upload_body()
UPLOAD_ANSWER = {"title": "bench", "filename": "data.bin", "size": UPLOAD_SIZE}

ENDPOINTS: list[Endpoint] = [
    Endpoint(
        name="plaintext",
        path="/plaintext",
        expect_content_type="text/plain",
        expect_body=b"Hello, World!",
        apps=CORE_APPS,
    ),
    Endpoint(
        name="json",
        path="/json",
        expect_content_type="application/json",
        expect_json={"message": "Hello, World!"},
        apps=CORE_APPS,
    ),
    Endpoint(
        name="user",
        path="/user/42?q=hello",
        headers=USER_HEADERS,
        expect_content_type="application/json",
        expect_json={"id": "42", "q": "hello", "session": "abc", "token": "t"},
        expect_headers=(("X-User", "42"),),
        expect_cookies=("seen=1", "httponly", "path=/"),
        apps=CORE_APPS,
    ),
    # Read a counter from the session, add one, save, answer JSON. simples keeps
    # the data server-side (memory or Redis, the cookie holds an id); Starlette's
    # SessionMiddleware keeps it in a signed cookie (bench/README.md).
    Endpoint(
        name="session",
        path="/session",
        headers=(("Cookie", _bench_session().cookie_header()),),
        apps=frozenset({"simples", "simples_redis", "starlette"}),
        expect_content_type="application/json",
        expect_cookies=("session=", "httponly", "path=/"),
        check=_session_counted,
    ),
    # A small JSON document POSTed, parsed, summed up and answered as JSON.
    Endpoint(
        name="json_post",
        method="POST",
        path="/items",
        body=ITEMS_BODY,
        content_type="application/json",
        apps=CORE_APPS,
        expect_content_type="application/json",
        expect_json=ITEMS_ANSWER,
    ),
    # A 1 MB file and a text field as multipart/form-data (the file stays in
    # memory: simples spools to disk past 1 MiB). Falcon and BlackSheep are n/a;
    # Starlette parses with the `multipart` package (bench/README.md says why).
    Endpoint(
        name="upload",
        method="POST",
        path="/upload",
        body=UPLOAD_BODY,
        content_type="multipart/form-data; boundary=" + UPLOAD_BOUNDARY,
        apps=frozenset({"bare", "simples", "starlette"}),
        expect_content_type="application/json",
        expect_json=UPLOAD_ANSWER,
    ),
    # A Jinja page (layout, loop, escaping): simples' render vs Starlette's Jinja2Templates.
    Endpoint(
        name="template",
        path="/template",
        apps=frozenset({"simples", "starlette"}),
        expect_content_type="text/html",
        check=_template_rendered,
    ),
    # Static files (4 KB text, 1 MB incompressible) and a 10 KB JSON body gzipped
    # at level 6: simples vs Starlette's StaticFiles/GZipMiddleware vs the bare
    # ceiling that has the bytes (and the gzip) in memory.
    Endpoint(
        name="static_4k",
        path="/static/4k.txt",
        apps=FILE_APPS,
        expect_content_type="text/plain",
        check=_same_file("4k.txt"),
    ),
    Endpoint(
        name="static_1m",
        path="/static/1m.bin",
        apps=FILE_APPS,
        expect_content_type="application/octet-stream",
        check=_same_file("1m.bin"),
    ),
    Endpoint(
        name="json_gzip",
        path="/compressed/report",
        headers=(("Accept-Encoding", "gzip"),),
        apps=FILE_APPS,
        expect_content_type="application/json",
        expect_headers=(("Content-Encoding", "gzip"),),
        check=_gzip_report,
    ),
    # `json` behind what a typical API turns on: simples' router with CORS,
    # compression, a timeout, the access log and sessions; Starlette's mount
    # with its CORS, GZip and session middlewares (bench/README.md).
    Endpoint(
        name="stack",
        path="/stack/json",
        apps=frozenset({"simples", "starlette"}),
        expect_content_type="application/json",
        expect_json={"message": "Hello, World!"},
    ),
    # The routes scenario (bench/apps/many_routes.py): the 1st, 100th and
    # 1,000th of 1,000 pattern routes registered after the app's own.
    *(
        Endpoint(
            name=f"route_{n}",
            path=f"/r{n - 1}/items/42",
            apps=CORE_APPS,
            expect_content_type="text/plain",
            expect_body=b"42",
        )
        for n in (1, 100, 1000)
    ),
    # Later endpoints are one entry each, for example:
    # Endpoint(name="echo", method="POST", path="/echo", body_file="data/echo.json",
    #          content_type="application/json", apps=frozenset({"bare", "simples"}),
    #          expect_content_type="application/json", expect_json={...}),
]


@dataclass(frozen=True)
class App:
    name: str
    module: str  # a module in bench/apps exposing ``app``
    needs_redis: bool = False  # gets REDIS_URL; the harness starts a redis-server
    src: Path = PROJECT / "src"  # the simples package it runs on (--baseline: another)

    @property
    def target(self) -> str:
        return f"{self.module}:app"


APPS: dict[str, App] = {
    app.name: app
    for app in (
        App("bare", "bare"),
        App("simples", "simples_app"),
        App("simples_redis", "simples_redis_app", needs_redis=True),
        App("starlette", "starlette_app"),
        App("falcon", "falcon_app"),
        App("blacksheep", "blacksheep_app"),
    )
}
BASELINE = "bare"


def uvicorn_command(target: str, port: int) -> list[str]:
    # One process (uvicorn's default: no --workers means no supervisor process).
    return [
        sys.executable, "-m", "uvicorn", target,
        "--host", HOST, "--port", str(port),
        "--loop", "uvloop", "--http", "httptools",
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip


def granian_command(target: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "granian",
        "--interface", "asgi",
        "--host", HOST, "--port", str(port),
        "--workers", "1", "--loop", "uvloop", "--http", "1",
        "--no-access-log", "--log-level", "warning",
        target,
    ]  # fmt: skip


@dataclass(frozen=True)
class Engine:
    name: str
    label: str
    module: str  # importable module that must be installed
    command: Callable[[str, int], list[str]]


ENGINES: dict[str, Engine] = {
    "uvicorn": Engine("uvicorn", "uvicorn (uvloop + httptools)", "uvicorn", uvicorn_command),
    "granian": Engine("granian", "granian (ASGI, uvloop)", "granian", granian_command),
}

PACKAGES = ("uvicorn", "uvloop", "httptools", "granian", "starlette", "falcon",
            "blacksheep", "orjson")  # fmt: skip


# --------------------------------------------------------------------------- #
# Processes: every child lives in its own process group and is always killed.
# --------------------------------------------------------------------------- #

_LIVE: set[subprocess.Popen[bytes]] = set()


def kill_group(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM the child's process group, then SIGKILL it after ``grace`` seconds."""
    try:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=grace)
        # Reap stragglers (granian's worker) even when the leader already exited.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    finally:
        _LIVE.discard(proc)


def kill_all() -> None:
    for proc in list(_LIVE):
        kill_group(proc, grace=2.0)


def spawn(cmd: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, start_new_session=True, **kwargs)
    _LIVE.add(proc)
    return proc


def run_bounded(cmd: Sequence[str], timeout: float) -> tuple[int, str]:
    """Run ``cmd`` to completion within ``timeout`` seconds; return (code, output)."""
    proc = spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out.decode(errors="replace")
    except subprocess.TimeoutExpired:
        kill_group(proc, grace=1.0)
        return -1, f"timed out after {timeout:.0f} s"
    finally:
        kill_group(proc, grace=1.0)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pinned(cpu: int | None, cmd: list[str]) -> list[str]:
    return cmd if cpu is None else ["taskset", "-c", str(cpu), *cmd]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- #
# Checking an answer.
# --------------------------------------------------------------------------- #


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def fetch(port: int, endpoint: Endpoint, timeout: float = 5.0) -> Reply:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(
            endpoint.method,
            endpoint.path,
            body=endpoint.request_body(),
            headers=endpoint.request_headers(),
        )
        resp = conn.getresponse()
        return Reply(resp.status, resp.msg, resp.read())
    finally:
        conn.close()


def short(data: bytes, limit: int = 120) -> str:
    if len(data) <= limit:
        return repr(data)
    return f"{data[:limit]!r}... ({len(data)} bytes)"


def problems(endpoint: Endpoint, reply: Reply) -> str | None:
    """What is wrong with ``reply`` (None when it is right)."""
    errors: list[str] = []
    if reply.status != endpoint.status:
        errors.append(f"status {reply.status}, expected {endpoint.status}")
    ctype = reply.headers.get("content-type", "")
    if endpoint.expect_content_type and not ctype.startswith(endpoint.expect_content_type):
        errors.append(f"content-type {ctype!r}, expected {endpoint.expect_content_type}*")
    if endpoint.expect_body is not None and reply.body != endpoint.expect_body:
        errors.append(f"body {short(reply.body)}, expected {short(endpoint.expect_body)}")
    if endpoint.expect_json is not None:
        try:
            parsed = json.loads(reply.body)
        except ValueError:
            errors.append(f"body is not JSON: {short(reply.body)}")
        else:
            if parsed != endpoint.expect_json:
                errors.append(f"JSON {parsed!r}, expected {endpoint.expect_json!r}")
    for name, value in endpoint.expect_headers:
        got = reply.headers.get(name)
        if got != value:
            errors.append(f"header {name}: {got!r}, expected {value!r}")
    if endpoint.expect_cookies:
        lines = reply.headers.get_all("set-cookie") or []
        wanted = [part.lower() for part in endpoint.expect_cookies]
        if not any(all(part in line.lower() for part in wanted) for line in lines):
            errors.append(f"Set-Cookie {lines!r}, expected one with {endpoint.expect_cookies!r}")
    if endpoint.check is not None:
        extra = endpoint.check(reply)
        if extra:
            errors.append(extra)
    return "; ".join(errors) or None


# --------------------------------------------------------------------------- #
# wrk: Lua scripts generated per endpoint, output parsed.
# --------------------------------------------------------------------------- #


def lua_str(value: str | bytes) -> str:
    raw = value.encode() if isinstance(value, str) else value
    safe = b" !#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{|}~"  # noqa: E501
    return '"' + "".join(chr(b) if b in safe else f"\\{b:03d}" for b in raw) + '"'


class Scripts:
    """wrk Lua scripts (and request bodies) generated into a temporary directory."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self._warmups: dict[tuple[str, ...], Path] = {}

    def _body_lua(self, endpoint: Endpoint) -> str:
        body = endpoint.request_body()
        if body is None:
            return "nil"
        path = self.dir / f"{endpoint.name}.body"
        path.write_bytes(body)
        return f"read_body({lua_str(str(path))})"

    def _prelude(self) -> str:
        return (
            "local function read_body(path)\n"
            '  local f = assert(io.open(path, "rb"))\n'
            '  local data = f:read("*a")\n'
            "  f:close()\n"
            "  return data\n"
            "end\n"
        )

    @staticmethod
    def _headers_lua(endpoint: Endpoint) -> str:
        pairs = ", ".join(
            f"[{lua_str(k)}] = {lua_str(v)}" for k, v in endpoint.request_headers().items()
        )
        return "{" + pairs + "}"

    def measure(self, endpoint: Endpoint) -> Path:
        """A static request (built once by wrk, so the client costs little)."""
        path = self.dir / f"{endpoint.name}.lua"
        if path.exists():
            return path
        lines = [self._prelude(), f"wrk.method = {lua_str(endpoint.method)}",
                 f"wrk.path = {lua_str(endpoint.path)}"]  # fmt: skip
        for name, value in endpoint.request_headers().items():
            lines.append(f"wrk.headers[{lua_str(name)}] = {lua_str(value)}")
        body = self._body_lua(endpoint)
        if body != "nil":
            lines.append(f"wrk.body = {body}")
        path.write_text("\n".join(lines) + "\n")
        return path

    def warmup(self, endpoints: Sequence[Endpoint]) -> Path:
        """One script cycling through every endpoint, so every code path gets warm."""
        key = tuple(e.name for e in endpoints)
        if key in self._warmups:
            return self._warmups[key]
        path = self.dir / f"warmup-{len(self._warmups)}.lua"
        entries = "\n".join(
            f"  requests[#requests + 1] = wrk.format({lua_str(e.method)}, {lua_str(e.path)}, "
            f"{self._headers_lua(e)}, {self._body_lua(e)})"
            for e in endpoints
        )
        path.write_text(
            self._prelude()
            + "local requests = {}\n"
            + "local i = 0\n"
            + "function init(args)\n"
            + entries
            + "\nend\n"
            + "function request()\n"
            + "  i = i % #requests + 1\n"
            + "  return requests[i]\n"
            + "end\n"
        )
        self._warmups[key] = path
        return path


@dataclass
class WrkResult:
    rps: float
    latency_avg_ms: float | None = None
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    requests: int | None = None
    non_2xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


def _ms(text: str) -> float | None:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    return float(match[1]) * _UNITS_MS[match[2]] if match else None


def parse_wrk(output: str) -> WrkResult:
    match = re.search(r"Requests/sec:\s*([\d.]+)", output)
    if not match:
        raise ValueError(f"no Requests/sec in wrk output:\n{output.strip()}")
    result = WrkResult(rps=float(match[1]))
    if m := re.search(r"^\s*Latency\s+(\S+)", output, re.M):
        result.latency_avg_ms = _ms(m[1])
    if m := re.search(r"^\s*50%\s+(\S+)", output, re.M):
        result.latency_p50_ms = _ms(m[1])
    if m := re.search(r"^\s*99%\s+(\S+)", output, re.M):
        result.latency_p99_ms = _ms(m[1])
    if m := re.search(r"(\d+) requests in", output):
        result.requests = int(m[1])
    if m := re.search(r"Non-2xx or 3xx responses:\s*(\d+)", output):
        result.non_2xx = int(m[1])
    if m := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        names = ("connect", "read", "write", "timeout")
        pairs = zip(names, m.groups(), strict=True)
        result.socket_errors = {n: int(v) for n, v in pairs if v != "0"}
    return result


# --------------------------------------------------------------------------- #
# One server, one app.
# --------------------------------------------------------------------------- #


class ServerFailed(Exception):
    pass


class Server:
    def __init__(self, engine: Engine, app: App, cpu: int | None, logdir: Path) -> None:
        self.engine, self.app, self.cpu = engine, app, cpu
        self.port = free_port()
        self.log = logdir / f"{engine.name}-{app.name}-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        env = dict(os.environ)
        paths = [str(APPS_DIR), str(self.app.src)]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env["PYTHONUNBUFFERED"] = "1"
        cmd = pinned(self.cpu, self.engine.command(self.app.target, self.port))
        with self.log.open("wb") as log:
            self.proc = spawn(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT, env=env)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            kill_group(self.proc)

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    def wait_ready(self, probe: Endpoint, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        assert self.proc is not None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerFailed(
                    f"server exited with code {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                fetch(self.port, probe, timeout=1.0)
                return
            except OSError:
                time.sleep(0.1)
            except http.client.HTTPException:
                time.sleep(0.1)
        raise ServerFailed(f"no answer within {timeout:.0f} s:\n{self.log_tail()}")


def start_redis(cpu: int | None, logdir: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """A throw-away redis-server (free port, no persistence) for the apps that need
    one; it lives in its own process group like the servers, and is killed the same way."""
    executable = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.access(executable, os.X_OK):
        raise ServerFailed("redis-server not found: install it, or set REDIS_URL")
    port = free_port()
    cmd = [executable, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no",
           "--dir", str(logdir), "--logfile", str(logdir / "redis.log")]  # fmt: skip
    proc = spawn(pinned(cpu, cmd), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerFailed(f"redis-server exited with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), 1) as sock:
            sock.sendall(b"PING\r\n")
            if sock.recv(64).startswith(b"+PONG"):
                return f"redis://{HOST}:{port}/0", proc
        time.sleep(0.05)
    kill_group(proc)
    raise ServerFailed("redis-server did not answer PING within 10 s")


def wrk_command(args: argparse.Namespace, port: int, script: Path, seconds: int) -> list[str]:
    return pinned(
        args.client_cpu,
        ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds}s",
         "--latency", "-s", str(script), f"http://{HOST}:{port}/"],
    )  # fmt: skip


# --------------------------------------------------------------------------- #
# The run.
# --------------------------------------------------------------------------- #


@dataclass
class State:
    samples: list[dict[str, object]] = field(default_factory=list)
    # (engine, app, endpoint) -> reason; endpoint "*" when the server itself failed
    failures: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def failed(self, engine: str, app: str, endpoint: str) -> str | None:
        return self.failures.get((engine, app, "*")) or self.failures.get((engine, app, endpoint))

    def fail(self, engine: str, app: str, endpoint: str, reason: str) -> None:
        self.failures.setdefault((engine, app, endpoint), reason)
        first_line = reason.splitlines()[0] if reason else ""
        log(f"    FAILED {engine}/{app}/{endpoint}: {first_line}")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def bench_app(
    args: argparse.Namespace,
    state: State,
    scripts: Scripts,
    logdir: Path,
    round_no: int,
    engine: Engine,
    app: App,
    endpoints: list[Endpoint],
) -> None:
    todo = [e for e in endpoints if e.served_by(app.name)]
    todo = [e for e in todo if not state.failed(engine.name, app.name, e.name)]
    if not todo:
        return
    with Server(engine, app, args.server_cpu, logdir) as server:
        try:
            server.wait_ready(todo[0], args.start_timeout)
        except ServerFailed as exc:
            state.fail(engine.name, app.name, "*", str(exc))
            return
        good: list[Endpoint] = []
        for endpoint in todo:
            try:
                error = problems(endpoint, fetch(server.port, endpoint))
            except (OSError, http.client.HTTPException) as exc:
                error = f"request failed: {exc!r}"
            if error:
                state.fail(engine.name, app.name, endpoint.name, error)
            else:
                good.append(endpoint)
        if not good:
            return
        if args.warmup > 0:
            code, out = run_bounded(
                wrk_command(args, server.port, scripts.warmup(good), args.warmup),
                timeout=args.warmup + 30,
            )
            if code != 0:
                log(f"    warm-up wrk exited {code}: {out.strip()[:300]}")
        figures = []
        for endpoint in good:
            code, out = run_bounded(
                wrk_command(args, server.port, scripts.measure(endpoint), args.duration),
                timeout=args.duration + 30,
            )
            try:
                if code != 0:
                    raise ValueError(f"wrk exited {code}: {out.strip()[:500]}")
                result = parse_wrk(out)
            except ValueError as exc:
                state.fail(engine.name, app.name, endpoint.name, str(exc))
                continue
            if server.proc is not None and server.proc.poll() is not None:
                state.fail(engine.name, app.name, endpoint.name,
                           f"server died during the run:\n{server.log_tail()}")  # fmt: skip
                return
            state.samples.append(
                {"round": round_no, "engine": engine.name, "app": app.name,
                 "endpoint": endpoint.name, **result.__dict__}
            )  # fmt: skip
            flag = ""
            if result.non_2xx or result.socket_errors:
                flag = f" (non-2xx {result.non_2xx}, socket errors {result.socket_errors})"
            figures.append(f"{endpoint.name} {result.rps:,.0f}{flag}")
        log(f"    {engine.name:8} {app.name:11} " + ", ".join(figures))


def run(args: argparse.Namespace, state: State) -> None:
    engines = [ENGINES[name] for name in args.engines]
    apps = [APPS[name] for name in args.apps]
    endpoints = [e for e in ENDPOINTS if e.name in args.endpoints]
    per_app = 2 + args.warmup + args.duration * len(endpoints)
    estimate = args.rounds * len(engines) * len(apps) * per_app
    log(
        f"bench: {args.rounds} round(s) x {len(engines)} engine(s) x {len(apps)} app(s) x "
        f"{len(endpoints)} endpoint(s), {args.duration} s each: about {estimate / 60:.1f} min"
    )
    with tempfile.TemporaryDirectory(prefix="simples-bench-") as tmp:
        scripts = Scripts(Path(tmp))
        logdir = Path(tmp)
        redis = None
        if any(app.needs_redis for app in apps) and not os.environ.get("REDIS_URL"):
            # On the server's CPU: the figure is what that core does for the app
            # and its Redis together; wrk keeps its own core.
            try:
                os.environ["REDIS_URL"], redis = start_redis(args.server_cpu, logdir)
                log(f"bench: started redis-server at {os.environ['REDIS_URL']}")
            except ServerFailed as exc:
                for engine in engines:
                    for app in apps:
                        if app.needs_redis:
                            state.fail(engine.name, app.name, "*", f"needs redis: {exc}")
        try:
            for round_no in range(1, args.rounds + 1):
                log(f"round {round_no}/{args.rounds}")
                # Rotate the order each round so no app always runs first or last.
                shift = (round_no - 1) % len(apps)
                order = apps[shift:] + apps[:shift]
                for engine in engines:
                    for app in order:
                        bench_app(args, state, scripts, logdir, round_no, engine, app, endpoints)
        finally:
            if redis is not None:
                kill_group(redis)
                del os.environ["REDIS_URL"]


# --------------------------------------------------------------------------- #
# Report.
# --------------------------------------------------------------------------- #


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[name] = importlib.metadata.version(name)
    try:
        commit = subprocess.run(
            ["git", "-C", str(PROJECT), "describe", "--always", "--dirty"],
            capture_output=True, text=True, timeout=10, check=False,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        commit = ""
    found["simples"] = commit or "(no commit)"
    return found


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def summarize(args: argparse.Namespace, state: State) -> dict[str, object]:
    """Medians per (engine, app, endpoint), and the ratio to the baseline.

    The ratio is the median of per-round ratios (the app against the baseline
    measured in the same round), which cancels drift between rounds better than
    a ratio of medians; the latter is kept as ``ratio_of_medians``.
    """
    by_key: dict[tuple[str, str, str], dict[int, float]] = {}
    for s in state.samples:
        key = (str(s["engine"]), str(s["app"]), str(s["endpoint"]))
        by_key.setdefault(key, {})[int(s["round"])] = float(s["rps"])
    medians: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for engine in args.engines:
        for app in args.apps:
            for endpoint in args.endpoints:
                rounds = by_key.get((engine, app, endpoint))
                if not rounds:
                    continue
                values = list(rounds.values())
                stats: dict[str, float] = {
                    "median": statistics.median(values),
                    "min": min(values),
                    "max": max(values),
                    "n": len(values),
                }
                base = by_key.get((engine, BASELINE, endpoint), {})
                paired = [v / base[r] for r, v in rounds.items() if base.get(r)]
                if paired:
                    stats["ratio"] = statistics.median(paired)
                    stats["ratio_of_medians"] = stats["median"] / statistics.median(base.values())
                medians.setdefault(engine, {}).setdefault(app, {})[endpoint] = stats
    return medians


def cell(args: argparse.Namespace, state: State, medians: dict, engine: str, app: str,
         endpoint: Endpoint) -> str:  # fmt: skip
    if not endpoint.served_by(app):
        return "n/a"
    if state.failed(engine, app, endpoint.name):
        return "**FAILED**"
    stats = medians.get(engine, {}).get(app, {}).get(endpoint.name)
    if stats is None:
        return "not run"
    text = f"{stats['median']:,.0f}"
    notes = []
    if "ratio" in stats:
        notes.append(f"{stats['ratio']:.2f}×")
    if stats["n"] > 1 and stats["median"]:
        spread = (stats["max"] - stats["min"]) / 2 / stats["median"] * 100
        notes.append(f"±{spread:.0f}%")
    errors = any(
        s["non_2xx"] or s["socket_errors"]
        for s in state.samples
        if (s["engine"], s["app"], s["endpoint"]) == (engine, app, endpoint.name)
    )
    if errors:
        notes.append("errors†")
    return text + (f" ({', '.join(notes)})" if notes else "")


def markdown(args: argparse.Namespace, state: State, medians: dict, meta: dict) -> str:
    endpoints = [e for e in ENDPOINTS if e.name in args.endpoints]
    out = ["# Benchmark results", ""]
    out.append(f"- date: {meta['date']}{' (interrupted, partial)' if meta['interrupted'] else ''}")
    out.append(f"- machine: {meta['cpu']}, {meta['cores']} cores, {meta['system']}")
    out.append("- versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()))
    pin = (
        f"server on CPU {args.server_cpu}, wrk on CPU {args.client_cpu}"
        if args.server_cpu is not None
        else "no CPU pinning"
    )
    out.append(
        f"- method: {args.rounds} round(s), apps interleaved; wrk -t{args.threads} "
        f"-c{args.connections} -d{args.duration}s after a {args.warmup} s warm-up; {pin}"
    )
    out.append(
        f"- cells: median requests/s over the rounds (median of the per-round ratios to "
        f"`{BASELINE}` on the same engine; ± half the min–max spread of requests/s)"
    )
    for engine in args.engines:
        out += ["", f"## {ENGINES[engine].label}", ""]
        out.append("| app | " + " | ".join(e.name for e in endpoints) + " |")
        out.append("|---|" + "---:|" * len(endpoints))
        for app in args.apps:
            cells = [cell(args, state, medians, engine, app, e) for e in endpoints]
            out.append(f"| {app} | " + " | ".join(cells) + " |")
    if state.failures:
        out += ["", "## Failures", ""]
        for (engine, app, endpoint), reason in sorted(state.failures.items()):
            where = f"{engine}/{app}" + ("" if endpoint == "*" else f"/{endpoint}")
            out.append(f"- **{where}**:")
            out += ["", "  ```", *("  " + line for line in reason.splitlines()), "  ```", ""]
    noisy = [s for s in state.samples if s["non_2xx"] or s["socket_errors"]]
    if noisy:
        out += ["", "† wrk reported errors:", ""]
        for s in noisy:
            out.append(
                f"- {s['engine']}/{s['app']}/{s['endpoint']} round {s['round']}: "
                f"non-2xx {s['non_2xx']}, socket errors {s['socket_errors']}"
            )
    return "\n".join(out) + "\n"


def report(args: argparse.Namespace, state: State, interrupted: bool) -> None:
    meta = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "interrupted": interrupted,
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "system": f"{platform.system()} {platform.release()}",
        "versions": versions(),
    }
    medians = summarize(args, state)
    text = markdown(args, state, medians, meta)
    print(text)
    outdir = Path(args.output)
    outdir.mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in vars(args).items() if k != "output"}
    raw = {
        "meta": meta,
        "settings": settings,
        "medians": medians,
        "failures": [
            {"engine": e, "app": a, "endpoint": p, "reason": r}
            for (e, a, p), r in sorted(state.failures.items())
        ],
        "samples": state.samples,
    }
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    (outdir / "latest.md").write_text(text)
    (outdir / "latest.json").write_text(json.dumps(raw, indent=2) + "\n")
    (outdir / f"{stamp}.json").write_text(json.dumps(raw, indent=2) + "\n")
    log(f"bench: wrote {outdir / 'latest.md'} and {outdir / 'latest.json'}")


# --------------------------------------------------------------------------- #
# Command line.
# --------------------------------------------------------------------------- #


def names(choices: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        picked = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in picked if n not in choices]
        if unknown or not picked:
            raise argparse.ArgumentTypeError(
                f"unknown {unknown or 'empty list'}; choose from {','.join(choices)}"
            )
        return list(dict.fromkeys(picked))

    return parse


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 5)")
    parser.add_argument("--duration", type=int, default=None,
                        help="seconds of wrk per endpoint (default 5)")  # fmt: skip
    parser.add_argument("--warmup", type=int, default=None,
                        help="seconds of warm-up per server start (default 2)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="1 round, 2 s, 1 s warm-up")
    parser.add_argument("--ws", action="store_true", help="also run bench/ws_bench.py")
    parser.add_argument("--overhead", action="store_true",
                        help="also run bench/overhead.py (µs, calls per request)")  # fmt: skip
    parser.add_argument("--routes", action="store_true",
                        help="also run bench/routes.py (Router.match cost) if present")  # fmt: skip
    parser.add_argument("--only-scripts", action="store_true",
                        help="skip the wrk run: only the scripts chosen above")  # fmt: skip
    parser.add_argument("--engines", type=names(list(ENGINES)), default=list(ENGINES))
    parser.add_argument("--apps", type=names(list(APPS)), default=list(APPS))
    parser.add_argument("--endpoints", type=names([e.name for e in ENDPOINTS]),
                        default=[e.name for e in ENDPOINTS])  # fmt: skip
    parser.add_argument("--baseline", metavar="REV",
                        help="also run the simples app on the package of git revision REV, "
                        "in the same rounds (an app named simples@REV)")  # fmt: skip
    parser.add_argument("--compiled", action="store_true",
                        help="also run the simples app on this checkout's opt-in compiled "
                        "build (hatch_build.py, built first), in the same rounds (an app "
                        "named simples@compiled)")  # fmt: skip
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--no-pin", action="store_true", help="do not use taskset")
    parser.add_argument("--start-timeout", type=float, default=20.0,
                        help="seconds a server gets to answer its first request")  # fmt: skip
    parser.add_argument("--output", default=str(RESULTS), help="directory for the results")
    args = parser.parse_args(argv)
    quick = args.quick
    args.rounds = args.rounds if args.rounds is not None else (1 if quick else 5)
    args.duration = args.duration if args.duration is not None else (2 if quick else 5)
    args.warmup = args.warmup if args.warmup is not None else (1 if quick else 2)
    if args.rounds < 1 or args.duration < 1 or args.warmup < 0:
        parser.error("--rounds and --duration must be >= 1, --warmup >= 0")
    others: list[Callable[[], App]] = []
    if args.baseline:
        others.append(lambda: baseline_app(args.baseline))
    if args.compiled:
        others.append(compiled_app)
    for make in reversed(others):
        try:
            app = make()
        except ValueError as exc:
            parser.error(str(exc))
        APPS[app.name] = app
        # beside the simples app, so they run one after the other in a round
        where = args.apps.index("simples") + 1 if "simples" in args.apps else len(args.apps)
        args.apps.insert(where, app.name)
    if BASELINE not in args.apps:
        log(f"bench: note: without {BASELINE!r} there are no ratios")
    if args.no_pin:
        args.server_cpu = args.client_cpu = None
    return args


def baseline_app(revision: str) -> App:
    """The simples app on the package of another git revision: its ``src`` is
    exported once per commit under bench/data/revisions/ and put first on the
    servers' path instead of this checkout's. The apps and endpoints stay this
    checkout's, so a before/after pair runs in the same rounds, as ratios to
    the same bare runs (README: "Before and after")."""

    def git(*command: str) -> bytes:
        done = subprocess.run(["git", *command], cwd=PROJECT, capture_output=True, timeout=60)
        if done.returncode != 0:
            # (rev-parse --quiet says nothing of an unknown name)
            said = done.stderr.decode().strip() or "not a commit of this repository"
            raise ValueError(f"--baseline {revision}: {said}")
        return done.stdout

    commit = git("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}").decode().strip()

    def export(folder: Path) -> None:
        archive = git("archive", "--format=tar", commit, "src")
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")

    target = made_once(DATA / "revisions" / commit, export)
    return App(f"simples@{commit[:7]}", "simples_app", src=target / "src")


def compiled_app() -> App:
    """The simples app on this checkout's package as the opt-in compiled build
    makes it (mypyc, ``hatch_build.py``): built under bench/data/compiled/,
    once per state of ``src/simples`` and interpreter, and put first on the
    servers' path. The profiler of ``bench/overhead.py`` does not see compiled
    functions: their calls are not counted."""
    package = PROJECT / "src" / "simples"
    digest = hashlib.sha256(sys.version.encode())
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())

    def build(folder: Path) -> None:
        log("bench: building the compiled package (hatch_build.py, about half a minute)")
        done = subprocess.run(
            [sys.executable, str(PROJECT / "hatch_build.py"), str(folder)],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        if done.returncode != 0:
            raise ValueError(f"--compiled: the build failed: {done.stderr.strip()[-2000:]}")

    target = made_once(DATA / "compiled" / digest.hexdigest()[:16], build)
    return App("simples@compiled", "simples_app", src=target)


def made_once(target: Path, make: Callable[[Path], None]) -> Path:
    """``target``, a folder that ``make`` fills unless it is there already. It
    is made beside it under a temporary name and renamed when whole: an
    interrupted run never leaves a half-made one to be used."""
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".making-", dir=target.parent))
    try:
        make(work / "made")
        shutil.rmtree(target, ignore_errors=True)  # another run's, made meanwhile
        (work / "made").rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def preflight(args: argparse.Namespace) -> None:
    missing = [tool for tool in ("wrk",) if shutil.which(tool) is None]
    if args.server_cpu is not None:
        if shutil.which("taskset") is None:
            missing.append("taskset (util-linux), or pass --no-pin")
        else:
            allowed = os.sched_getaffinity(0)
            for cpu in (args.server_cpu, args.client_cpu):
                if cpu not in allowed:
                    sys.exit(f"bench: CPU {cpu} is not available (have {sorted(allowed)})")
    for name in args.engines:
        if importlib.util.find_spec(ENGINES[name].module) is None:
            missing.append(f"python package {ENGINES[name].module}")
    if missing:
        sys.exit("bench: missing " + ", ".join(missing) + " (./dev bench installs them)")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    preflight(args)
    # Ctrl-C, SIGTERM and SIGHUP all stop the run the same way (even when the
    # shell started us with SIGINT ignored), and the servers are always killed.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)
    state = State()
    interrupted = False
    if args.only_scripts:
        return run_scripts(args)
    try:
        run(args, state)
    except KeyboardInterrupt:
        interrupted = True
        log("bench: interrupted; stopping servers and reporting what was measured")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not stop the cleanup
        kill_all()
    report(args, state, interrupted)
    if interrupted:
        return 130
    scripts = run_scripts(args)
    return 1 if state.failures or scripts else 0


def script_env() -> dict[str, str]:
    """The environment of a side script: this checkout's ``src`` first, as for the
    servers, so a worktree measures its own code."""
    env = dict(os.environ)
    paths = [str(APPS_DIR), str(PROJECT / "src")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def run_scripts(args: argparse.Namespace) -> int:
    """The scripts chosen with --ws, --overhead and --routes, in that order; the
    exit status is 1 if one failed."""
    commands: list[list[str]] = []
    if args.ws:
        command = [sys.executable, str(BENCH / "ws_bench.py"), "--json",
                   str(RESULTS / "ws-latest.json")]  # fmt: skip
        if args.quick:
            command.append("--quick")
        commands.append(command)
    if args.overhead:
        command = [sys.executable, str(BENCH / "overhead.py"),
                   "--apps", ",".join(a for a in args.apps if a in OVERHEAD_APPS)]  # fmt: skip
        if args.quick:
            command += ["--n", "2000", "--rounds", "1"]
        commands.append(command)
    if args.routes:
        routes = BENCH / "routes.py"
        if routes.exists():
            commands.append([sys.executable, str(routes)])
        else:
            log("bench: --routes: bench/routes.py is not there (yet); skipped")
    failed = 0
    for command in commands:
        log(f"bench: running {Path(command[1]).name}")
        if subprocess.run(command, env=script_env(), cwd=PROJECT).returncode != 0:
            log(f"bench: {Path(command[1]).name} FAILED")
            failed = 1
    return failed


# The apps bench/overhead.py can call in process (no Redis).
OVERHEAD_APPS = ("bare", "simples", "starlette", "falcon", "blacksheep")


if __name__ == "__main__":
    sys.exit(main())

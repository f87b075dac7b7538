"""server.wrap() on real servers (docs/ecosystem.md): a third-party ASGI
middleware around the whole server under start() (mirrors, lifespan, the 1001
WebSocket close on shutdown), listen() and ``simples run``."""

from __future__ import annotations

import asyncio
import gzip
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.middleware.gzip import GZipMiddleware
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

import simples
from tests.conftest import serve

ROOT = Path(__file__).resolve().parent.parent


class Stamp:
    """A small pure-ASGI middleware: adds ``x-layer`` to HTTP responses and
    records the scope types it saw."""

    def __init__(self, app: Any, name: str, seen: list[str] | None = None) -> None:
        self.app = app
        self.name = name
        self.seen = seen if seen is not None else []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.seen.append(scope["type"])
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def stamped(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-layer", self.name.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, stamped)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_wrapped_stack_served_by_start_with_mirrors_lifespan_and_ws_close() -> None:
    seen: list[str] = []
    started: list[bool] = []
    app = simples.server()
    app.on("start", lambda: started.append(True))
    app.get("/text", lambda c: "x" * 2000)

    @app.ws("/live")
    async def live(ws: Any) -> None:
        await ws.send("hi")
        async for _ in ws:
            pass

    app.wrap(GZipMiddleware, minimum_size=100)
    app.wrap(Stamp, name="outer", seen=seen)  # the last wrap is outermost
    mirror = free_port()
    app.mirror(mirror)
    with serve(app) as live_server:
        assert started == [True]
        assert "lifespan" in seen  # the lifespan went through the stack
        for base in (live_server.url, f"http://127.0.0.1:{mirror}"):
            r = httpx.get(base + "/text", headers={"accept-encoding": "gzip"}, timeout=10)
            assert r.status_code == 200
            assert r.headers["content-encoding"] == "gzip"
            assert r.text == "x" * 2000
            # the outer layer saw gzip's answer: it stamped it after compression
            assert r.headers["x-layer"] == "outer"
        with connect(f"ws://127.0.0.1:{live_server.port}/live", open_timeout=10) as ws:
            assert ws.recv(timeout=10) == "hi"
            stopping = asyncio.run_coroutine_threadsafe(app.stop(), live_server.loop)
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1001
            stopping.result(20)


def test_wraps_nest_in_call_order() -> None:
    app = simples.server()
    app.get("/", lambda c: "ok")
    order: list[str] = []

    def layer(name: str) -> Any:
        def make(inner: Any) -> Any:
            async def middleware(scope: Any, receive: Any, send: Any) -> None:
                if scope["type"] == "http":
                    order.append(name)
                await inner(scope, receive, send)

            return middleware

        return make

    app.wrap(layer("first")).wrap(layer("second"))
    with serve(app) as live:
        assert live.get("/").text == "ok"
    assert order == ["second", "first"]


APP = textwrap.dedent(
    """
    import sys

    import simples


    class Stamp:
        def __init__(self, app, name):
            self.app, self.name = app, name

        async def __call__(self, scope, receive, send):
            async def stamped(message):
                if message["type"] == "http.response.start":
                    message = {**message, "headers": [
                        *message.get("headers", []), (b"x-layer", self.name.encode())
                    ]}
                await send(message)

            await self.app(scope, receive, stamped if scope["type"] == "http" else send)


    server = simples.server()
    server.get("/", lambda c: "wrapped")
    server.wrap(Stamp, name="third-party")

    if __name__ == "__main__":
        server.listen(int(sys.argv[1]))
    """
)


def wait_up(url: str, child: subprocess.Popen[str], seconds: float = 20) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"server exited early: {child.communicate()[0]}")
        try:
            return httpx.get(url, timeout=1)
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up in {seconds} s")


@pytest.mark.parametrize("how", ["listen", "simples run"])
def test_listen_and_the_cli_serve_the_wrapped_stack(how: str, tmp_path: Path) -> None:
    (tmp_path / "wrapped_app.py").write_text(APP)
    port = free_port()
    if how == "listen":
        args = [sys.executable, "wrapped_app.py", str(port)]
    else:
        args = [sys.executable, "-m", "simples.cli", "run", "wrapped_app:server"]
        args += ["--port", str(port)]
    path = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    env = {**os.environ, "PYTHONPATH": path}
    child = subprocess.Popen(
        args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        r = wait_up(f"http://127.0.0.1:{port}/", child)
        assert (r.status_code, r.text) == (200, "wrapped")
        assert r.headers["x-layer"] == "third-party"
        child.send_signal(signal.SIGTERM)
        # uvicorn.run() re-raises the signal it handled once it has shut down
        assert child.wait(15) in (0, -signal.SIGTERM)
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate(timeout=10)


def test_gzip_body_is_really_gzip() -> None:
    # the wrapped stack's bytes on the wire, not a client's decoding
    app = simples.server()
    app.get("/", lambda c: "y" * 500)
    app.wrap(GZipMiddleware, minimum_size=10)
    with serve(app) as live:
        raw = live.raw(
            b"GET / HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"
        )
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"content-encoding: gzip" in head.lower()
    assert gzip.decompress(body) == b"y" * 500

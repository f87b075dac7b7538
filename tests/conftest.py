"""Test harness.

``serve(app)``: the app runs on uvicorn on a free loopback port in a background
thread; tests talk to it with real HTTP clients and raw sockets (wire behaviour).

``serve_inprocess(app)``: the same ``Live``-like surface (``get``, ``request``,
``client``, ``url``, ``port``) on top of simples' own in-process client, for
tests about application behaviour: no socket, no server, no port.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlunsplit

import httpx
import pytest

import simples
from simples.clients import CookieJar


class Live:
    """A running server: ``url``, ``port``, an httpx ``client`` and ``raw()`` for bytes."""

    def __init__(self, app: simples.Server, port: int, loop: asyncio.AbstractEventLoop) -> None:
        self.app = app
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.loop = loop
        self.client = httpx.Client(base_url=self.url, timeout=10)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, **kwargs)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(method, path, **kwargs)

    def new_client(self, **options: Any) -> httpx.Client:
        """Another httpx client (its own cookie jar) for this server; close it."""
        return httpx.Client(base_url=self.url, **{"timeout": 10, **options})

    def raw(self, data: bytes, timeout: float = 5.0) -> bytes:
        """Send raw bytes, read until the server closes or goes quiet."""
        return raw_exchange(self.port, data, timeout)


def raw_exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks) and _complete(b"".join(chunks)):
                    break
        except TimeoutError:
            pass
        return b"".join(chunks)


def _complete(response: bytes) -> bool:
    head, _, body = response.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return False


def status_of(response: bytes) -> int:
    """The status code of a raw HTTP/1.1 response."""
    return int(response.split(b" ", 2)[1])


def head_of(response: bytes) -> dict[str, str]:
    """The header fields of a raw response, names lowercased (last one wins)."""
    head = response.partition(b"\r\n\r\n")[0].decode("latin-1")
    fields = {}
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return fields


def body_of(response: bytes) -> bytes:
    return response.partition(b"\r\n\r\n")[2]


def raw_get(
    port: int, target: bytes, *lines: bytes, method: bytes = b"GET", host: bytes = b"t"
) -> bytes:
    """One request over a raw socket (nothing a client library would clean up),
    with Connection: close so reading ends when the answer does (304s included)."""
    request = b"%s %s HTTP/1.1\r\nHost: %s\r\n" % (method, target, host)
    for line in lines:
        request += line + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request + b"Connection: close\r\n\r\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@contextmanager
def serve(app: simples.Server, **start: Any) -> Iterator[Live]:
    """Run ``app`` on uvicorn in a thread for the duration of the block."""
    ready = threading.Event()
    holder: dict[str, Any] = {}
    loop = asyncio.new_event_loop()

    async def main() -> None:
        try:
            addresses = await app.start(0, "127.0.0.1", **start)
            holder["port"] = addresses[0][1]
        except BaseException as exc:
            holder["error"] = exc
            ready.set()
            return
        holder["stop"] = asyncio.Event()
        ready.set()
        await holder["stop"].wait()
        await app.stop()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    if not ready.wait(15):
        raise RuntimeError("server did not start within 15 s")
    if "error" in holder:
        raise holder["error"]
    live = Live(app, holder["port"], loop)
    try:
        yield live
    finally:
        live.client.close()
        loop.call_soon_threadsafe(holder["stop"].set)
        thread.join(20)
        loop.close()


@pytest.fixture
def live() -> Callable[[simples.Server], Any]:
    """``with live(app) as server:`` inside a test."""
    return serve


# ------------------------------------------------------------------ in process

INPROCESS_PORT = 50080  # what the app sees as the server's port (no socket is opened)


class _InProcessTransport(httpx.BaseTransport):
    """An httpx transport that hands each request to ``simples.client(app)``.

    httpx builds the requests and reads the answers (so the URL, the default
    headers, ``params=``, ``data=``, ``files=``, ``json=``, the cookie jar,
    redirects, ``status_code``, ``headers``, ``text``, ``json()``, ``cookies`` and
    the decoding of ``Content-Encoding`` are exactly what the tests got from a real
    server); the in-process client carries each request to the app, no socket.
    """

    def __init__(self, sync: Any) -> None:
        self._sync = sync

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        target = urlunsplit(
            (
                request.url.scheme,
                request.headers.get("host", ""),
                request.url.raw_path.decode("ascii"),
                "",
                "",
            )
        )
        sent = self._sync.request(request.method, target)
        grouped: dict[str, list[str]] = {}
        for name, value in request.headers.multi_items():
            if name.lower() not in ("host", "content-length"):
                grouped.setdefault(name, []).append(value)
        for name, values in grouped.items():
            sent.header(name, values)
        answer = sent.drain(body)
        return httpx.Response(
            answer.status,
            headers=list(answer.headers.raw),
            stream=httpx.ByteStream(answer.buffer(0)),
        )


class _UnsentJar(CookieJar):
    """The in-process client's jar, silenced: the httpx client in front keeps the
    cookies (its Cookie header is what goes out), so that each httpx client is one
    visitor, as with a real server."""

    def header(self, url: str) -> str | None:
        return None


class InProcessLive:
    """``serve_inprocess(app)``'s answer: ``Live``'s surface without a server."""

    def __init__(self, app: simples.Server, sync: Any, url: str, port: int) -> None:
        self.app = app
        self.url = url
        self.port = port
        #: the ``simples.client(app).sync()`` client itself (no httpx in front)
        self.sync = sync
        self._transport = _InProcessTransport(sync)
        self.client = self.new_client()

    def new_client(self, **options: Any) -> httpx.Client:
        """Another httpx client (its own cookie jar, the same app); close it."""
        return httpx.Client(
            base_url=self.url, transport=self._transport, **{"timeout": 10, **options}
        )

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, **kwargs)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(method, path, **kwargs)

    def raw(self, data: bytes, timeout: float = 5.0) -> bytes:
        raise RuntimeError("raw bytes need a real server: use serve(app)")


@contextmanager
def serve_inprocess(
    app: simples.Server,
    *,
    client: tuple[str, int] = ("127.0.0.1", 50000),
    scheme: str = "http",
    host: str = "127.0.0.1",
    port: int = INPROCESS_PORT,
    headers: Mapping[str, str] | None = None,
    raise_app_exceptions: bool = False,
) -> Iterator[InProcessLive]:
    """``serve(app)`` in process: the app's lifespan runs for the block, requests
    go to it through ``simples.client(app)``. Like a server, an exception of the
    app is a 500 for the test to see, unless ``raise_app_exceptions``.

    A ``Host`` given in ``headers=`` of a request becomes the host of the URL the
    in-process client is given (it sends the URL's host as ``Host``), so the app
    sees one Host line, as from a real client."""
    url = f"{scheme}://{host}:{port}"
    in_process = simples.client(
        app,
        base=url,
        client=client,
        timeout=10,
        raise_app_exceptions=raise_app_exceptions,
        headers=headers,
    )
    in_process.cookies = _UnsentJar()
    with in_process.sync() as sync:
        live = InProcessLive(app, sync, url, port)
        try:
            yield live
        finally:
            live.client.close()


#: either harness, for helpers and fixtures that work with both
AnyLive = Live | InProcessLive


@pytest.fixture
def live_inprocess() -> Callable[[simples.Server], Any]:
    """``with live_inprocess(app) as server:`` inside a test."""
    return serve_inprocess


def aio(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on a fresh event loop, bounded in time."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        async def bounded() -> None:
            async with asyncio.timeout(30):
                await test(*args, **kwargs)

        asyncio.run(bounded())

    return run

"""Real-server test harness: the app runs on uvicorn on a free loopback port in a
background thread; tests talk to it with real HTTP clients and raw sockets."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

import simples


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

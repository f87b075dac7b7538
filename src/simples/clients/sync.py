"""The blocking facade: an event loop in a background thread runs the async client;
each call waits for its result (for plain, non-async test functions)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Coroutine, Iterable, Iterator, Mapping
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Self, TypeVar

from simples.http.headers import Headers
from simples.http.multidict import MultiDict

if TYPE_CHECKING:
    from . import Client
    from .base import CookieJar, Request, Response

T = TypeVar("T")


class _Portal:
    """A loop of its own in a daemon thread (``asyncio.Runner``, so contextvars and
    shutdown behave as with ``asyncio.run``)."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="simples-client", daemon=True)
        self._thread.start()
        self._ready.wait()

    def _main(self) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            await self._stop.wait()

        with asyncio.Runner() as runner:
            runner.run(serve())

    def call(self, awaitable: Awaitable[T]) -> T:
        if threading.current_thread() is self._thread:
            raise RuntimeError("the sync client cannot be called from its own event loop")
        assert self._loop is not None

        async def wrapper() -> T:
            return await awaitable

        future: Future[T] = asyncio.run_coroutine_threadsafe(wrapper(), self._loop)
        return future.result()

    def close(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        self._thread.join(10)


class SyncResponse:
    """A response read with blocking calls: the async ``Response``'s members."""

    def __init__(self, response: Response, portal: _Portal) -> None:
        self._response = response
        self._portal = portal

    def __repr__(self) -> str:
        return f"<SyncResponse {self.status} {self._response.method} {self.url}>"

    @property
    def status(self) -> int:
        return self._response.status

    @property
    def headers(self) -> Headers:
        return self._response.headers

    @property
    def cookies(self) -> dict[str, str]:
        return self._response.cookies

    @property
    def url(self) -> str:
        return self._response.url

    def buffer(self, limit: int | None = None) -> bytes:
        return self._portal.call(self._response.buffer(limit))

    def text(self, limit: int | None = None) -> str:
        return self._portal.call(self._response.text(limit))

    def json(self, limit: int | None = None) -> Any:
        return self._portal.call(self._response.json(limit))

    def qs(self, limit: int | None = None) -> MultiDict[str]:
        return self._portal.call(self._response.qs(limit))

    def close(self) -> None:
        self._portal.call(self._response.close())

    def __iter__(self) -> Iterator[bytes]:
        chunks = self._response.__aiter__()
        while True:
            try:
                yield self._portal.call(_next(chunks))
            except StopAsyncIteration:
                return


async def _next(chunks: Any) -> bytes:
    chunk: bytes = await chunks.__anext__()
    return chunk


class SyncRequest:
    """A request being built, sent with blocking calls."""

    def __init__(self, request: Request, portal: _Portal) -> None:
        self._request = request
        self._portal = portal

    def header(self, name: str, value: str | int | bool | list[str] | None) -> Self:
        self._request.header(name, value)
        return self

    def type(self, value: str | None, override: bool = False) -> Self:
        self._request.type(value, override)
        return self

    def _wait(self, coroutine: Coroutine[Any, Any, Response]) -> SyncResponse:
        return SyncResponse(self._portal.call(coroutine), self._portal)

    def send(self, data: Any = None) -> SyncResponse:
        return self._wait(self._request.send(data))

    def qs(self, fields: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> SyncResponse:
        return self._wait(self._request.qs(fields))

    def form(self, fields: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> SyncResponse:
        return self._wait(self._request.form(fields))

    def drain(self, source: Any) -> SyncResponse:
        return self._wait(self._request.drain(source))


class SyncClient:
    """``with simples.client(app).sync() as client:`` runs the lifespan on entry and
    exit; ``client.get("/")`` blocks and returns a ``SyncResponse``."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._portal: _Portal | None = None

    @property
    def cookies(self) -> CookieJar:
        return self.client.cookies

    def __enter__(self) -> Self:
        if self._portal is not None:
            raise RuntimeError("this sync client is already open")
        portal = _Portal()
        try:
            portal.call(self.client.__aenter__())
        except BaseException:
            portal.close()
            raise
        self._portal = portal
        return self

    def __exit__(self, *exc: object) -> None:
        portal, self._portal = self._portal, None
        if portal is None:
            return
        try:
            portal.call(self.client.__aexit__(None, None, None))
        finally:
            portal.close()

    def _open(self) -> _Portal:
        if self._portal is None:
            raise RuntimeError("use the sync client inside 'with client.sync() as client:'")
        return self._portal

    def get(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        follow_redirects: bool | int | None = None,
    ) -> SyncResponse:
        portal = self._open()
        coroutine = self.client.get(url, headers=headers, follow_redirects=follow_redirects)
        return SyncResponse(portal.call(coroutine), portal)

    def head(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        follow_redirects: bool | int | None = None,
    ) -> SyncResponse:
        portal = self._open()
        coroutine = self.client.head(url, headers=headers, follow_redirects=follow_redirects)
        return SyncResponse(portal.call(coroutine), portal)

    def post(self, url: str, *, follow_redirects: bool | int | None = None) -> SyncRequest:
        return SyncRequest(self.client.post(url, follow_redirects=follow_redirects), self._open())

    def put(self, url: str, *, follow_redirects: bool | int | None = None) -> SyncRequest:
        return SyncRequest(self.client.put(url, follow_redirects=follow_redirects), self._open())

    def patch(self, url: str, *, follow_redirects: bool | int | None = None) -> SyncRequest:
        return SyncRequest(
            self.client.patch(url, follow_redirects=follow_redirects), self._open()
        )

    def delete(self, url: str, *, follow_redirects: bool | int | None = None) -> SyncRequest:
        return SyncRequest(
            self.client.delete(url, follow_redirects=follow_redirects), self._open()
        )

    def request(
        self, method: str, url: str, *, follow_redirects: bool | int | None = None
    ) -> SyncRequest:
        return SyncRequest(
            self.client.request(method, url, follow_redirects=follow_redirects), self._open()
        )

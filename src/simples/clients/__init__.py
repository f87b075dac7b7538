"""``simples.client()``: requests to an ASGI app in the same process (tests) or to
any server over the network, with the connection's own verbs."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, Self
from urllib.parse import urljoin, urlsplit, urlunsplit

from simples.http.headers import validate_header_name, validate_header_value
from simples.types import ASGIApp

from .base import (
    DEFAULT_LIMIT,
    EMPTY,
    ClientError,
    Cookie,
    CookieJar,
    Payload,
    Request,
    Response,
    Timeout,
)
from .ws import Channel, WebSocket

if TYPE_CHECKING:
    from .sync import SyncClient

__all__ = [
    "Client",
    "ClientError",
    "Cookie",
    "CookieJar",
    "Request",
    "Response",
    "Timeout",
    "WebSocket",
    "client",
]

Verify = bool | str | ssl.SSLContext
# RFC 9110 §15.4: the statuses whose Location a client may follow
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
DEFAULT_REDIRECTS = 10
USER_AGENT = "simples-client"


class Transport(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def exchange(
        self, method: str, url: str, headers: list[tuple[str, str]], payload: Payload
    ) -> Response: ...
    async def websocket(
        self, url: str, headers: list[tuple[str, str]], protocols: list[str]
    ) -> Channel: ...


class Client:
    """A client: ``async with`` it (runs an in-process app's lifespan, closes
    pooled connections at the end), then call the verbs."""

    def __init__(
        self,
        app: ASGIApp | None = None,
        *,
        base: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | Timeout | None = 30,
        client: tuple[str, int] = ("127.0.0.1", 50000),
        scheme: str = "http",
        verify: Verify = True,
        follow_redirects: bool | int = False,
        limit: int = DEFAULT_LIMIT,
        raise_app_exceptions: bool = True,
    ) -> None:
        if scheme not in ("http", "https"):
            raise ValueError(f"scheme is 'http' or 'https', not {scheme!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"limit is a number of bytes (0: no limit), got {limit!r}")
        if base is not None:
            parts = urlsplit(base)
            if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
                raise ValueError(f"base is an absolute http(s) URL, got {base!r}")
            scheme = "https" if parts.scheme in ("https", "wss") else "http"
        elif app is not None:
            base = f"{scheme}://testserver"
        self.app = app
        self.base = base
        self.timeout = Timeout.of(timeout)
        self.limit = limit
        self.follow_redirects = follow_redirects
        self.cookies = CookieJar()
        self.headers: list[tuple[str, str]] = [("user-agent", USER_AGENT)]
        for name, value in (headers or {}).items():
            key = validate_header_name(name)
            self.headers = [item for item in self.headers if item[0] != key]
            self.headers.append((key, validate_header_value(str(value))))
        self._transport: Transport
        if app is not None:
            from .inprocess import InProcess

            self._transport = InProcess(
                app, self.timeout, limit, client, raise_app_exceptions
            )
        else:
            from .network import Network

            self._transport = Network(self.timeout, limit, verify)
        self._entered = 0

    def __repr__(self) -> str:
        where = "in-process" if self.app is not None else "network"
        return f"<simples client {where} base={self.base!r}>"

    # ------------------------------------------------------------------ life

    async def __aenter__(self) -> Self:
        if self._entered:
            raise RuntimeError("this client is already open (async with it once at a time)")
        await self._transport.start()
        self._entered += 1
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._entered -= 1
        await self._transport.stop()

    async def aclose(self) -> None:
        """Close pooled connections (``async with`` does it on exit)."""
        await self._transport.stop()

    def sync(self) -> SyncClient:
        """The same HTTP verbs, blocking, for plain test functions: a context manager
        that runs the lifespan (WebSocket stays async)."""
        from .sync import SyncClient

        return SyncClient(self)

    # ------------------------------------------------------------------ verbs

    async def get(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        follow_redirects: bool | int | None = None,
    ) -> Response:
        """Send ``GET url`` at once; returns when the response head is in."""
        return await self._simple("GET", url, headers, follow_redirects)

    async def head(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        follow_redirects: bool | int | None = None,
    ) -> Response:
        """Send ``HEAD url`` at once."""
        return await self._simple("HEAD", url, headers, follow_redirects)

    async def _simple(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        follow: bool | int | None,
    ) -> Response:
        request = Request(self, method, url, follow)
        for name, value in (headers or {}).items():
            request.header(name, value)
        return await request

    def post(self, url: str, *, follow_redirects: bool | int | None = None) -> Request:
        """A POST to build: ``.header()``, ``.type()``, then ``send/qs/form/drain``."""
        return Request(self, "POST", url, follow_redirects)

    def put(self, url: str, *, follow_redirects: bool | int | None = None) -> Request:
        return Request(self, "PUT", url, follow_redirects)

    def patch(self, url: str, *, follow_redirects: bool | int | None = None) -> Request:
        return Request(self, "PATCH", url, follow_redirects)

    def delete(self, url: str, *, follow_redirects: bool | int | None = None) -> Request:
        return Request(self, "DELETE", url, follow_redirects)

    def request(
        self, method: str, url: str, *, follow_redirects: bool | int | None = None
    ) -> Request:
        """Any method: ``client.request("OPTIONS", "/x")``; ``await`` it or send a body."""
        validate_header_name(method)  # a method is a token too (RFC 9110 §9.1)
        return Request(self, method, url, follow_redirects)

    async def ws(
        self,
        url: str,
        protocols: list[str] | None = None,
        headers: Mapping[str, str] | None = None,
        advanced: bool = False,
    ) -> WebSocket:
        """Open a WebSocket; a refused handshake raises ``ClientError`` with ``.status``."""
        target = self._ws_url(url)
        http_url = _http_url(target)
        lines = self._merge(headers)
        cookie = self.cookies.header(target)
        if cookie is not None:
            lines.append(("cookie", cookie))
        channel = await self._transport.websocket(target, lines, list(protocols or ()))
        self.cookies.store(http_url, channel.set_cookies)
        return WebSocket(channel, target, self.timeout.read, advanced)

    # --------------------------------------------------------------- plumbing

    def _url(self, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme:
            if parts.scheme not in ("http", "https"):
                raise ValueError(f"an HTTP request goes to an http(s) URL, not {url!r}")
            return url
        if self.base is None:
            raise ValueError(f"{url!r} is relative and the client has no base=")
        return urljoin(self.base, url)

    def _ws_url(self, url: str) -> str:
        parts = urlsplit(url)
        if not parts.scheme:
            if self.base is None:
                raise ValueError(f"{url!r} is relative and the client has no base=")
            parts = urlsplit(urljoin(self.base, url))
        scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
        if scheme not in ("ws", "wss"):
            raise ValueError(f"a WebSocket goes to a ws(s) or http(s) URL, not {url!r}")
        return urlunsplit((scheme, *parts[1:]))

    def _merge(
        self, extra: Mapping[str, str] | list[tuple[str, str]] | None
    ) -> list[tuple[str, str]]:
        lines = list(self.headers)
        if extra:
            pairs = extra.items() if isinstance(extra, Mapping) else extra
            extra_lines = [
                (validate_header_name(n), validate_header_value(str(v))) for n, v in pairs
            ]
            names = {name for name, _ in extra_lines}
            lines = [item for item in lines if item[0] not in names] + extra_lines
        return lines

    async def exchange(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        payload: Payload,
        follow: bool | int | None,
    ) -> Response:
        """Send one request built by a ``Request`` (its ``send``/``qs``/... call this)."""
        total = self.timeout.total
        if total is None:
            return await self._exchange(method, url, headers, payload, follow)
        try:
            async with asyncio.timeout(total):
                return await self._exchange(method, url, headers, payload, follow)
        except TimeoutError:
            raise ClientError(
                f"{method} {url}: no response within the total timeout of {total} s"
            ) from None

    async def _exchange(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        payload: Payload,
        follow: bool | int | None,
    ) -> Response:
        if follow is None:
            follow = self.follow_redirects
        hops = DEFAULT_REDIRECTS if follow is True else int(follow)
        target = self._url(url)
        origin = _origin(target)
        lines = self._merge(headers)
        for hop in range(hops + 1):
            sent = list(lines)
            cookie = self.cookies.header(target)
            if cookie is not None:
                sent.append(("cookie", cookie))
            if payload.length is not None and (
                payload.length or method not in ("GET", "HEAD", "OPTIONS", "DELETE")
            ):
                sent.append(("content-length", str(payload.length)))
            response = await self._transport.exchange(method, target, sent, payload)
            response.cookies = self.cookies.store(target, response.headers.getall("set-cookie"))
            location = response.headers.get("location")
            if not hops or response.status not in _REDIRECTS or location is None:
                return response
            if response.status in (307, 308) and not payload.replayable:
                return response  # a streamed body cannot be sent twice: the caller decides
            await response.close()
            if hop == hops:
                raise ClientError(
                    f"{method} {url}: more than {hops} redirects (last to {location!r})",
                    response.status,
                )
            target = urljoin(target, location)
            if urlsplit(target).scheme not in ("http", "https"):
                raise ClientError(f"{method} {url}: redirected to {location!r}", response.status)
            # RFC 9110 §15.4.2-4: 303 (and, as every browser does, 301/302 after a
            # POST) repeats the request as GET without its body
            if (response.status == 303 and method != "HEAD") or (
                response.status in (301, 302) and method == "POST"
            ):
                method, payload = "GET", EMPTY
                lines = [item for item in lines if item[0] != "content-type"]
            if _origin(target) != origin:
                # credentials meant for one origin are not handed to another
                lines = [item for item in lines if item[0] not in ("authorization", "cookie")]
        raise AssertionError("unreachable")  # pragma: no cover


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or ""), parts.port


def _http_url(ws_url: str) -> str:
    parts = urlsplit(ws_url)
    return urlunsplit(("https" if parts.scheme == "wss" else "http", *parts[1:]))


def client(
    app: Any = None,
    *,
    base: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | Timeout | None = 30,
    client: tuple[str, int] = ("127.0.0.1", 50000),
    scheme: str = "http",
    verify: Verify = True,
    follow_redirects: bool | int = False,
    limit: int = DEFAULT_LIMIT,
    raise_app_exceptions: bool = True,
) -> Client:
    """A client for ``app`` (any ASGI 3 callable, a ``Server`` for one) in this
    process, or, without an app, for servers over the network.

    ``base`` joins relative URLs (in-process it also gives the Host, else
    ``testserver``); ``headers`` go on every request and handshake; ``timeout``
    bounds connecting and each wait for the peer (a number, or ``Timeout(connect,
    read, total)``); ``client`` and ``scheme`` are what an in-process app sees as
    the peer address and the protocol; ``verify`` checks TLS certificates (``True``,
    a CA file path, an ``ssl.SSLContext`` or ``False``); ``follow_redirects``
    (``True``: at most 10, or a number) follows Location; ``limit`` is the default
    cap of whole-body reads; ``raise_app_exceptions`` re-raises in the test what
    the in-process app raised or logged as an unhandled error.
    """
    return Client(
        app,
        base=base,
        headers=headers,
        timeout=timeout,
        client=client,
        scheme=scheme,
        verify=verify,
        follow_redirects=follow_redirects,
        limit=limit,
        raise_app_exceptions=raise_app_exceptions,
    )

"""The request side shared by HTTP and WebSocket connections.

See docs/connection.md and docs/websocket.md.

Every member is parsed on first access and cached: a handler that never looks
at cookies never pays for parsing them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .errors import HTTPError
from .http.cookies import parse_cookies
from .http.headers import Headers
from .http.multidict import MultiDict
from .http.query import QueryLimitError, parse_query
from .http.qvalues import accept_languages
from .http.url import URL, split_host
from .types import Receive, Scope, Send

if TYPE_CHECKING:
    from .router import Router
    from .sessions import Session


def local_path(scope: Scope) -> str:
    """The path simples routes on: ``scope["path"]`` below ``root_path`` when the
    server is mounted under another app (docs/ecosystem.md). The ASGI
    specification keeps ``root_path`` in ``path``; a server that does not is
    taken as it is."""
    path: str = scope["path"]
    root = scope.get("root_path")
    if root and path.startswith(root):
        size = len(root)
        if len(path) == size:
            return "/"
        if path[size] == "/":
            return path[size:]
    return path


class IP:
    """The client's address. ``str(ip)`` is the address."""

    __slots__ = ("address", "family", "port")

    address: str
    port: int | None
    family: str

    def __init__(self, address: str, port: int | None) -> None:
        self.address = address
        self.port = port
        self.family = "IPv6" if ":" in address else "IPv4"

    def __str__(self) -> str:
        return self.address

    def __repr__(self) -> str:
        return f"IP({self.address!r}, port={self.port!r}, family={self.family!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, IP):
            return (self.address, self.port) == (other.address, other.port)
        if isinstance(other, str):
            return self.address == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.address)


class RawRequest:
    """The ASGI side of the request, for third-party code."""

    __slots__ = ("receive", "scope")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self.receive = receive


class RawResponse:
    """The ASGI side of the response, for third-party code."""

    __slots__ = ("send",)

    def __init__(self, send: Send) -> None:
        self.send = send


class Query(MultiDict[str]):
    """The query string: ``query.get("page", 1, type=int)`` answers 400 (through
    the error routes) when the value does not convert (docs/types.md)."""

    __slots__ = ()

    def invalid(self, key: str, value: str, exc: Exception) -> Exception:
        return HTTPError(400, f"query parameter {key!r}: {exc}")


class Request:
    """Request-side members; the base of HTTPConnection and WebSocketConnection."""

    __slots__ = (
        "_cookies",
        "_data",
        "_headers",
        "_host",
        "_ip",
        "_langs",
        "_protocol",
        "_query",
        "_receive",
        "_send",
        "_url",
        "method",
        "params",
        "path",
        "route",
        "router",
        "scope",
        "session",
    )

    def __init__(
        self, scope: Scope, receive: Receive, send: Send, router: Router, host: str, protocol: str
    ) -> None:
        self.scope = scope
        self._receive = receive
        self._send = send
        self.router = router
        self.method: str = scope.get("method", "GET")
        # local_path only when mounted: most requests have no root_path
        self.path: str = local_path(scope) if scope.get("root_path") else scope["path"]
        #: The route's parameters, converted by their types (``:id<int>``).
        self.params: dict[str, Any] = {}
        self.route: Any = None
        self.session: Session | None = None
        self._host = host
        self._protocol = protocol
        self._ip: IP | None = None
        self._headers: Headers | None = None
        self._cookies: dict[str, str] | None = None
        self._query: MultiDict[str] | None = None
        self._langs: list[str] | None = None
        self._url: URL | None = None
        self._data: dict[str, Any] | None = None

    def forwarded(self, ip: IP | None, protocol: str | None, host: str | None) -> None:
        """Apply what a trusted proxy said about the client (``proxy`` section)."""
        if ip is not None:
            self._ip = ip
        if protocol is not None:
            self._protocol = protocol
        if host is not None:
            self._host = host
        self._url = None

    def adopt(self, other: Request) -> None:
        """Take over what the application attached to ``other`` (route, params,
        session, and the same ``data`` dict): a WebSocket handshake refused
        through an HTTP error route keeps what its middlewares found."""
        self.params = other.params
        self.route = other.route
        self.session = other.session
        self._data = other.data

    @property
    def headers(self) -> Headers:
        headers = self._headers
        if headers is None:
            headers = self._headers = Headers(self.scope["headers"])
        return headers

    @property
    def cookies(self) -> dict[str, str]:
        cookies = self._cookies
        if cookies is None:
            # The raw lines scanned here (no Headers object for the common case).
            line: str | None = None
            for name, value in self.scope["headers"]:
                if name == b"cookie":
                    text = value.decode("latin-1")
                    # HTTP/2 clients may split the Cookie header; RFC 9113 §8.2.3
                    # joins with "; "
                    line = text if line is None else f"{line}; {text}"
            if line is None:
                # none, or a lax server that did not lowercase the names
                lines = self.headers.getall("cookie")
                line = "; ".join(lines) if lines else None
            cookies = self._cookies = parse_cookies(line) if line else {}
        return cookies

    @property
    def data(self) -> dict[str, Any]:
        data = self._data
        if data is None:
            data = self._data = {}
        return data

    @property
    def host(self) -> str:
        return self._host

    @property
    def hostname(self) -> str:
        return split_host(self._host)[0]

    @property
    def ip(self) -> IP:
        ip = self._ip
        if ip is None:
            client = self.scope.get("client")
            ip = self._ip = IP(client[0], client[1]) if client else IP("", None)
        return ip

    @property
    def langs(self) -> list[str]:
        langs = self._langs
        if langs is None:
            header = self.headers.get("accept-language")
            langs = self._langs = accept_languages(header) if header else []
        return langs

    @property
    def protocol(self) -> str:
        return self._protocol

    @property
    def query(self) -> MultiDict[str]:
        query = self._query
        if query is None:
            limit = self.router.settings.limits["query_pairs"]
            try:
                query = self._query = parse_query(
                    self.scope.get("query_string", b""), limit, Query
                )
            except QueryLimitError:
                raise HTTPError(400, "Too many query parameters") from None
        return query

    def url_for(
        self,
        name: str,
        /,
        query: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        **params: Any,
    ) -> str:
        """The path of the route named ``name`` on this server (or host), after
        the request's ``root_path`` (docs/types.md); ``LookupError`` for an
        unknown name or a missing parameter."""
        root: str = self.scope.get("root_path", "")
        return root + self.router.url_for(name, query, **params)

    @property
    def request(self) -> RawRequest:
        return RawRequest(self.scope, self._receive)


    @property
    def url(self) -> URL:
        url = self._url
        if url is None:
            scope = self.scope
            query = scope.get("query_string", b"").decode("latin-1")
            path = self.path
            root = scope.get("root_path")
            if root:  # mounted under another app: the URL the client asked for
                full = scope["path"]
                path = full if full.startswith(root) else root + path
            url = self._url = URL(self._protocol, self._host, path, query)
            if not _warned and not self.router.settings.sections["allowed_hosts"]["hosts"]:
                _warn_unchecked_host(self._host)
        return url


_warned = False


def _warn_unchecked_host(host: str) -> None:
    """Once per process: absolute URLs follow the client's Host and no
    ``allowed_hosts`` says which hosts are genuine."""
    global _warned
    if _warned:
        return
    _warned = True
    logging.getLogger("simples").warning(
        "connection.url was built from the client's Host header (%r) and no "
        "allowed_hosts is configured: absolute URLs then follow whatever Host a "
        "client sends. Set server.config(allowed_hosts=['example.com']) before "
        "deploying (docs/security.md).",
        host,
    )

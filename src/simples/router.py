"""Routers: routes, sub-routers, middlewares, error routes and configuration.

See docs/routing.md and docs/config.md.

Matching work is done at registration: fixed paths go into a dict keyed by path,
patterns are compiled once, and every router caches its middleware chain and its
resolved settings until something above it changes.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload

from .chain import Next
from .config import DEFAULTS, Enabled, Settings, merge, normalise
from .paths import (
    BUILTIN,
    Converter,
    Piece,
    RouteTree,
    build_path,
    parse_pattern,
    pattern_regex,
    with_query,
)

if TYPE_CHECKING:
    from .connection import HTTPConnection
    from .types import ASGIApp

Handler = Callable[["HTTPConnection"], Awaitable[Any]]
Middleware = Callable[["HTTPConnection", Next], Awaitable[Any]]
Imports = (
    Mapping[str, Any]
    | Callable[["HTTPConnection"], Mapping[str, Any] | Awaitable[Mapping[str, Any]]]
)
HandlerLike = Callable[["HTTPConnection"], Any] | str
F = TypeVar("F", bound=Callable[..., Any])

WEBSOCKET = "WEBSOCKET"  # ws routes share the tables under this pseudo-method
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE")
ANY = "*"


def _head_of(path: str) -> str:
    """The first segment of a path, with its slash: ``"/api"`` for ``"/api/v1"``."""
    end = path.find("/", 1)
    return path if end < 0 else path[:end]


class Route:
    """One registered handler: where it lives and how it is called."""

    __slots__ = (
        "body",
        "endpoint",
        "handler",
        "method",
        "name",
        "names",
        "options",
        "path",
        "pieces",
        "regex",
        "returns",
        "router",
        "single",
        "warned",
    )

    def __init__(
        self,
        method: str,
        path: str,
        handler: Handler,
        router: Router,
        name: str | None = None,
        body: Any = None,
        returns: Any = None,
    ) -> None:
        self.method = method
        self.path = path
        self.handler = handler
        self.router = router
        #: The pattern as text and parameters (``paths.parse_pattern``).
        self.pieces: list[Piece] = parse_pattern(path, router.root.converters)
        self.names = tuple(piece.name for piece in self.pieces if not isinstance(piece, str))
        #: The name when the route has exactly one parameter (the usual case).
        self.single = self.names[0] if len(self.names) == 1 else None
        self.regex = compile_pieces(self.pieces) if self.names else None
        #: The route's name for ``url_for`` (``name=``), the declared body type
        #: (``body=``) and answer type (``returns=``): docs/types.md.
        self.name = name
        self.body = body
        self.returns = returns
        self.warned = False
        # set by the exchange on first use: the handler wrapped with reply handling
        self.endpoint: Any = None
        # per-route settings of WebSocket routes (limit, origins, timeout, ...)
        self.options: dict[str, Any] = {}

    def params_of(self, values: Sequence[Any]) -> dict[str, Any]:
        """The parameters by name, from the values the route tree matched (in
        the order of ``names``). One parameter is the usual case: a dict literal
        costs a sixth of ``dict(zip())`` (45 ns against 310 ns on 3.11)."""
        single = self.single
        if single is not None:
            return {single: values[0]}
        return dict(zip(self.names, values, strict=True))

    def __repr__(self) -> str:
        return f"Route({self.method} {self.path})"

    # ---- ecosystem (docs/ecosystem.md): the route as observability tools read it
    @property
    def path_format(self) -> str:
        """The path with ``{name}`` placeholders, as ASGI middlewares (OpenTelemetry,
        Sentry, Prometheus) expect: ``/users/:id`` and ``/users/:id<int>`` give
        ``/users/{id}``, ``*`` gives ``{path}``."""
        return path_format(self.path)


_FORMAT = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)(?:<[^>/]*>)?|\*")


@functools.lru_cache(maxsize=1024)
def path_format(path: str) -> str:
    """``/users/:id/*`` as ``/users/{id}/{path}`` (see ``Route.path_format``)."""
    if ":" not in path and "*" not in path:
        return path
    return _FORMAT.sub(lambda m: f"{{{m.group(1) or 'path'}}}", path)


# ---- end ecosystem


def compile_pattern(
    path: str, converters: Mapping[str, Converter] | None = None
) -> tuple[re.Pattern[str] | None, tuple[str, ...]]:
    """``/users/:id/*`` to a regex (one group per parameter, the text before
    conversion); ``None`` for a fixed path. Matching uses ``paths.RouteTree``."""
    pieces = parse_pattern(path, converters)
    names = tuple(piece.name for piece in pieces if not isinstance(piece, str))
    return (compile_pieces(pieces), names) if names else (None, ())


def compile_pieces(pieces: list[Piece]) -> re.Pattern[str]:
    return re.compile(pattern_regex(pieces))


def as_async(handler: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """Accept sync callables too: they run on the loop and their result is used."""
    if inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 - async callable objects
    ):
        return handler

    async def call(*args: Any) -> Any:
        result = handler(*args)
        if inspect.isawaitable(result):
            return await result
        return result

    call.__name__ = getattr(handler, "__name__", "handler")
    call.__doc__ = getattr(handler, "__doc__", None)  # the summary in openapi()
    return call


def view(template: str, imports: Imports | None) -> Handler:
    """The handler behind ``server.get("/", "index.html", {...})``."""

    async def render_view(connection: HTTPConnection) -> None:
        values: Any = imports(connection) if callable(imports) else imports
        if inspect.isawaitable(values):
            values = await values  # an async imports function (a database query)
        await connection.render(template, values)

    render_view.__name__ = f"view:{template}"
    return render_view


def _check_prefix(prefix: str) -> str:
    if not prefix.startswith("/"):
        raise ValueError(f"a router prefix starts with '/', got {prefix!r}")
    if ":" in prefix or "*" in prefix:
        raise ValueError(f"a router prefix is a fixed path, got {prefix!r}")
    return prefix.rstrip("/")


class _Register(Protocol):
    """``router.get`` and friends, as the type checker sees them."""

    @overload
    def __call__(
        self, path: str, *, name: str | None = None, body: Any = None, returns: Any = None
    ) -> Callable[[F], F]: ...
    @overload
    def __call__(
        self,
        path: str,
        handler: HandlerLike,
        imports: Imports | None = None,
        *,
        name: str | None = None,
        body: Any = None,
        returns: Any = None,
    ) -> Router: ...


class _Shorthand:
    """``router.get(path, handler)`` and friends: ``route()`` with the method filled
    in; without a handler, a decorator that returns the function unchanged."""

    def __init__(self, method: str) -> None:
        self.method = method

    @overload
    def __get__(self, router: None, owner: type[Router]) -> _Shorthand: ...
    @overload
    def __get__(self, router: Router, owner: type[Router]) -> _Register: ...
    def __get__(self, router: Router | None, owner: type[Router]) -> Any:
        if router is None:
            return self
        return functools.partial(router.route, self.method)


class Router:
    """Routes, middlewares, error routes, engine and config for a path prefix."""

    def __init__(self, prefix: str = "", parent: Router | None = None) -> None:
        self.prefix = prefix
        self.parent = parent
        self.root: Router = parent.root if parent is not None else self
        self._fixed: dict[str, dict[str, Route]] = {}
        self._patterns: dict[str, list[Route]] = {}
        #: The pattern routes by method, as lookup trees (``paths.RouteTree``).
        self._trees: dict[str, RouteTree] = {}
        if parent is None:
            #: On a root (a server or a host): parameter types, route names and
            #: every route in registration order (for ``openapi()``).
            self.converters: dict[str, Converter] = dict(BUILTIN)
            self.names: dict[str, Route] = {}
            self.routes: list[Route] = []
        self._middlewares: list[Middleware] = []
        #: Error routes by status (read by ``find_error`` up the tree).
        self.errors: dict[int, Handler] = {}
        #: The template engine set with ``engine()`` (read by ``find_engine``).
        self.template_engine: Any = None
        self._own: dict[str, dict[str, Any]] = {}
        self._children: list[Router] = []
        #: The ASGI app that serves everything under this router (``mount()``).
        self.mounted: ASGIApp | None = None
        #: What the mounted app's lifespan startup stored (its requests get a copy).
        self.mounted_state: dict[str, Any] | None = None
        #: On a root: every descendant, longest prefix first, for dispatch.
        self.descendants: list[Router] = []
        #: The same by the first segment of their prefix (``"/api"`` for
        #: ``"/api/v1"``): dispatch looks at the few that can own a path.
        self.by_head: dict[str, list[Router]] = {}

    # ----------------------------------------------------------- registration

    @overload
    def route(
        self,
        methods: str | Iterable[str],
        path: str,
        *,
        name: str | None = None,
        body: Any = None,
        returns: Any = None,
    ) -> Callable[[F], F]: ...
    @overload
    def route(
        self,
        methods: str | Iterable[str],
        path: str,
        handler: HandlerLike,
        imports: Imports | None = None,
        *,
        name: str | None = None,
        body: Any = None,
        returns: Any = None,
    ) -> Router: ...
    def route(
        self,
        methods: str | Iterable[str],
        path: str,
        handler: HandlerLike | None = None,
        imports: Imports | None = None,
        *,
        name: str | None = None,
        body: Any = None,
        returns: Any = None,
    ) -> Any:
        """Register ``handler`` for ``methods`` at ``path``; without a handler, a decorator.

        ``name``: the route's name for ``url_for``; ``body``: the type the JSON
        body is validated into; ``returns``: the answer's type, for ``openapi()``
        (docs/types.md)."""
        methods_ = [methods] if isinstance(methods, str) else list(methods)
        typed = {"name": name, "body": body, "returns": returns}
        if handler is None:

            def decorate(function: F) -> F:
                self.route(methods_, path, function, **typed)
                return function

            return decorate
        if not path.startswith("/") and path != "":
            raise ValueError(f"a route path starts with '/', got {path!r}")
        call = view(handler, imports) if isinstance(handler, str) else as_async(handler)
        full = self.prefix + path if path else self.prefix or "/"
        root = self.root
        if name is not None:
            named = root.names.get(name)
            if named is not None and named.path != full:
                raise ValueError(f"route name {name!r} is taken by {named.path!r}")
        for method in methods_:
            method = method.upper()
            if method != ANY and (not method.isalpha() or not method.isascii()):
                raise ValueError(f"not an HTTP method: {method!r}")
            entry = Route(method, full, call, self, name, body, returns)
            if entry.regex is None:
                self._fixed.setdefault(full, {})[method] = entry
            else:
                self._patterns.setdefault(method, []).append(entry)
                tree = self._trees.get(method)
                if tree is None:
                    tree = self._trees[method] = RouteTree()
                tree.add(entry, entry.pieces)
            if name is not None:
                root.names.setdefault(name, entry)
            root.routes.append(entry)
        return self

    def converter(
        self,
        name: str,
        regex: str,
        parse: Callable[[str], Any],
        format: Callable[[Any], str] = str,
        *,
        schema: Mapping[str, Any] | None = None,
    ) -> Router:
        """Add the parameter type ``:param<name>`` (docs/types.md): a segment that
        ``regex`` matches whole is turned into a value by ``parse`` (a
        ``ValueError`` there means no match); ``format`` turns a value back into
        text for ``url_for``; ``schema`` is its JSON Schema for ``openapi()``."""
        self.root.converters[name] = Converter(name, regex, parse, format, schema)
        return self

    def url_for(
        self,
        name: str,
        /,
        query: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        **params: Any,
    ) -> str:
        """The path of the route named ``name`` with ``params`` filled in
        (percent-encoded) and ``query`` appended. Names are per server (or
        host) and cover its sub-routers; ``LookupError`` for an unknown name or
        a missing parameter. No ``root_path`` here: ``connection.url_for`` adds
        the one of the request."""
        route = self.root.names.get(name)
        if route is None:
            raise LookupError(f"no route named {name!r}")
        return with_query(build_path(route.pieces, params, name), query)

    def openapi(self, title: str, version: str, **info: Any) -> dict[str, Any]:
        """An OpenAPI 3.1 document of this server's (or host's) HTTP routes
        (docs/types.md)."""
        from .openapi import document

        return document(self.root.routes, title, version, info)

    get = _Shorthand("GET")
    post = _Shorthand("POST")
    put = _Shorthand("PUT")
    patch = _Shorthand("PATCH")
    delete = _Shorthand("DELETE")
    all = _Shorthand(ANY)

    @overload
    def ws(
        self,
        path: str,
        handler: None = None,
        *,
        limit: int = ...,
        origins: Iterable[str] | Callable[[str], bool] | None = ...,
        timeout: float | None = ...,
        advanced: bool = ...,
        protocols: Iterable[str] | None = ...,
        name: str | None = ...,
    ) -> Callable[[F], F]: ...
    @overload
    def ws(
        self,
        path: str,
        handler: Callable[..., Any],
        *,
        limit: int = ...,
        origins: Iterable[str] | Callable[[str], bool] | None = ...,
        timeout: float | None = ...,
        advanced: bool = ...,
        protocols: Iterable[str] | None = ...,
        name: str | None = ...,
    ) -> Router: ...
    def ws(
        self,
        path: str,
        handler: Callable[..., Any] | None = None,
        *,
        limit: int = 1 << 20,
        origins: Iterable[str] | Callable[[str], bool] | None = None,
        timeout: float | None = None,
        advanced: bool = False,
        protocols: Iterable[str] | None = None,
        name: str | None = None,
    ) -> Any:
        """Register a WebSocket route ``async def handler(ws)`` (docs/websocket.md)."""
        if origins is not None and not callable(origins):
            from .cors import compile_origins

            origins = list(origins)
            compile_origins(tuple(origins))  # a malformed origin fails here, not per handshake
        options = {
            "limit": limit,
            "origins": origins if origins is None or callable(origins) else list(origins),
            "timeout": timeout,
            "advanced": advanced,
            "protocols": list(protocols) if protocols is not None else None,
        }
        if handler is None:

            def decorate(function: F) -> F:
                self.ws(path, function, name=name, **options)  # type: ignore[call-overload]
                return function

            return decorate
        self.route(WEBSOCKET, path, handler, name=name)
        full = self.prefix + path if path else self.prefix or "/"
        table = self._fixed.get(full)
        route = table[WEBSOCKET] if table and WEBSOCKET in table else self._patterns[WEBSOCKET][-1]
        route.options = options
        return self

    def match_ws(self, path: str) -> tuple[Route, dict[str, Any]] | None:
        entry = self._fixed.get(path)
        if entry is not None and WEBSOCKET in entry:
            return entry[WEBSOCKET], {}
        tree = self._trees.get(WEBSOCKET)
        if tree is not None:
            found = tree.find(path)
            if found is not None:
                route: Route = found[0]
                return route, route.params_of(found[1])
        return None

    def router(self, prefix: str) -> Router:
        """A sub-router for ``prefix`` (relative to this router's own prefix)."""
        full = self.prefix + _check_prefix(prefix)
        for child in self._children:
            if child.prefix == full:
                return child
        child = Router(full, self)
        self._children.append(child)
        root = self.root
        root.descendants.append(child)
        root.descendants.sort(key=lambda router: len(router.prefix), reverse=True)
        sharing = root.by_head.setdefault(_head_of(full), [])
        sharing.append(child)
        sharing.sort(key=lambda router: len(router.prefix), reverse=True)
        return child

    def mount(self, prefix: str, app: ASGIApp) -> Router:
        """Serve everything under ``prefix`` (HTTP, WebSocket, lifespan events) with
        the ASGI 3 application ``app``, after this router's middlewares
        (docs/ecosystem.md). Returns the router that holds the mount."""
        if not callable(app):
            raise TypeError(f"mount() takes an ASGI application, not {type(app).__name__}")
        if not _check_prefix(prefix):
            raise ValueError("mount() needs a prefix below the router's own, such as '/api'")
        child = self.router(prefix)
        if child.mounted is not None:
            raise ValueError(f"{child.prefix!r} has an app mounted already")
        child.mounted = app
        return child

    @overload
    def use(self, middleware: None = None) -> Callable[[F], F]: ...
    @overload
    def use(self, middleware: Middleware) -> Router: ...
    def use(self, middleware: Middleware | None = None) -> Any:
        """Add a middleware ``async def mw(connection, next)``."""
        if middleware is None:

            def decorate(function: F) -> F:
                self.use(function)
                return function

            return decorate
        self._middlewares.append(as_async(middleware))
        self.invalidate()
        return self

    @overload
    def error(self, code: int) -> Callable[[F], F]: ...
    @overload
    def error(self, code: int, handler: HandlerLike, imports: Imports | None = None) -> Router: ...
    def error(
        self, code: int, handler: HandlerLike | None = None, imports: Imports | None = None
    ) -> Any:
        """Register the error route for ``code`` (400-599)."""
        if type(code) is not int or not 400 <= code <= 599:
            raise ValueError(f"error routes are for 400-599, got {code!r}")
        if handler is None:

            def decorate(function: F) -> F:
                self.error(code, function)
                return function

            return decorate
        self.errors[code] = (
            view(handler, imports) if isinstance(handler, str) else as_async(handler)
        )
        return self

    def engine(self, engine: Any) -> Router:
        """Set the template engine: any object with ``render(source, imports)``."""
        if not callable(getattr(engine, "render", None)):
            raise TypeError("a template engine needs a render(source, imports) method")
        self.template_engine = engine
        return self

    # ------------------------------------------------------------------ config

    def config(self, sections: Mapping[str, Any] | None = None, **options: Any) -> Router:
        """Configure sections (docs/config.md) on this router; children inherit them."""
        for name, value in {**(sections or {}), **options}.items():
            partial = normalise(name, value)
            self._own.setdefault(name, {}).update(partial)
        self.invalidate()
        return self

    def compression(self, enabled: Enabled = True, **options: Any) -> Router:
        return self.config(compression={"enabled": enabled, **options})

    def cors(self, enabled: Enabled = True, **options: Any) -> Router:
        return self.config(cors={"enabled": enabled, **options})

    def logger(self, enabled: Enabled = True, **options: Any) -> Router:
        return self.config(logger={"enabled": enabled, **options})

    def session(self, enabled: Enabled = True, **options: Any) -> Router:
        return self.config(session={"enabled": enabled, **options})

    def static(self, location: str = "public", **options: Any) -> Router:
        return self.config(static={"location": location, **options})

    def timeout(self, value: float) -> Router:
        return self.config(timeout={"enabled": bool(value), "value": value})

    def limits(self, **options: int) -> Router:
        return self.config(limits=options)

    def allowed_hosts(self, *hosts: str) -> Router:
        """The host names the site answers to (400 for any other Host)."""
        return self.config(allowed_hosts=list(hosts))

    def proxy(self, trusted: Iterable[str] = (), hops: int = 0) -> Router:
        return self.config(proxy={"trusted": list(trusted), "hops": hops})

    # Resolved once and then read as plain attributes (no call per request):
    # ``invalidate()`` drops them after a change here or above.
    @functools.cached_property
    def settings(self) -> Settings:
        """The sections in force here: this router's own merged over its parent's."""
        base = self.parent.settings.sections if self.parent is not None else DEFAULTS
        return Settings(merge(base, self._own), self)

    @functools.cached_property
    def chain(self) -> tuple[Middleware, ...]:
        """Middlewares from the outermost router to this one, in registration order."""
        above = self.parent.chain if self.parent is not None else ()
        return (*above, *self._middlewares)

    def invalidate(self) -> None:
        """Forget the resolved settings and middleware chain (after a change here
        or above)."""
        resolved = self.__dict__
        resolved.pop("settings", None)
        resolved.pop("chain", None)
        for child in self._children:
            child.invalidate()

    # ---------------------------------------------------------------- lookups

    def owner(self, path: str) -> Router:
        """The router that owns ``path``: the longest prefix, at a segment boundary."""
        end = path.find("/", 1)  # _head_of, inlined
        routers = self.by_head.get(path if end < 0 else path[:end])
        if routers is None:
            routers = self.by_head.get("")  # router("/"): owns what no longer prefix owns
            if routers is None:
                return self
        for router in routers:
            prefix = router.prefix
            if path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/"):
                return router
        return self

    def match(self, method: str, path: str) -> tuple[Route, dict[str, Any]] | None:
        """Find the route for a request (the order of docs/routing.md); HEAD falls back to GET."""
        entry = self._fixed.get(path)
        if entry is not None:
            route = entry.get(method)
            if route is None and method == "HEAD":
                route = entry.get("GET")
            if route is None:
                route = entry.get(ANY)
            if route is not None:
                return route, {}
        trees = self._trees
        if trees:
            for key in (method, "GET", ANY) if method == "HEAD" else (method, ANY):
                tree = trees.get(key)
                if tree is not None:
                    found = tree.find(path)
                    if found is not None:
                        hit: Route = found[0]
                        single = hit.single  # params_of, inlined on the hot path
                        if single is not None:
                            return hit, {single: found[1][0]}
                        return hit, dict(zip(hit.names, found[1], strict=True))
        return None

    def allowed(self, path: str) -> list[str]:
        """Methods that have a route for ``path`` (for 405 and OPTIONS)."""
        methods: set[str] = set(self._fixed.get(path, ()))
        methods.discard(WEBSOCKET)
        for method, tree in self._trees.items():
            if method not in methods and method != WEBSOCKET and tree.find(path) is not None:
                methods.add(method)
        if ANY in methods:
            return list(METHODS[:7])
        if "GET" in methods:
            methods.add("HEAD")
        if methods:
            methods.add("OPTIONS")
        return [method for method in METHODS if method in methods] + sorted(
            methods.difference(METHODS)
        )

    def find_error(self, code: int) -> Handler | None:
        router: Router | None = self
        while router is not None:
            handler = router.errors.get(code)
            if handler is not None:
                return handler
            router = router.parent
        return None

    def find_engine(self) -> Any:
        router: Router | None = self
        while router is not None:
            if router.template_engine is not None:
                return router.template_engine
            router = router.parent
        return None

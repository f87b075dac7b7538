"""The Server: ASGI 3 entry point, main host, virtual hosts, lifespan and listeners."""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .connection import HTTPConnection, call_callback
from .errors import reason_phrase
from .exchange import MUTE_ABORTS, run_exchange
from .http.url import is_valid_host, split_host
from .request import local_path
from .router import Router
from .types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from .mount import MountedLifespan
    from .request import IP
    from .ws import Channel

# (client ip, protocol, host) as trusted proxies reported them; None = unchanged
Forwarded = tuple["IP | None", str | None, str | None]

logger = logging.getLogger("simples")

# Host header bytes already validated and lowercased: clients repeat the same few
# values, so validation runs once per distinct value (bounded).
_known_hosts: dict[bytes, str] = {}


# Request fields locate() looks at: Host and Cookie, and the ones that must come
# once and frame the request or are read as one value (_sound() checks them).
_SINGLE = frozenset(
    {
        b"content-length",
        b"content-type",
        b"range",
        b"if-range",
        b"if-modified-since",
        b"if-unmodified-since",
        b"origin",
    }
)
_WATCHED = _SINGLE | {b"host", b"cookie", b"transfer-encoding"}


def _sound(fields: list[tuple[bytes, bytes]], version: str | None) -> bool:
    """Whether the framing fields and single-valued fields of a request head
    are unambiguous (RFC 9112 §6.1, §6.3; RFC 9110 §5.3, §8.6).

    Refused: a field of ``_SINGLE`` that comes twice, a Content-Length that is
    not one number, Transfer-Encoding beside Content-Length or in HTTP/1.0, and
    a Transfer-Encoding whose last coding is not ``chunked`` or that applies
    chunked twice. Servers disagree on such heads (one follows the length, the
    next hop the chunks; one takes the first Host, another the last): the
    bytes after the body would be read as another request. The server closes
    the connection after the 400 (``connection: close``)."""
    seen: set[bytes] = set()
    codings: list[bytes] = []
    length = False
    for name, value in fields:
        if name == b"transfer-encoding":
            codings.extend(c.strip(b" \t").lower() for c in value.split(b","))
            continue
        if name in seen:
            return False
        seen.add(name)
        if name == b"content-length":
            if not value.strip(b" \t").isdigit():
                return False
            length = True
    if codings:
        if length or version == "1.0" or codings[-1] != b"chunked":
            return False
        if codings.count(b"chunked") != 1 or not all(codings):
            return False
    return True


class Listener:
    """Where a server accepts connections: ``listen()`` makes the first, ``mirror()`` more."""

    __slots__ = ("hostname", "https", "port")

    def __init__(self, port: int, hostname: str, https: dict[str, str] | None) -> None:
        if https is not None and not {"cert", "key"} <= set(https):
            raise ValueError('https needs {"cert": path, "key": path}')
        self.port = port
        self.hostname = hostname
        self.https = https


class Server(Router):
    """An ASGI application, the main host and a router (docs/server.md)."""

    def __init__(self, https: dict[str, str] | None = None, **sections: Any) -> None:
        super().__init__()
        self.https = https
        self._exact_hosts: dict[str, Router] = {}
        self._wildcard_hosts: list[tuple[str, Router]] = []
        self._hooks: dict[str, list[Callable[[], Any]]] = {"start": [], "stop": []}
        self._mirrors: list[Listener] = []
        self._running: list[Any] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.addresses: list[tuple[str, int]] = []
        self._started_up = False
        # wrap(): the ASGI middlewares around the server, outermost last
        self._stack: ASGIApp | None = None
        # the lifespans of mounted apps, while started
        self._mounted: list[MountedLifespan] = []
        if sections:
            self.config(sections)

    # ------------------------------------------------------------------ hosts

    def host(self, name: str) -> Router:
        """A virtual host: ``"example.com"`` or ``"*.example.com"`` (one DNS label)."""
        name = name.lower().rstrip(".")
        wildcard = name.startswith("*.")
        bare = name[2:] if wildcard else name
        if not bare or "*" in bare or not is_valid_host(bare) or split_host(bare)[1] is not None:
            raise ValueError(
                f"a host is a name like 'example.com' or '*.example.com', got {name!r}"
            )
        if wildcard:
            for suffix, router in self._wildcard_hosts:
                if suffix == "." + bare:
                    return router
            router = Router()
            router.converters = self.converters  # server.converter() reaches every host
            self._wildcard_hosts.append(("." + bare, router))
            return router
        existing = self._exact_hosts.get(bare)
        if existing is None:
            existing = self._exact_hosts[bare] = Router()
            existing.converters = self.converters
        return existing

    def _pick_host(self, hostname: str) -> Router:
        router = self._exact_hosts.get(hostname)
        if router is not None:
            return router
        for suffix, candidate in self._wildcard_hosts:
            if hostname.endswith(suffix):
                label = hostname[: -len(suffix)]
                if label and "." not in label:
                    return candidate
        return self

    # ----------------------------------------------------------------- lifespan

    def on(self, event: str, callback: Callable[[], Any]) -> Server:
        """Run ``callback`` (sync or async, no arguments) at ``"start"`` or ``"stop"``."""
        if event not in self._hooks:
            raise ValueError(f"server.on() takes 'start' or 'stop', not {event!r}")
        self._hooks[event].append(callback)
        return self

    async def _run_hooks(self, event: str) -> None:
        for callback in self._hooks[event]:
            await call_callback(callback)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "lifespan.startup":
                try:
                    await self._startup()
                except Exception as exc:
                    logger.exception("a start callback failed")
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif kind == "lifespan.shutdown":
                try:
                    from .ws import close_all

                    await close_all(self)
                    try:
                        await self._run_hooks("stop")
                    finally:
                        await self._stop_mounted()
                except Exception as exc:
                    logger.exception("a stop callback failed")
                    await send({"type": "lifespan.shutdown.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _startup(self) -> None:
        if not self._started_up:
            self._started_up = True
            default_logging()
            from .files import prepare_static

            for root in self._roots():
                prepare_static(root)
        await self._start_mounted()
        await self._run_hooks("start")

    def _roots(self) -> tuple[Router, ...]:
        return (self, *self._exact_hosts.values(), *(r for _, r in self._wildcard_hosts))

    # ---- ecosystem (docs/ecosystem.md): mounted apps' lifespans, wrap()
    async def _start_mounted(self) -> None:
        """Send ``lifespan.startup`` to every mounted app, in mount order."""
        from .mount import MountedLifespan

        await self._stop_mounted()  # a second startup (the in-process client again)
        for root in self._roots():
            for router in (root, *root.descendants):
                if router.mounted is not None:
                    lifespan = MountedLifespan(router.mounted, repr(router.prefix))
                    try:
                        await lifespan.startup()
                    except Exception:
                        # the apps started already are told to stop
                        await lifespan.shutdown()
                        await self._stop_mounted()
                        raise
                    self._mounted.append(lifespan)
                    router.mounted_state = lifespan.state

    async def _stop_mounted(self) -> None:
        """Send ``lifespan.shutdown`` to the mounted apps, last started first; the
        first failure is raised once all were told."""
        failure: Exception | None = None
        while self._mounted:
            try:
                await self._mounted.pop().shutdown()
            except Exception as exc:
                logger.error("%s", exc)
                failure = failure or exc
        if failure is not None:
            raise failure

    def wrap(self, middleware: Callable[..., ASGIApp], **options: Any) -> Server:
        """Put an ASGI middleware around the whole server: ``middleware(app,
        **options)``. The server as an ASGI app is then the wrapped stack, for
        ``listen()``, ``start()``, ``simples run`` and whoever mounts it; several
        calls nest in call order, the last one outermost."""
        inner = self._stack or functools.partial(self.__call__, inner=True)
        self._stack = middleware(inner, **options)
        return self
    # ---- end ecosystem

    # --------------------------------------------------------------------- ASGI

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, *, inner: bool = False
    ) -> None:
        stack = self._stack
        if stack is not None and not inner:
            await stack(scope, receive, send)
            return
        kind = scope["type"]
        if kind == "http":
            located = self.locate(scope)
            if type(located) is int:
                await _plain(send, located)
                return
            router, host, forwarded = located  # type: ignore[misc]
            connection = HTTPConnection(scope, receive, send, router, host)
            if forwarded is not None:
                connection.forwarded(*forwarded)
            await run_exchange(connection, router)
        elif kind == "websocket":
            from .ws import handle_websocket

            await handle_websocket(self, scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    def locate(self, scope: Scope) -> tuple[Router, str, Forwarded | None] | int:
        """Check the head of a request and find its router: (router, host, forwarded)
        or the error status to answer with (400 bad Host, 431 oversized headers)."""
        settings = self.settings
        limits = settings.limits
        headers = scope["headers"]
        if len(headers) > limits["headers"]:
            return 431
        header_size = limits["header_size"]
        host: bytes | None = None
        framing: list[tuple[bytes, bytes]] | None = None
        for name, value in headers:
            if len(value) > header_size:
                return 431
            if name in _WATCHED:
                if name == b"host":
                    if host is not None:
                        return 400  # RFC 9112 §3.2: more than one Host
                    host = value
                elif name == b"cookie":
                    if len(value) > limits["cookie_size"]:
                        return 431
                elif framing is None:
                    framing = [(name, value)]
                else:
                    framing.append((name, value))
        if framing is not None and not _sound(framing, scope.get("http_version")):
            return 400
        if host is None:
            if scope.get("http_version") != "1.0":
                return 400
            server = scope.get("server") or ("localhost", None)
            host_text = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
        else:
            known = _known_hosts.get(host)
            if known is None:
                known = host.decode("latin-1").lower()
                if not is_valid_host(known):
                    return 400
                if len(_known_hosts) < 1024:
                    _known_hosts[host] = known
            host_text = known
        forwarded = None
        trusted = settings.trusted
        if trusted or settings.proxy_hops:
            from .proxy import resolve_forwarded

            forwarded = resolve_forwarded(scope, trusted, settings.proxy_hops)
            if forwarded is not None and forwarded[2] is not None:
                host_text = forwarded[2]
        allowed = settings.allowed_hosts
        if allowed is not None and not allowed(host_text):
            return 400
        root: Router = self
        if self._exact_hosts or self._wildcard_hosts:
            root = self._pick_host(split_host(host_text)[0].rstrip("."))
        path = local_path(scope) if scope.get("root_path") else scope["path"]
        return (root.owner(path) if root.by_head else root), host_text, forwarded

    # ---------------------------------------------------------------- websocket

    def channel(self, name: str) -> Channel:
        """The channel ``name`` (created on first use): bind sockets, broadcast to them."""
        from .ws import channel_of

        return channel_of(self, name)

    async def broadcast(self, data: Any, filter: Callable[[Any], bool] | None = None) -> None:
        """Send ``data`` to every connection of every ws route (all workers with a broker)."""
        from .ws import broadcast_all

        await broadcast_all(self, data, filter)

    # ---------------------------------------------------------------- listening

    def mirror(
        self, port: int, hostname: str = "127.0.0.1", https: dict[str, str] | None = None
    ) -> Server:
        """Serve the same hosts and routes on another port (e.g. HTTP beside HTTPS)."""
        self._mirrors.append(Listener(port, hostname, https))
        return self

    def listen(
        self,
        port: int = 8000,
        hostname: str = "127.0.0.1",
        https: dict[str, str] | None = None,
        engine: str = "uvicorn",
        http: str = "auto",
    ) -> None:
        """Serve until Ctrl-C or SIGTERM, then shut down gracefully.

        ``http`` picks uvicorn's parser: ``"auto"`` (httptools when installed,
        else h11), ``"httptools"`` or ``"h11"``; granian has its own."""
        if engine == "granian":
            if http != "auto":
                raise ValueError("http= picks uvicorn's parser; granian has its own")
            from .engines import serve_granian

            serve_granian(self, Listener(port, hostname, https or self.https))
            return
        if engine != "uvicorn":
            raise ValueError(f"engine is 'uvicorn' or 'granian', not {engine!r}")
        from .engines import new_event_loop

        loop = new_event_loop()
        try:
            loop.run_until_complete(self._serve_until_signal(port, hostname, https, http))
        finally:
            loop.close()

    async def _serve_until_signal(
        self, port: int, hostname: str, https: dict[str, str] | None, http: str = "auto"
    ) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        # before starting: a signal that comes as the server starts (it serves
        # before start() returns) must stop it gracefully too
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._signalled, stop)
        try:
            await self.start(port, hostname, https, http=http)
            await stop.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await self.stop()

    def _signalled(self, stop: asyncio.Event) -> None:
        if stop.is_set():
            # a second Ctrl-C: stop waiting for in-flight requests
            for server in self._running:
                server.force_exit = True
        stop.set()

    async def start(
        self,
        port: int = 8000,
        hostname: str = "127.0.0.1",
        https: dict[str, str] | None = None,
        http: str = "auto",
    ) -> list[tuple[str, int]]:
        """Start serving without blocking; returns the bound (host, port) addresses.
        ``http``: uvicorn's parser, ``"auto"``, ``"httptools"`` or ``"h11"``."""
        from .engines import uvicorn_server
        from .wire import protocol

        protocol(http)  # a bad name fails before anything is bound

        if self._running:
            raise RuntimeError("the server is already running")
        listeners = [Listener(port, hostname, https or self.https), *self._mirrors]
        sockets = [_bind(listener) for listener in listeners]
        self.addresses = [sock.getsockname()[:2] for sock in sockets]
        mute_aborts()
        for index, (listener, sock) in enumerate(zip(listeners, sockets, strict=True)):
            server = uvicorn_server(self, listener, lifespan=index == 0, http=http)
            self._running.append(server)
            self._tasks.append(asyncio.create_task(server.serve(sockets=[sock])))
        for server, task in zip(self._running, self._tasks, strict=True):
            while not server.started:
                if task.done():
                    await self.stop()
                    raise RuntimeError("the server failed to start (see the log)")
                await asyncio.sleep(0.01)
        for (host, bound), listener in zip(self.addresses, listeners, strict=True):
            scheme = "https" if listener.https else "http"
            shown = f"[{host}]" if ":" in host else host
            logger.info("simples serving on %s://%s:%d", scheme, shown, bound)
        return self.addresses

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (bounded), run stop callbacks."""
        if self._running:
            from .ws import close_all

            # before uvicorn's own shutdown, which would close sockets with 1012
            await close_all(self)
        for server in self._running:
            server.should_exit = True
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._running.clear()
        self._tasks.clear()


def _bind(listener: Listener) -> socket.socket:
    family = socket.AF_INET6 if ":" in listener.hostname else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((listener.hostname, listener.port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def default_logging() -> None:
    """Access-log lines and errors must show up when the application set up no
    logging at all (``server.logger()`` in a five-line app): then, and only then,
    the ``simples`` loggers write to stderr at INFO."""
    root = logging.getLogger()
    ours = logging.getLogger("simples")
    if root.handlers or ours.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    ours.addHandler(handler)
    if ours.level == logging.NOTSET:
        ours.setLevel(logging.INFO)


def mute_aborts() -> None:
    # The exchange logs an aborted response itself; the server's second report
    # of the same event would be noise.
    target = logging.getLogger("uvicorn.error")
    if MUTE_ABORTS not in target.filters:
        target.addFilter(MUTE_ABORTS)


async def _plain(send: Send, status: int) -> None:
    """Answer before routing (bad Host, oversized headers): no error route applies."""
    body = reason_phrase(status).encode()
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})


def server(**options: Any) -> Server:
    """Create a Server: ``simples.server(https={...}, compression=True, ...)``."""
    return Server(**options)


__all__ = ["Listener", "Server", "server"]

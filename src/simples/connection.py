"""HTTPConnection: one object that is both the request and the response (SPEC §3).

Request members are parsed on first access and cached. Response members are thin:
each one validates its input with a pure helper from ``simples.http`` and records
state; only ``send``, ``write``, ``end``, ``close``, ``redirect``, ``drain``,
``render`` and ``error`` talk to the client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from .encode import encode_body
from .errors import reason_phrase
from .http.cache import cache_control
from .http.cookies import serialize_cookie
from .http.headers import validate_header_name, validate_header_value
from .http.links import format_links
from .http.mediatypes import resolve_type
from .log import access_logger, format_line
from .request import Request
from .timers import TaskDeadline
from .types import Message, Receive, Scope, Send

if TYPE_CHECKING:
    from .body import Body
    from .router import Router

logger = logging.getLogger("simples")

_MISSING: Final[Any] = object()
Callback = Callable[[], Any]
StartHook = Callable[["HTTPConnection", bytes | None], Awaitable[bytes | None]]
# encoder(chunk, final) -> bytes to send; final=True flushes and ends the stream
Encoder = Callable[[bytes, bool], bytes]


class HTTPConnection(Request):
    """The request and the response of one HTTP exchange."""

    __slots__ = (
        "_body",
        "_encoder",
        "_error_depth",
        "_finished",
        "_keeper",
        "_out",
        "_start_hooks",
        "_started",
        "_status",
    )

    def __init__(
        self, scope: Scope, receive: Receive, send: Send, router: Router, host: str
    ) -> None:
        Request.__init__(self, scope, receive, send, router, host, scope.get("scheme", "http"))
        self._body: Body | None = None
        self._status = 200
        self._out: dict[str, list[str]] = {}
        self._started = False
        self._finished = False
        self._start_hooks: list[StartHook] | None = None
        self._keeper: TaskDeadline | None = None
        self._error_depth = 0
        # set by a start hook (compression) to transform streamed chunks
        self._encoder: Encoder | None = None

    def body(self, limit: int | None = None) -> Body:
        """The request body; ``await connection.body()`` gives bytes (SPEC §3).

        The body is read once; later calls return the same ``Body`` (pass ``limit``
        to its methods to change the limit for that read)."""
        body = self._body
        if body is None:
            from .body import request_body

            body = self._body = request_body(
                self._receive_tracked, self.scope["headers"], self.router.settings.limits, limit
            )
        return body

    # ----------------------------------------------------------------- response

    @property
    def started(self) -> bool:
        """Whether the response headers have gone out."""
        return self._started

    @property
    def finished(self) -> bool:
        """Whether the response is complete."""
        return self._finished

    def status(self, code: int = _MISSING) -> Any:
        if code is _MISSING:
            return self._status
        if type(code) is not int or not 100 <= code <= 599:
            raise ValueError(f"status must be an int in 100-599, got {code!r}")
        self._not_started()
        self._status = code
        return self

    def header(self, name: str, value: Any = _MISSING) -> Any:
        key = validate_header_name(name)
        if value is _MISSING:
            values = self._out.get(key)
            if not values:
                return None
            return values[0] if len(values) == 1 else list(values)
        self._not_started()
        if value is None:
            self._out.pop(key, None)
        elif isinstance(value, list | tuple):
            self._out[key] = [validate_header_value(_header_text(item)) for item in value]
        else:
            self._out[key] = [validate_header_value(_header_text(value))]
        return self

    def type(self, value: str | None = _MISSING, override: bool = False) -> Any:
        if value is _MISSING:
            return self.header("content-type")
        if value is None:
            return self.header("content-type", None)
        return self.header("content-type", resolve_type(value, override))

    def cookie(
        self,
        name: str,
        value: str | None,
        attributes: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> HTTPConnection:
        self._not_started()
        line = serialize_cookie(name, value, **{**(attributes or {}), **options})
        self._out.setdefault("set-cookie", []).append(line)
        return self

    def cache(self, config: str | Mapping[str, Any] | None = _MISSING, **options: Any) -> Any:
        if config is _MISSING and not options:
            return self.header("cache-control")
        if config is None:
            return self.header("cache-control", None)
        if isinstance(config, str):
            return self.header("cache-control", config)
        merged = {**(config if config is not _MISSING else {}), **options}
        return self.header("cache-control", cache_control(merged))

    def lang(self, value: str | None = _MISSING) -> Any:
        if value is _MISSING:
            return self.header("content-language")
        return self.header("content-language", value)

    def links(self, links: Mapping[str, str] | None = _MISSING) -> Any:
        if links is _MISSING:
            return self.header("link")
        if links is None:
            return self.header("link", None)
        return self.header("link", format_links(links))

    def keep(self, timeout: float | None = _MISSING) -> Any:
        """Abandon the exchange after ``timeout`` seconds without traffic (SPEC §3)."""
        if timeout is _MISSING:
            return self._keeper.idle if self._keeper else None
        if self._keeper is not None:
            self._keeper.stop()
            self._keeper = None
        if timeout:
            if timeout < 0:
                raise ValueError("keep() timeout must be positive")
            self._keeper = TaskDeadline(float(timeout))
        return self

    def log(
        self,
        format: str | None = None,
        tokens: Mapping[str, Callable[[HTTPConnection], str]] | None = None,
        logger: Callable[[str], Any] | logging.Logger | None = None,
    ) -> HTTPConnection:
        line = format_line(self, format, tokens)
        target = logger if logger is not None else access_logger
        if isinstance(target, logging.Logger):
            target.info(line)
        else:
            target(line)
        return self

    def on_start(self, hook: StartHook) -> None:
        """Run ``hook(connection, body)`` just before the headers go out; it may
        change headers and return a replacement body (``None`` for streams)."""
        hooks = self._start_hooks
        if hooks is None:
            self._start_hooks = [hook]
        else:
            hooks.append(hook)

    async def send(self, data: Any = None, callback: Callback | None = None) -> None:
        self._not_started()
        body, default_type = encode_body(data)
        out = self._out
        if default_type is not None and "content-type" not in out:
            out["content-type"] = [default_type]
        await self._respond(body)
        if callback is not None:
            await call_callback(callback)

    async def write(self, chunk: str | bytes) -> None:
        """Send a chunk of a streamed (chunked) response, starting it if needed."""
        if self._finished:
            raise RuntimeError("the response is already complete")
        data = chunk.encode() if isinstance(chunk, str) else bytes(chunk)
        if not self._started:
            if "content-type" not in self._out:
                self._out["content-type"] = ["text/plain; charset=utf-8"]
            await self._start(None)
        if self._encoder is not None:
            data = self._encoder(data, False)
        if data and self.method != "HEAD":
            await self._transmit({"type": "http.response.body", "body": data, "more_body": True})

    async def end(self, chunk: str | bytes | None = None) -> None:
        """Finish a streamed response (or send ``chunk`` as a whole response)."""
        if not self._started:
            await self.send(b"" if chunk is None else chunk)
            return
        if self._finished:
            raise RuntimeError("the response is already complete")
        if chunk:
            await self.write(chunk)
        self._finished = True
        tail = self._encoder(b"", True) if self._encoder is not None else b""
        if self.method == "HEAD":
            tail = b""
        await self._transmit({"type": "http.response.body", "body": tail, "more_body": False})

    async def close(self, callback: Callback | None = None) -> None:
        if not self._started:
            await self.send(None)
        elif not self._finished:
            await self.end()
        if callback is not None:
            await call_callback(callback)

    async def redirect(self, location: str, permanent: bool | int = False) -> None:
        if isinstance(permanent, bool):
            code = 301 if permanent else 302
        elif isinstance(permanent, int) and 300 <= permanent <= 399:
            code = permanent
        else:
            raise ValueError(f"redirect status must be a bool or a 3xx int, got {permanent!r}")
        self.status(code).header("location", location)
        await self.send(None)

    async def redirect_local(
        self, target: str | None, default: str = "/", permanent: bool | int = False
    ) -> None:
        """Redirect to ``target`` only if it is a path on this site, else to ``default``.

        For a target that came from the client (``?next=``, a form field): it is
        read the way browsers parse URLs (``simples.http.url.local_target``), so
        ``//evil.com``, ``https:evil.com``, ``/\\evil.com`` or ``/<tab>/evil.com``
        go to ``default``. ``default`` is the app's own and is sent as it is.
        """
        from .http.url import local_target  # self-contained: see issue #18

        await self.redirect(local_target(target) or default, permanent)

    async def error(self, code: int) -> None:
        """Run the nearest error route for ``code`` (SPEC §2)."""
        if not 400 <= code <= 599:
            raise ValueError(f"error() needs a status in 400-599, got {code}")
        self._not_started()
        self._status = code
        if code == 408 or self._awaits_continue():
            # 408: we give up on this connection (RFC 9110 §15.5.9). Unread body
            # behind an Expect: no 100 Continue went out, so the client holds
            # its body back; kept open, the server would read the client's next
            # request as that body.
            self._out["connection"] = ["close"]
        self._error_depth += 1
        try:
            handler = self.router.find_error(code) if self._error_depth == 1 else None
            if handler is not None:
                result = await handler(self)
                if result is not None and not self._started:
                    await self.send(result)
        finally:
            self._error_depth -= 1
        if not self._started:
            self._status = code
            self._out["content-type"] = ["text/plain; charset=utf-8"]
            await self._respond(reason_phrase(code).encode())

    def _awaits_continue(self) -> bool:
        """Whether the client sent ``Expect: 100-continue`` and none of its body
        was asked for (the ASGI server sends ``100 Continue`` on the first read)."""
        body = self._body
        if body is not None and body.received:
            return False
        expect = self.headers.get("expect")
        return expect is not None and expect.strip().lower() == "100-continue"

    async def render(self, source: str, imports: Mapping[str, Any] | None = None) -> None:
        engine = self.router.find_engine()
        if engine is None:
            raise RuntimeError(
                f"render({source!r}): no template engine on this router; "
                "set one with router.engine(simples.Jinja('templates'))"
            )
        context = {**(imports or {}), "connection": self}
        result = engine.render(source, context)
        html = (
            await result if asyncio.iscoroutine(result) or isinstance(result, Awaitable) else result
        )
        if "content-type" not in self._out:
            self._out["content-type"] = ["text/html; charset=utf-8"]
        await self.send(str(html))

    async def drain(self, location: Any, type: str | None = None, override: bool = False) -> None:
        from .files import drain

        await drain(self, location, type, override)

    # ---------------------------------------------------------------- internals

    def _not_started(self) -> None:
        if self._started:
            raise RuntimeError(
                "the response has already started: status, headers and cookies can no "
                "longer change, and send()/error() cannot answer again"
            )

    async def _receive_tracked(self) -> Message:
        message = await self._receive()
        if self._keeper is not None:
            self._keeper.touch()
        return message

    async def _transmit(self, message: Message) -> None:
        if self._keeper is not None:
            self._keeper.touch()
        await self._send(message)

    def _raw_headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (name.encode("latin-1"), value.encode("latin-1"))
            for name, values in self._out.items()
            for value in values
        ]

    async def _start(self, body: bytes | None) -> bytes | None:
        """Send the status line and headers; ``body`` None means a stream follows."""
        self._not_started()
        if self._start_hooks is not None:
            for hook in self._start_hooks:
                body = await hook(self, body)
        status = self._status
        if status in (204, 304) or status < 200:
            self._out.pop("content-length", None)
            body = b"" if body is not None else None
        elif body is not None:
            # kept in the headers (not added on the side) so logs can read it
            self._out["content-length"] = [str(len(body))]
        self._started = True
        await self._transmit(
            {"type": "http.response.start", "status": status, "headers": self._raw_headers()}
        )
        return body

    async def _respond(self, body: bytes) -> None:
        sent = await self._start(body)
        self._finished = True
        await self._transmit(
            {"type": "http.response.body", "body": b"" if self.method == "HEAD" else sent}
        )


def _header_text(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str | int):
        return str(value)
    raise TypeError(
        f"header values are str, int, bool or a list of them, not {type(value).__name__}"
    )


async def call_callback(callback: Callback) -> None:
    result = callback()
    if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
        await result

"""HTTPConnection: one object that is both the request and the response.

Request members are parsed on first access and cached (``request.py``). Response
members are thin: each validates its input with a pure helper from
``simples.http`` and hands the result to the exchange's ``Response``
(``response.py``), the one owner of what goes back to the client. Only
``send``, ``write``, ``end``, ``close``, ``redirect``, ``drain``, ``render`` and
``error`` talk to the client.
"""

from __future__ import annotations

import enum
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Final, overload

from .body import request_body
from .encode import JSON, TEXT, dumps_json, encode_body
from .http.cache import cache_control
from .http.cookies import cookie_line
from .http.headers import validate_header_name, validate_header_value
from .http.links import format_links
from .http.mediatypes import resolve_type
from .log import LogTarget, emit, format_line
from .request import Request
from .response import Response
from .timers import TaskDeadline
from .types import Message, Receive, Scope, Send

if TYPE_CHECKING:
    from .body import Body
    from .router import Router

logger = logging.getLogger("simples")

Callback = Callable[[], Any]
HeaderValue = str | int | bool | list[str | int | bool] | tuple[str | int | bool, ...]
ConnectionHook = Callable[["HTTPConnection", bytes | None], Awaitable[bytes | None]]


class _Missing(enum.Enum):
    """The "no argument" marker of the getter/setter members (an enum member, so
    that ``value is MISSING`` narrows the type for mypy)."""

    MISSING = enum.auto()


MISSING: Final = _Missing.MISSING


class HTTPConnection(Request):
    """The request and the response of one HTTP exchange."""

    __slots__ = ("_error_depth", "body_reader", "deadline", "response")

    def __init__(
        self, scope: Scope, receive: Receive, send: Send, router: Router, host: str
    ) -> None:
        Request.__init__(self, scope, receive, send, router, host, scope.get("scheme", "http"))
        #: The body if a handler asked for it (closed at the end of the exchange).
        self.body_reader: Body | None = None
        #: The ``keep()`` deadline in force, if any.
        self.deadline: TaskDeadline | None = None
        self._error_depth = 0
        #: The outgoing response; ``response.send`` is the raw ASGI side, for
        #: third-party code, and keeps track of what was sent.
        self.response = Response(send, self.method == "HEAD")

    def body(self, limit: int | None = None) -> Body:
        """The request body; ``await connection.body()`` gives bytes.

        The body is read once; later calls return the same ``Body`` (pass ``limit``
        to its methods to change the limit for that read)."""
        body = self.body_reader
        if body is None:
            body = self.body_reader = request_body(
                self._receive_tracked, self.scope["headers"], self.router.settings.limits, limit
            )
            route = self.route
            if route is not None:
                body.schema = route.body
        return body

    @property
    def answering_error(self) -> bool:
        """Whether an error route (or the default error answer) is running."""
        return self._error_depth > 0

    # ----------------------------------------------------------------- response

    @property
    def started(self) -> bool:
        """Whether the response headers have gone out."""
        return self.response.started

    @property
    def finished(self) -> bool:
        """Whether the response is complete."""
        return self.response.finished

    @overload
    def status(self) -> int: ...
    @overload
    def status(self, code: int) -> HTTPConnection: ...
    def status(self, code: int | _Missing = MISSING) -> int | HTTPConnection:
        """Get the status (200 by default) or set it (100-599)."""
        if code is MISSING:
            return self.response.status
        if type(code) is not int or not 100 <= code <= 599:
            raise ValueError(f"status must be an int in 100-599, got {code!r}")
        self.response.set_status(code)
        return self

    @overload
    def header(self, name: str) -> str | list[str] | None: ...
    @overload
    def header(self, name: str, value: HeaderValue | None) -> HTTPConnection: ...
    def header(
        self, name: str, value: HeaderValue | _Missing | None = MISSING
    ) -> str | list[str] | HTTPConnection | None:
        """Get a response header (a list when several lines), set it (a list sets
        one line each), or remove it with ``None``."""
        key = validate_header_name(name)
        response = self.response
        if value is MISSING:
            return response.get(key)
        if type(value) is str:  # the common case, without the conversion call
            response.set(key, [validate_header_value(value)])
        elif value is None:
            response.remove(key)
        elif isinstance(value, list | tuple):
            response.set(key, [validate_header_value(_header_text(item)) for item in value])
        else:
            response.set(key, [validate_header_value(_header_text(value))])
        return self

    @overload
    def type(self) -> str | None: ...
    @overload
    def type(self, value: str | None, override: bool = False) -> HTTPConnection: ...
    def type(
        self, value: str | _Missing | None = MISSING, override: bool = False
    ) -> str | HTTPConnection | None:
        """Get, set (an extension like ``"json"`` or a media type) or remove Content-Type."""
        if value is MISSING:
            return self.response.first("content-type")
        if value is None:
            self.response.remove("content-type")
        else:
            self.response.set("content-type", [resolve_type(value, override)])
        return self

    def cookie(
        self,
        name: str,
        value: str | None,
        attributes: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> HTTPConnection:
        """Add a Set-Cookie line; ``value=None`` deletes the cookie."""
        if attributes:
            options = {**attributes, **options}
        self.response.append("set-cookie", cookie_line(name, value, options))
        return self

    @overload
    def cache(self) -> str | None: ...
    @overload
    def cache(
        self, config: str | Mapping[str, Any] | None = None, **options: Any
    ) -> HTTPConnection: ...
    def cache(
        self, config: str | Mapping[str, Any] | _Missing | None = MISSING, **options: Any
    ) -> str | HTTPConnection | None:
        """Get, set or remove Cache-Control (a str as is, or a dict / keywords)."""
        if config is MISSING and not options:
            return self.response.first("cache-control")
        if config is None:
            self.response.remove("cache-control")
            return self
        if isinstance(config, str):
            return self.header("cache-control", config)
        merged = {**(config if isinstance(config, Mapping) else {}), **options}
        self.response.set("cache-control", [cache_control(merged)])
        return self

    @overload
    def lang(self) -> str | None: ...
    @overload
    def lang(self, value: str | None) -> HTTPConnection: ...
    def lang(self, value: str | _Missing | None = MISSING) -> str | HTTPConnection | None:
        """Get, set or remove Content-Language."""
        if value is MISSING:
            return self.response.first("content-language")
        return self.header("content-language", value)

    @overload
    def links(self) -> str | None: ...
    @overload
    def links(self, links: Mapping[str, str] | None) -> HTTPConnection: ...
    def links(
        self, links: Mapping[str, str] | _Missing | None = MISSING
    ) -> str | HTTPConnection | None:
        """Get, set (``{"next": "/2"}``) or remove Link."""
        if links is MISSING:
            return self.response.first("link")
        if links is None:
            return self.header("link", None)
        return self.header("link", format_links(links))

    @overload
    def keep(self) -> float | None: ...
    @overload
    def keep(self, timeout: float | None) -> HTTPConnection: ...
    def keep(self, timeout: float | _Missing | None = MISSING) -> float | HTTPConnection | None:
        """Abandon the exchange after ``timeout`` seconds without traffic (408 and
        close before the response started); ``0``/``None`` turns it off."""
        if timeout is MISSING:
            return self.deadline.idle if self.deadline else None
        if timeout and timeout < 0:
            raise ValueError("keep() timeout must be positive")
        if self.deadline is not None:
            self.deadline.stop()
            self.deadline = None
        if timeout:
            self.deadline = TaskDeadline(float(timeout))
        self.response.deadline = self.deadline
        return self

    def log(
        self,
        format: str | None = None,
        tokens: Mapping[str, Callable[[HTTPConnection], str]] | None = None,
        logger: LogTarget | None = None,
    ) -> HTTPConnection:
        """Format one log line from ``%tokens`` and hand it to ``logger``."""
        emit(format_line(self, format, tokens), logger)
        return self

    def on_start(self, hook: ConnectionHook) -> None:
        """Run ``await hook(connection, body)`` just before the headers go out
        (``body`` is ``None`` for a stream; return the body to send). Hooks run
        all or none (see ``Response.on_start``)."""
        self.response.on_start(partial(hook, self))

    async def send(self, data: Any = None, callback: Callback | None = None) -> None:
        """Send ``data`` as the whole response (str, bytes, JSON-able data, None)."""
        # the commonest answers without encode_body's call
        kind = type(data)
        if kind is str:
            await self.response.respond(data.encode(), TEXT)
        elif kind is dict or kind is list:
            await self.response.respond(dumps_json(data), JSON)
        else:
            body, default_type = encode_body(data)
            await self.response.respond(body, default_type)
        if callback is not None:
            await call_callback(callback)

    async def write(self, chunk: str | bytes) -> None:
        """Send a chunk of a streamed (chunked) response, starting it if needed."""
        data = chunk.encode() if isinstance(chunk, str) else bytes(chunk)
        response = self.response
        if not response.started:
            response.default("content-type", TEXT)
            await response.start(None)
        await response.write(data)

    async def event(
        self,
        data: Any,
        event: str | None = None,
        id: str | int | None = None,
        retry: int | None = None,
    ) -> None:
        """Send one server-sent event (docs/ecosystem.md), starting a
        ``text/event-stream`` response on the first call: ``data`` a str as is,
        bytes as UTF-8 text, anything else as JSON; ``retry`` in milliseconds.
        Returning from the handler ends the stream."""
        frame = format_event(data, event, id, retry)
        response = self.response
        if not response.started:
            response.set("content-type", ["text/event-stream"])
            response.default("cache-control", "no-cache")
            # nginx and others buffer responses unless told not to
            response.default("x-accel-buffering", "no")
            await response.start(None)
        await response.write(frame)

    async def end(self, chunk: str | bytes | None = None) -> None:
        """Finish a streamed response (or send ``chunk`` as a whole response)."""
        response = self.response
        if not response.started:
            await self.send(b"" if chunk is None else chunk)
            return
        if chunk:
            await self.write(chunk)
        await response.end()

    async def close(self, callback: Callback | None = None) -> None:
        """End the response (empty when nothing was sent), then call ``callback``."""
        response = self.response
        if not response.started:
            await self.send(None)
        elif not response.finished:
            await response.end()
        if callback is not None:
            await call_callback(callback)

    async def redirect(self, location: str, permanent: bool | int = False) -> None:
        """302, 301 (``permanent=True``) or the 3xx given, to ``location``; empty body."""
        if isinstance(permanent, bool):
            code = 301 if permanent else 302
        elif isinstance(permanent, int) and 300 <= permanent <= 399:
            code = permanent
        else:
            raise ValueError(f"redirect status must be a bool or a 3xx int, got {permanent!r}")
        # Checked before anything changes: a refused target leaves the response as it was.
        target = validate_header_value(location)
        self.response.set_status(code)
        self.response.set("location", [target])
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
        """Run the nearest error route for ``code`` (400-599)."""
        if not 400 <= code <= 599:
            raise ValueError(f"error() needs a status in 400-599, got {code}")
        response = self.response
        response.set_status(code)
        if code == 408 or self._awaits_continue():
            # 408: we give up on this connection (RFC 9110 §15.5.9). Unread body
            # behind an Expect: no 100 Continue went out, so the client holds
            # its body back; kept open, the server would read the client's next
            # request as that body.
            response.set("connection", ["close"])
        self._error_depth += 1
        try:
            handler = self.router.find_error(code) if self._error_depth == 1 else None
            if handler is not None:
                result = await handler(self)
                if result is not None and not response.started:
                    await self.send(result)
        finally:
            self._error_depth -= 1
        if not response.started:
            problem = self._problem(code)
            if problem is None:
                await response.respond_plain(code)
            else:
                response.set("content-type", ["application/problem+json"])
                await response.respond(dumps_json(problem))

    def _problem(self, code: int) -> dict[str, Any] | None:
        """The problem details (RFC 9457) of the error being answered, if it has
        some (a ``ValidationError``: docs/types.md)."""
        error = self._data.get("error") if self._data else None
        problem = getattr(error, "problem", None)
        if problem is None or getattr(error, "code", None) != code:
            return None
        result: dict[str, Any] = problem()
        return result

    def _awaits_continue(self) -> bool:
        """Whether the client sent ``Expect: 100-continue`` and none of its body
        was asked for (the ASGI server sends ``100 Continue`` on the first read)."""
        body = self.body_reader
        if body is not None and body.received:
            return False
        expect = self.headers.get("expect")
        return expect is not None and expect.strip().lower() == "100-continue"

    async def render(self, source: str, imports: Mapping[str, Any] | None = None) -> None:
        """Render template ``source`` with the router's engine and send it as HTML."""
        engine = self.router.find_engine()
        if engine is None:
            raise RuntimeError(
                f"render({source!r}): no template engine on this router; "
                "set one with router.engine(simples.Jinja('templates'))"
            )
        context = {**(imports or {}), "connection": self}
        result = engine.render(source, context)
        html = await result if inspect.isawaitable(result) else result
        self.response.default("content-type", "text/html; charset=utf-8")
        await self.send(str(html))

    async def drain(self, location: Any, type: str | None = None, override: bool = False) -> None:
        """Send a file (by path) or a stream (file object, iterator, async iterator)."""
        from .files import drain

        await drain(self, location, type, override)

    # ---------------------------------------------------------------- internals

    async def _receive_tracked(self) -> Message:
        message = await self._receive()
        keeper = self.deadline
        if keeper is not None:
            keeper.touch()
        return message


def _event_field(name: str, value: str | int) -> str:
    text = str(value)
    if "\r" in text or "\n" in text or (name == "id" and "\0" in text):
        raise ValueError(f"an event's {name} cannot hold CR, LF (or NUL for an id): {text!r}")
    return text


def format_event(
    data: Any, event: str | None = None, id: str | int | None = None, retry: int | None = None
) -> bytes:
    """One event of a ``text/event-stream`` (https://html.spec.whatwg.org/multipage/
    server-sent-events.html#event-stream-interpretation): each line of ``data``
    its own ``data:`` line, the event ended by a blank line."""
    if isinstance(data, str):
        text = data
    elif isinstance(data, bytes | bytearray | memoryview):
        text = bytes(data).decode()
    else:
        text = dumps_json(data).decode()
    lines: list[str] = []
    if event is not None:
        lines.append("event: " + _event_field("event", event))
    if id is not None:
        lines.append("id: " + _event_field("id", id))
    if retry is not None:
        if type(retry) is not int or retry < 0:
            raise ValueError(f"retry is a number of milliseconds (an int >= 0), got {retry!r}")
        lines.append(f"retry: {retry}")
    lines.extend("data: " + line for line in _LINES.split(text))
    return ("\n".join(lines) + "\n\n").encode()


_LINES: Final = re.compile(r"\r\n|\r|\n")


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
    if inspect.isawaitable(result):
        await result


__all__ = ["MISSING", "HTTPConnection", "call_callback", "format_event"]


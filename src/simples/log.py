"""Access-log lines: a format with ``%tokens`` turned into one safe line.

See ``log`` in docs/connection.md.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from .feature import Feature
from .http.headers import TCHAR

if TYPE_CHECKING:
    from .connection import HTTPConnection
    from .router import Router

access_logger = logging.getLogger("simples.access")

#: Where a line goes: a callable taking the line, or a ``logging.Logger``.
LogTarget = Callable[[str], Any] | logging.Logger

DEFAULT_FORMAT = "%short-date %time %protocol %method %href"

Token = Callable[["HTTPConnection"], str]
_TOKEN = re.compile(rf"%(req|res)\[({TCHAR}+)\]|%([a-z][a-z-]*[a-z]|[a-z])")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\\]")


def _escaped_char(match: re.Match[str]) -> str:
    # One exchange, one line: a client must not forge log lines with CR/LF.
    char = match.group()
    return "\\\\" if char == "\\" else f"\\x{ord(char):02x}"


def _clock(pattern: str) -> Token:
    """A token giving the local time as ``pattern`` (strftime), formatted once
    per second rather than once per line."""
    last: tuple[int, str] = (-1, "")

    def token(connection: HTTPConnection) -> str:
        nonlocal last
        now = int(time.time())
        if last[0] != now:
            last = (now, time.strftime(pattern, time.localtime(now)))  # one swap: thread-safe
        return last[1]

    return token


def _request_header(name: str) -> Token:
    return lambda c: c.headers.get(name, "-")


def _response_header(name: str) -> Token:
    def token(connection: HTTPConnection) -> str:
        value = connection.header(name)
        if value is None:
            return "-"
        return ", ".join(value) if isinstance(value, list) else str(value)

    return token


BUILTIN: dict[str, Token] = {
    "date": _clock("%Y-%m-%d %H:%M:%S"),
    "short-date": _clock("%Y-%m-%d"),
    "time": _clock("%H:%M:%S"),
    "short-time": _clock("%H:%M"),
    "year": _clock("%Y"),
    "month": _clock("%m"),
    "day": _clock("%d"),
    "hour": _clock("%H"),
    "minute": _clock("%M"),
    "second": _clock("%S"),
    "timestamp": lambda c: str(int(time.time() * 1000)),
    "host": lambda c: c.host,
    "hostname": lambda c: c.hostname,
    "href": lambda c: c.url.href,
    "ip": lambda c: c.ip.address,
    "lang": _response_header("content-language"),
    "method": lambda c: c.method,
    "path": lambda c: c.path,
    "protocol": lambda c: c.protocol,
    # the matched route's pattern as registered ("/users/:id"), "-" when none matched
    "route": lambda c: c.route.path if c.route is not None else "-",
    "status": lambda c: str(c.status()),
    "type": _response_header("content-type"),
}

# Literal text, or what gives a token's value.
Part = str | Token
_compiled: dict[str, list[Part]] = {}


def compile_format(format: str, tokens: Mapping[str, Token] | None = None) -> list[Part]:
    """Split a format into literal text and the functions that give its tokens'
    values (``tokens`` first, then the built-in ones; an unknown ``%name`` stays
    as it is). Without ``tokens``, once per format; the ``logger`` section
    compiles its format once with its state."""
    if tokens is None:
        parts = _compiled.get(format)
        if parts is not None:
            return parts
    parts = []
    last = 0
    for match in _TOKEN.finditer(format):
        if match.start() > last:
            parts.append(format[last : match.start()])
        side, header, name = match.groups()
        if side == "req":
            parts.append(_request_header(header.lower()))
        elif side == "res":
            parts.append(_response_header(header.lower()))
        elif tokens is not None and name in tokens:
            parts.append(tokens[name])
        elif name in BUILTIN:
            parts.append(BUILTIN[name])
        else:
            parts.append("%" + name)
        last = match.end()
    if last < len(format):
        parts.append(format[last:])
    if tokens is None and len(_compiled) < 256:
        _compiled[format] = parts
    return parts


def render_line(connection: HTTPConnection, parts: list[Part]) -> str:
    """The line of compiled ``parts`` for this exchange, each value escaped."""
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        value = part(connection)
        # escaped in one C call (no match: the same string back)
        out.append(_UNSAFE.sub(_escaped_char, value if type(value) is str else str(value)))
    return "".join(out)


def format_line(
    connection: HTTPConnection,
    format: str | None = None,
    tokens: Mapping[str, Token] | None = None,
) -> str:
    return render_line(connection, compile_format(format or DEFAULT_FORMAT, tokens))


def emit(line: str, target: LogTarget | None = None) -> None:
    """Hand ``line`` to ``target``: a callable, a ``logging.Logger`` (at INFO), or
    by default the ``simples.access`` logger."""
    if target is None:
        target = access_logger
    if isinstance(target, logging.Logger):
        target.info(line)
    else:
        target(line)


class Logger(Feature):
    """The ``logger`` section: one access-log line per finished exchange."""

    name: ClassVar[str] = "logger"
    defaults: ClassVar[Mapping[str, Any]] = {
        "enabled": False,
        "format": DEFAULT_FORMAT,
        "tokens": None,
        "log": None,
    }

    def compile(
        self, section: Mapping[str, Any], router: Router
    ) -> tuple[list[Part], LogTarget | None]:
        return compile_format(section["format"], section["tokens"]), section["log"]

    def finish(
        self, connection: HTTPConnection, state: tuple[list[Part], LogTarget | None]
    ) -> None:
        try:
            emit(render_line(connection, state[0]), state[1])
        except Exception:
            logging.getLogger("simples").exception("the access logger failed")


FEATURE = Logger()

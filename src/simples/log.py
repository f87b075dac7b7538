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

access_logger = logging.getLogger("simples.access")

DEFAULT_FORMAT = "%short-date %time %protocol %method %href"

Token = Callable[["HTTPConnection"], str]
_TOKEN = re.compile(rf"%(req|res)\[({TCHAR}+)\]|%([a-z][a-z-]*[a-z]|[a-z])")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\\]")


def _escape(value: str) -> str:
    # One exchange, one line: a client must not forge log lines with CR/LF.
    return _UNSAFE.sub(lambda m: "\\\\" if m.group() == "\\" else f"\\x{ord(m.group()):02x}", value)


def _local(connection: HTTPConnection) -> time.struct_time:
    return time.localtime()


def _res(connection: HTTPConnection, name: str) -> str:
    value = connection.header(name)
    if value is None:
        return "-"
    return ", ".join(value) if isinstance(value, list) else str(value)


BUILTIN: dict[str, Token] = {
    "date": lambda c: time.strftime("%Y-%m-%d %H:%M:%S", _local(c)),
    "short-date": lambda c: time.strftime("%Y-%m-%d", _local(c)),
    "time": lambda c: time.strftime("%H:%M:%S", _local(c)),
    "short-time": lambda c: time.strftime("%H:%M", _local(c)),
    "year": lambda c: time.strftime("%Y", _local(c)),
    "month": lambda c: time.strftime("%m", _local(c)),
    "day": lambda c: time.strftime("%d", _local(c)),
    "hour": lambda c: time.strftime("%H", _local(c)),
    "minute": lambda c: time.strftime("%M", _local(c)),
    "second": lambda c: time.strftime("%S", _local(c)),
    "timestamp": lambda c: str(int(time.time() * 1000)),
    "host": lambda c: c.host,
    "hostname": lambda c: c.hostname,
    "href": lambda c: c.url.href,
    "ip": lambda c: c.ip.address,
    "lang": lambda c: _res(c, "content-language"),
    "method": lambda c: c.method,
    "path": lambda c: c.path,
    "protocol": lambda c: c.protocol,
    # the matched route's pattern as registered ("/users/:id"), "-" when none matched
    "route": lambda c: c.route.path if c.route is not None else "-",
    "status": lambda c: str(c.status()),
    "type": lambda c: _res(c, "content-type"),
}

Part = str | tuple[str, str]
_compiled: dict[str, list[Part]] = {}


def compile_format(format: str) -> list[Part]:
    """Split a format into literal text and token references, once per format."""
    parts = _compiled.get(format)
    if parts is not None:
        return parts
    parts = []
    last = 0
    for match in _TOKEN.finditer(format):
        if match.start() > last:
            parts.append(format[last : match.start()])
        side, header, name = match.groups()
        parts.append((side, header.lower()) if side else ("", name))
        last = match.end()
    if last < len(format):
        parts.append(format[last:])
    if len(_compiled) < 256:
        _compiled[format] = parts
    return parts


def format_line(
    connection: HTTPConnection,
    format: str | None = None,
    tokens: Mapping[str, Token] | None = None,
) -> str:
    out: list[str] = []
    for part in compile_format(format or DEFAULT_FORMAT):
        if isinstance(part, str):
            out.append(part)
            continue
        kind, name = part
        value: Any
        if kind == "req":
            value = connection.headers.get(name, "-")
        elif kind == "res":
            value = _res(connection, name)
        elif tokens is not None and name in tokens:
            value = tokens[name](connection)
        elif name in BUILTIN:
            value = BUILTIN[name](connection)
        else:
            value = "%" + name
        out.append(_escape(str(value)))
    return "".join(out)


class Logger(Feature):
    """The ``logger`` section: one access-log line per finished exchange."""

    name: ClassVar[str] = "logger"
    defaults: ClassVar[Mapping[str, Any]] = {
        "enabled": False,
        "format": DEFAULT_FORMAT,
        "tokens": None,
        "log": None,
    }

    def finish(self, connection: HTTPConnection, state: Any) -> None:
        try:
            connection.log(state["format"], state["tokens"], state["log"])
        except Exception:
            logging.getLogger("simples").exception("the access logger failed")


FEATURE = Logger()

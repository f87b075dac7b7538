"""What both transports share: the error, the response, the request builder,
request bodies (urlencoded, multipart, streamed) and the cookie jar."""

from __future__ import annotations

import asyncio
import codecs
import json
import os
import secrets
import time
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Mapping,
)
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, BinaryIO, Self
from urllib.parse import urlencode, urlsplit

from simples.encode import encode_body
from simples.http.dates import parse_http_date
from simples.http.headers import Headers, validate_header_name, validate_header_value
from simples.http.mediatypes import media_type_for, resolve_type
from simples.http.multidict import MultiDict
from simples.http.query import parse_query, percent_decode

if TYPE_CHECKING:
    from simples.clients import Client

# Response bodies read whole (buffer/text/json/qs) stop at this many bytes unless
# told otherwise: the server's own default for request bodies (limits["body"]).
DEFAULT_LIMIT = 1 << 20
CHUNK = 64 * 1024


class ClientError(Exception):
    """A request that did not give a whole answer: refused connection, timeout,
    a body over its limit or cut short, malformed JSON, a refused WebSocket
    handshake. ``status`` is the HTTP status when the peer answered with one."""

    def __init__(self, message: str, status: int | None = None, body: bytes = b"") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body


@dataclass(frozen=True, slots=True)
class Timeout:
    """``connect``: seconds to open a connection (and a WebSocket handshake);
    ``read``: each wait for the peer (the response head, every body chunk, every
    WebSocket message); ``total``: the whole exchange up to the response head,
    redirects and request upload included. ``None`` waits forever."""

    connect: float | None = 30.0
    read: float | None = 30.0
    total: float | None = None

    @classmethod
    def of(cls, value: float | Timeout | None) -> Timeout:
        if isinstance(value, Timeout):
            return value
        if value is not None and (isinstance(value, bool) or value <= 0):
            raise ValueError(f"a timeout is a positive number of seconds or None, got {value!r}")
        return cls(value, value, None)


# ---------------------------------------------------------------------- bodies


@dataclass(slots=True)
class Payload:
    """A request body: bytes, or chunks pulled one at a time (``length`` when known)."""

    content: bytes | AsyncIterable[bytes]
    length: int | None
    type: str | None = None

    @property
    def replayable(self) -> bool:
        return isinstance(self.content, bytes)


EMPTY = Payload(b"", 0)


def data_payload(data: Any) -> Payload:
    """``send(data)``: str, bytes, ``None`` or JSON, encoded as ``connection.send`` does."""
    body, kind = encode_body(data)
    return Payload(body, len(body), kind)


def qs_payload(fields: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> Payload:
    """An ``application/x-www-form-urlencoded`` body; a list value gives one pair each."""
    pairs: list[tuple[str, str]] = []
    items = fields.items() if isinstance(fields, Mapping) else fields
    for name, value in items:
        values = value if isinstance(value, list | tuple) else [value]
        pairs.extend((name, _text_of(item)) for item in values)
    body = urlencode(pairs).encode()
    return Payload(body, len(body), "application/x-www-form-urlencoded")


def _text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise TypeError(f"a form or qs value is a str or a number, not {type(value).__name__}")


def _quote_param(value: str) -> str:
    # What browsers do for multipart names and filenames (HTML's "multipart/form-data
    # encoding algorithm", RFC 7578 §4.2): escape the three characters that would
    # end the quoted string or the header line.
    return value.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


@dataclass(slots=True)
class _FilePart:
    name: str
    filename: str
    type: str
    data: bytes | None = None
    path: str | None = None
    stream: BinaryIO | None = None
    size: int | None = None


def form_payload(fields: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> Payload:
    """A ``multipart/form-data`` body (RFC 7578). Files are read in chunks while the
    body is sent, never whole: ``{"path": p}``, ``{"data": b, "filename": f,
    "type": t}`` or an open binary file."""
    boundary = "simples-" + secrets.token_hex(12)
    parts: list[tuple[bytes, bytes | _FilePart]] = []
    items = fields.items() if isinstance(fields, Mapping) else fields
    for name, value in items:
        values = value if isinstance(value, list | tuple) else [value]
        for item in values:
            if isinstance(item, dict) or hasattr(item, "read"):
                file = _file_part(name, item)
                head = (
                    f"--{boundary}\r\nContent-Disposition: form-data; "
                    f'name="{_quote_param(name)}"; filename="{_quote_param(file.filename)}"'
                    f"\r\nContent-Type: {file.type}\r\n\r\n"
                )
                parts.append((head.encode(), file))
            else:
                head = (
                    f"--{boundary}\r\nContent-Disposition: form-data; "
                    f'name="{_quote_param(name)}"\r\n\r\n'
                )
                parts.append((head.encode(), _text_of(item).encode()))
    tail = f"--{boundary}--\r\n".encode()
    length: int | None = len(tail)
    for part_head, body in parts:
        size = len(body) if isinstance(body, bytes) else body.size
        length = None if length is None or size is None else length + len(part_head) + size + 2

    async def chunks() -> AsyncIterator[bytes]:
        for part_head, part in parts:
            yield part_head
            if isinstance(part, bytes):
                yield part
            elif part.data is not None:
                yield part.data
            elif part.path is not None:
                with await asyncio.to_thread(open, part.path, "rb") as file:
                    async for chunk in _read_file(file):
                        yield chunk
            elif part.stream is not None:
                async for chunk in _read_file(part.stream):
                    yield chunk
            yield b"\r\n"
        yield tail

    return Payload(chunks(), length, f"multipart/form-data; boundary={boundary}")


def _file_part(name: str, value: Any) -> _FilePart:
    if isinstance(value, dict):
        unknown = set(value) - {"path", "data", "filename", "type"}
        if unknown or ("path" in value) == ("data" in value):
            raise ValueError(
                'a file field is {"path": p} or {"data": b"...", "filename": f, "type": t}, '
                f"got keys {sorted(value)}"
            )
        if "path" in value:
            path = os.fspath(value["path"])
            filename = value.get("filename") or os.path.basename(path)
            size = os.stat(path).st_size
            return _FilePart(name, filename, _type_for(filename, value.get("type")), path=path,
                             size=size)
        data = bytes(value["data"])
        filename = value.get("filename") or name
        return _FilePart(name, filename, _type_for(filename, value.get("type")), data=data,
                         size=len(data))
    stream: BinaryIO = value
    filename = os.path.basename(str(getattr(stream, "name", "") or name))
    return _FilePart(name, filename, _type_for(filename, None), stream=stream,
                     size=_remaining(stream))


def _type_for(filename: str, given: str | None) -> str:
    if given is not None:
        return resolve_type(given)
    found = media_type_for(filename) if "." in filename else None
    return resolve_type(found) if found is not None else "application/octet-stream"


def _remaining(stream: Any) -> int | None:
    try:
        return int(os.fstat(stream.fileno()).st_size - stream.tell())
    except (AttributeError, OSError, ValueError):
        return None


async def _read_file(file: Any) -> AsyncIterator[bytes]:
    # Local reads of 64 KiB are quick; a thread per chunk would cost more than it saves.
    while True:
        chunk = file.read(CHUNK)
        if not chunk:
            return
        yield bytes(chunk)


def drain_payload(source: Any) -> Payload:
    """``drain(source)``: a path (Content-Type from its extension), an open binary
    file, bytes, or an iterator / async iterator of bytes, streamed as the body."""
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        size = os.stat(path).st_size
        kind = media_type_for(path)

        async def from_path() -> AsyncIterator[bytes]:
            with await asyncio.to_thread(open, path, "rb") as file:
                async for chunk in _read_file(file):
                    yield chunk

        return Payload(from_path(), size, resolve_type(kind) if kind else None)
    if isinstance(source, bytes | bytearray | memoryview):
        return Payload(bytes(source), len(source), None)
    if hasattr(source, "read"):
        return Payload(_read_file(source), _remaining(source), None)
    if isinstance(source, AsyncIterable):
        return Payload(_checked(source), None, None)
    if isinstance(source, Iterable):
        return Payload(_from_sync(source), None, None)
    raise TypeError(
        "drain() takes a path, an open binary file, bytes, or an (async) iterator of bytes, "
        f"not {type(source).__name__}"
    )


async def _checked(source: AsyncIterable[Any]) -> AsyncIterator[bytes]:
    async for chunk in source:
        yield _chunk(chunk)


async def _from_sync(source: Iterable[Any]) -> AsyncIterator[bytes]:
    for chunk in source:
        yield _chunk(chunk)


def _chunk(chunk: Any) -> bytes:
    if isinstance(chunk, bytes | bytearray | memoryview):
        return bytes(chunk)
    if isinstance(chunk, str):
        return chunk.encode()
    raise TypeError(f"a streamed body yields bytes, not {type(chunk).__name__}")


# --------------------------------------------------------------------- response


class Response:
    """The answer: ``status``, ``headers`` and ``cookies`` are in when the request
    call returns; the body streams after and can be read once, whole (``buffer``,
    ``text``, ``json``, ``qs``: cached, so they can be mixed) or in chunks
    (``async for chunk in response``)."""

    __slots__ = ("_body", "_chunks", "_close", "_consumed", "_limit", "cookies", "headers",
                 "method", "status", "url")

    def __init__(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]],
        chunks: AsyncIterator[bytes],
        close: Callable[[], Awaitable[None]],
        *,
        url: str,
        method: str,
        limit: int = DEFAULT_LIMIT,
    ) -> None:
        self.status = status
        self.headers = Headers(headers)
        self.url = url
        self.method = method
        #: cookies this response set (name → value, percent-decoded as
        #: ``connection.cookies`` reads them); the client's jar keeps them all
        self.cookies: dict[str, str] = {}
        self._chunks = chunks
        self._close = close
        self._limit = limit
        self._body: bytes | None = None
        self._consumed = False

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.method} {self.url}>"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop reading: the rest of the body is dropped and the connection freed.
        Reading a body to its end closes the response too."""
        self._consumed = True
        await self._close()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        if self._body is not None:
            if self._body:
                yield self._body
            return
        if self._consumed:
            raise RuntimeError("the response body was already read (a body can be read once)")
        self._consumed = True
        try:
            async for chunk in self._chunks:
                if chunk:
                    yield chunk
        finally:
            await self._close()

    async def buffer(self, limit: int | None = None) -> bytes:
        """The whole body; more than ``limit`` bytes (``None``: the client's limit,
        1 MiB unless set; ``0``: no limit) raises ``ClientError`` as soon as it shows,
        without reading the rest."""
        limit = self._limit if limit is None else limit
        body = self._body
        if body is None:
            declared = self.headers.get("content-length")
            if limit and declared is not None and declared.isdigit() and int(declared) > limit:
                await self.close()
                raise ClientError(self._too_big(limit, f"Content-Length is {declared}"))
            pieces: list[bytes] = []
            size = 0
            async for chunk in self:
                size += len(chunk)
                if limit and size > limit:
                    await self.close()
                    raise ClientError(self._too_big(limit, "the body is larger"))
                pieces.append(chunk)
            body = self._body = b"".join(pieces)
        elif limit and len(body) > limit:
            raise ClientError(self._too_big(limit, f"the body has {len(body)} bytes"))
        return body

    def _too_big(self, limit: int, why: str) -> str:
        return (
            f"the response to {self.method} {self.url} is over the limit of {limit} bytes "
            f"({why}); pass limit= (0: no limit) or stream it with 'async for'"
        )

    async def text(self, limit: int | None = None) -> str:
        """The body decoded with the charset of Content-Type (UTF-8 when absent)."""
        body = await self.buffer(limit)
        charset = _charset(self.headers.get("content-type")) or "utf-8"
        try:
            codecs.lookup(charset)
        except LookupError:
            charset = "utf-8"
        return body.decode(charset, "replace")

    async def json(self, limit: int | None = None) -> Any:
        """The body parsed as JSON (UTF-8, RFC 8259 §8.1); malformed: ``ClientError``."""
        body = await self.buffer(limit)
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise ClientError(
                f"the response to {self.method} {self.url} is not valid JSON: {exc}",
                self.status,
                body[:200],
            ) from None

    async def qs(self, limit: int | None = None) -> MultiDict[str]:
        """The body parsed as ``application/x-www-form-urlencoded``."""
        return parse_query(await self.buffer(limit), 0)


def _charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"') or None
    return None


# ---------------------------------------------------------------------- request


class Request:
    """A request being built: ``.header()`` and ``.type()`` chain, then one of
    ``send(data)``, ``qs(fields)``, ``form(fields)``, ``drain(source)`` sends it
    (or ``await request`` with no body)."""

    __slots__ = ("_client", "_follow", "_headers", "_type", "method", "url")

    def __init__(
        self, client: Client, method: str, url: str, follow_redirects: bool | int | None = None
    ) -> None:
        self._client = client
        self.method = method.upper()
        self.url = url
        self._headers: list[tuple[str, str]] = []
        self._type: str | None = None
        self._follow = follow_redirects

    def header(self, name: str, value: str | int | bool | list[str] | None) -> Self:
        """Set a header (a list: one line per value; ``None``: remove it)."""
        key = validate_header_name(name)
        self._headers = [item for item in self._headers if item[0] != key]
        if key == "content-type":
            self._type = None
        if value is None:
            return self
        values = value if isinstance(value, list) else [value]
        for item in values:
            text = ("true" if item else "false") if isinstance(item, bool) else str(item)
            self._headers.append((key, validate_header_value(text)))
        return self

    def type(self, value: str | None, override: bool = False) -> Self:
        """Content-Type as ``connection.type`` sets it: ``"json"`` → ``application/json``,
        ``"html"`` → ``text/html; charset=utf-8``; ``None`` removes it."""
        self._headers = [item for item in self._headers if item[0] != "content-type"]
        self._type = None if value is None else resolve_type(value, override)
        return self

    async def send(self, data: Any = None) -> Response:
        """Send ``data``: str → text/plain, bytes → octet-stream, dict/list/numbers/
        bool/dataclasses → JSON, ``None`` → no body (a type set before wins)."""
        return await self._go(data_payload(data))

    async def qs(self, fields: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> Response:
        """Send ``fields`` urlencoded (``application/x-www-form-urlencoded``)."""
        return await self._go(qs_payload(fields))

    async def form(self, fields: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> Response:
        """Send ``multipart/form-data``; files are streamed from disk or their file object."""
        return await self._go(form_payload(fields))

    async def drain(self, source: Any) -> Response:
        """Send a file (path) or a stream (file object, iterator of bytes) as the body."""
        return await self._go(drain_payload(source))

    def __await__(self) -> Generator[Any, None, Response]:
        return self._go(EMPTY).__await__()

    async def _go(self, payload: Payload) -> Response:
        headers = list(self._headers)
        kind = self._type or payload.type
        if kind is not None and not any(name == "content-type" for name, _ in headers):
            headers.append(("content-type", kind))
        return await self._client.exchange(
            self.method, self.url, headers, payload, self._follow
        )


# ---------------------------------------------------------------------- cookies


@dataclass(slots=True)
class Cookie:
    """One cookie of the jar (RFC 6265 §5.3 storage model, the parts clients use)."""

    name: str
    value: str
    domain: str
    path: str
    host_only: bool = True
    secure: bool = False
    http_only: bool = False
    expires: float | None = None

    def expired(self, now: float) -> bool:
        return self.expires is not None and self.expires <= now


class CookieJar:
    """The client's cookies: stored from every Set-Cookie, sent back where their
    Domain, Path, Secure and expiry allow (RFC 6265 §5.3, §5.4)."""

    def __init__(self) -> None:
        self._cookies: dict[tuple[str, str, str], Cookie] = {}

    def __iter__(self) -> Generator[Cookie, None, None]:
        now = time.time()
        yield from (c for c in list(self._cookies.values()) if not c.expired(now))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, name: object) -> bool:
        return any(cookie.name == name for cookie in self)

    def __getitem__(self, name: str) -> str:
        for cookie in self:
            if cookie.name == name:
                return _decoded(cookie.value)
        raise KeyError(name)

    def get(self, name: str, default: str | None = None) -> str | None:
        try:
            return self[name]
        except KeyError:
            return default

    def set(self, name: str, value: str, domain: str = "", path: str = "/") -> None:
        """Add a cookie by hand (``domain=""``: sent to every host)."""
        self._cookies[(domain.lower(), path, name)] = Cookie(
            name, value, domain.lower(), path, host_only=False
        )

    def delete(self, name: str) -> None:
        for key in [key for key in self._cookies if key[2] == name]:
            del self._cookies[key]

    def clear(self) -> None:
        self._cookies.clear()

    def store(self, url: str, lines: list[str]) -> dict[str, str]:
        """Take the Set-Cookie ``lines`` of a response to ``url``; returns the
        cookies they set (name → decoded value), deletions left out."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        secure = parts.scheme in ("https", "wss")
        now = time.time()
        fresh: dict[str, str] = {}
        for line in lines:
            cookie = _parse_set_cookie(line, host, parts.path or "/", now)
            if cookie is None:
                continue
            if cookie.secure and not secure:
                continue  # RFC 6265bis §5.7 step 8: only a secure origin sets Secure
            key = (cookie.domain, cookie.path, cookie.name)
            if cookie.expired(now):
                self._cookies.pop(key, None)
                continue
            self._cookies[key] = cookie
            fresh[cookie.name] = _decoded(cookie.value)
        return fresh

    def header(self, url: str) -> str | None:
        """The Cookie header for a request to ``url`` (longer paths first, §5.4)."""
        if not self._cookies:
            return None
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        path = parts.path or "/"
        secure = parts.scheme in ("https", "wss")
        now = time.time()
        chosen: list[Cookie] = []
        for key, cookie in list(self._cookies.items()):
            if cookie.expired(now):
                del self._cookies[key]
                continue
            if cookie.secure and not secure:
                continue
            if cookie.domain:
                if cookie.host_only:
                    if host != cookie.domain:
                        continue
                elif not _domain_match(host, cookie.domain):
                    continue
            if not _path_match(path, cookie.path):
                continue
            chosen.append(cookie)
        if not chosen:
            return None
        chosen.sort(key=lambda c: -len(c.path))
        return "; ".join(f"{c.name}={c.value}" for c in chosen)


def _decoded(value: str) -> str:
    if "%" not in value:
        return value
    return percent_decode(value.encode("utf-8", "surrogatepass")).decode("utf-8", "replace")


def _domain_match(host: str, domain: str) -> bool:
    return host == domain or (host.endswith("." + domain) and not _is_ip(host))


def _is_ip(host: str) -> bool:
    return ":" in host or host.replace(".", "").isdigit()


def _path_match(path: str, cookie_path: str) -> bool:
    # RFC 6265 §5.1.4
    if path == cookie_path:
        return True
    if path.startswith(cookie_path):
        return cookie_path.endswith("/") or path[len(cookie_path)] == "/"
    return False


def _default_path(path: str) -> str:
    # RFC 6265 §5.1.4: the request path up to, not including, its last "/"
    if not path.startswith("/") or path.count("/") == 1:
        return "/"
    return path[: path.rfind("/")]


def _cookie_date(value: str) -> float | None:
    found = parse_http_date(value)
    if found is not None:
        return found
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _parse_set_cookie(line: str, host: str, request_path: str, now: float) -> Cookie | None:
    # RFC 6265 §5.2: a malformed line or attribute is ignored, never an error
    pair, *attributes = line.split(";")
    name, sep, value = pair.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not name:
        return None
    if len(value) > 1 and value[0] == value[-1] == '"':
        value = value[1:-1]
    cookie = Cookie(name, value, host, _default_path(request_path))
    max_age: float | None = None
    expires: float | None = None
    for attribute in attributes:
        key, _, argument = attribute.partition("=")
        key, argument = key.strip().lower(), argument.strip()
        if key == "max-age":
            if argument.lstrip("-").isdigit():
                max_age = now + int(argument) if int(argument) > 0 else 0.0
        elif key == "expires":
            expires = _cookie_date(argument)
        elif key == "domain" and argument:
            domain = argument.lstrip(".").lower()
            if not _domain_match(host, domain):
                return None  # §5.3 step 6: a Domain that does not cover the host
            cookie.domain, cookie.host_only = domain, False
        elif key == "path":
            cookie.path = argument if argument.startswith("/") else _default_path(request_path)
        elif key == "secure":
            cookie.secure = True
        elif key == "httponly":
            cookie.http_only = True
    # §5.3 step 3: Max-Age wins over Expires
    cookie.expires = max_age if max_age is not None else expires
    return cookie

"""The request body: read lazily from ASGI ``receive``, once, within limits.

``connection.body(limit=None)`` returns a :class:`Body`. Nothing is received
until one of its methods runs, so an ``Expect: 100-continue`` client only gets
its ``100 Continue`` (sent by the ASGI server on the first ``receive()``) once
the application actually asks for the body.

Every failure a client can cause is an :class:`~simples.errors.HTTPError`
(400, 413 or 415) so that it runs the router's error routes; a client that
goes away mid-body raises :class:`ClientDisconnect`.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import importlib
import json as _stdlib_json
import math
import os
import re
import shutil
import tempfile
import weakref
import zlib
from collections.abc import AsyncIterator, Callable, Generator, Mapping
from typing import Any, Final
from urllib.parse import unquote_to_bytes

from simples.errors import HTTPError
from simples.http.multidict import MultiDict
from simples.limits import LIMITS
from simples.timers import BodyDeadline
from simples.types import Message, Receive

__all__ = [
    "DEFAULT_LIMITS",
    "FIELD_SIZE",
    "SPOOL_SIZE",
    "Body",
    "ClientDisconnect",
    "Form",
    "UploadedFile",
    "request_body",
]

# The limits table (kept under this name for the body's own users).
DEFAULT_LIMITS: Final = LIMITS

#: Largest value of one non-file multipart field (413 above).
FIELD_SIZE: Final = 1 << 20
#: Uploads larger than this are written to a temporary file.
SPOOL_SIZE: Final = 1 << 20

# Decompression hands out at most this much per step, so a zip bomb is caught
# by the limit after one step instead of after inflating all of it.
_INFLATE_STEP: Final = 64 << 10
# Upload pieces smaller than this are gathered into one before being kept.
_SMALL_PIECE: Final = 4096
# RFC 7578 parts carry three headers; anything far above that is abuse.
_MAX_PART_HEADERS: Final = 32

_FRESH: Final = 0
_READING: Final = 1
_CACHED: Final = 2
_CONSUMED: Final = 3
_FAILED: Final = 4
_DISCONNECTED: Final = 5


class ClientDisconnect(Exception):
    """The client went away before the whole body arrived."""

    def __init__(self, message: str = "the client disconnected before the body was complete"):
        super().__init__(message)


# ---------------------------------------------------------------- results


class Form:
    """A parsed form: text ``fields`` and uploaded ``files``, both multi-dicts."""

    __slots__ = ("fields", "files")

    def __init__(
        self,
        fields: MultiDict[str] | None = None,
        files: MultiDict[UploadedFile] | None = None,
    ) -> None:
        self.fields: MultiDict[str] = fields if fields is not None else MultiDict()
        self.files: MultiDict[UploadedFile] = files if files is not None else MultiDict()

    def __repr__(self) -> str:
        return f"Form(fields={self.fields!r}, files={self.files!r})"


class UploadedFile:
    """One file part of a multipart form.

    Small files stay in memory; past :data:`SPOOL_SIZE` bytes the content is
    in a temporary file (``path``) that the connection removes when the
    exchange ends, so ``save()`` what you want to keep before returning.
    """

    __slots__ = (
        "__weakref__",
        "_chunks",
        "_data",
        "_file",
        "_finalizer",
        "_held",
        "_path",
        "_removed",
        "_tail",
        "content_type",
        "filename",
        "headers",
        "name",
        "raw_filename",
        "size",
    )

    def __init__(
        self,
        name: str,
        filename: str,
        raw_filename: str,
        content_type: str,
        headers: dict[str, str],
    ) -> None:
        self.name = name
        #: The last path segment of what the client sent, without control characters.
        self.filename = filename
        #: The file name exactly as the client sent it (decoded): never use it as a path.
        self.raw_filename = raw_filename
        self.content_type = content_type
        self.headers = headers
        self.size = 0
        # The content not yet on disk: the parser's pieces as they came (no
        # copy), small pieces gathered in _tail first (see _write).
        self._chunks: list[bytes] = []
        self._tail = bytearray()
        self._held = 0
        self._data: bytes | None = None
        self._file: Any = None
        self._path: str | None = None
        self._finalizer: weakref.finalize[..., Any] | None = None
        self._removed = False

    @property
    def path(self) -> str | None:
        """The temporary file holding the content, or ``None`` while in memory."""
        return self._path

    @property
    def in_memory(self) -> bool:
        return self._path is None

    async def read(self) -> bytes:
        """The whole content (a big upload is read from disk off the event loop)."""
        if self._path is None:
            return self._frozen()
        self._check_present()
        return await asyncio.to_thread(_read_file, self._path)

    async def save(self, path: str | os.PathLike[str]) -> None:
        """Write the content to ``path`` (file I/O runs in a worker thread)."""
        if self._path is None:
            # The pieces are final once the part ended: written as they are.
            pieces = [self._data] if self._data is not None else self._chunks[:]
            await asyncio.to_thread(_write_file, path, pieces)
            return
        self._check_present()
        await asyncio.to_thread(shutil.copyfile, self._path, path)

    def __repr__(self) -> str:
        where = "memory" if self._path is None else self._path
        return (
            f"UploadedFile(name={self.name!r}, filename={self.filename!r}, "
            f"content_type={self.content_type!r}, size={self.size}, in={where!r})"
        )

    def _frozen(self) -> bytes:
        # Joined on the first read, not when the part ends: a handler that only
        # looks at .size or save()s the file never pays for a copy (nor does a
        # file that arrived in one piece). Joined once, so every read() returns
        # the same bytes object.
        data = self._data
        if data is None:
            chunks = self._chunks
            data = self._data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            self._chunks = []
        return data

    def _check_present(self) -> None:
        if self._removed:
            raise RuntimeError(
                "this upload's temporary file was removed when the request ended; "
                "save() or read() it inside the handler"
            )

    # Writing happens only while the form is parsed, one part at a time.

    async def _write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self._held += len(chunk)
        if len(chunk) >= _SMALL_PIECE:
            if self._tail:
                self._seal()
            # Kept as it is: no copy, and no large buffer growing (a fresh
            # megabyte of memory costs page faults on every upload).
            self._chunks.append(chunk)
        else:
            # A body sent a few bytes at a time must not become a million tiny
            # objects (each about 40 bytes of overhead): gather small pieces.
            tail = self._tail
            tail += chunk
            if len(tail) >= _SMALL_PIECE:
                self._seal()
        # Memory per file stays near SPOOL_SIZE: past it, the pieces go to disk
        # in one threaded write instead of one thread hop per small chunk.
        if self._held > SPOOL_SIZE:
            if self._file is None:
                self._file, self._path = await asyncio.to_thread(_open_temp)
                self._finalizer = weakref.finalize(self, _remove, self._path)
            await self._flush()

    def _seal(self) -> None:
        self._chunks.append(bytes(self._tail))
        self._tail.clear()

    async def _flush(self) -> None:
        if self._tail:
            self._seal()
        chunks, self._chunks = self._chunks, []
        self._held = 0
        await asyncio.to_thread(_write_and_free, self._file, chunks)

    async def _finish(self) -> None:
        if self._tail:
            self._seal()
        if self._file is None:
            return  # stays in memory until read() (see _frozen)
        if self._chunks:
            await self._flush()
        file, self._file = self._file, None
        await asyncio.to_thread(file.close)

    def _discard(self) -> None:
        """Close and delete the temporary file (blocking; run in a thread)."""
        file, self._file = self._file, None
        if file is not None:
            file.close()
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None
        if self._path is not None:
            self._removed = True


def _open_temp() -> tuple[Any, str]:
    fd, path = tempfile.mkstemp(prefix="simples-upload-")
    return os.fdopen(fd, "wb"), path


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _write_and_free(file: Any, chunks: list[bytes]) -> None:
    file.writelines(chunks)
    # The executor may hold its reference to `chunks` a moment after the await
    # returns; emptying it now keeps the next batch from doubling the memory.
    chunks.clear()


def _read_file(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read()


def _write_file(path: str | os.PathLike[str], pieces: list[bytes]) -> None:
    with open(path, "wb") as file:
        file.writelines(pieces)


# ---------------------------------------------------------------- decoding


class _Inflater:
    """Incremental gzip/deflate decoding that never produces more than one
    step of output at a time, so the caller's limit stops a zip bomb early."""

    __slots__ = ("_fed", "_gzip", "_head", "_pending", "_z")

    def __init__(self, gzip: bool) -> None:
        self._gzip = gzip
        self._z: Any = zlib.decompressobj(31) if gzip else None
        self._pending: bytes | None = None
        self._head = b""
        self._fed = False

    def feed(self, data: bytes) -> None:
        self._fed = True
        if self._z is None:
            # HTTP "deflate" should be zlib-wrapped, but some clients send raw
            # deflate; the two-byte zlib header tells them apart.
            data = self._head + data
            if len(data) < 2:
                self._head = data
                return
            self._head = b""
            cmf, flg = data[0], data[1]
            wrapped = cmf & 0x0F == 8 and (cmf << 8 | flg) % 31 == 0
            self._z = zlib.decompressobj(15 if wrapped else -15)
        self._pending = data

    def read(self) -> bytes:
        """Up to one step of output; ``b""`` once the fed input is used up."""
        while self._pending is not None:
            z = self._z
            try:
                out: bytes = z.decompress(self._pending, _INFLATE_STEP)
            except zlib.error as exc:
                raise HTTPError(400, "corrupt compressed body") from exc
            if z.eof:
                rest: bytes = z.unused_data
                if rest and self._gzip:
                    # Concatenated gzip members are one valid gzip stream.
                    self._z = zlib.decompressobj(31)
                    self._pending = rest
                elif rest:
                    raise HTTPError(400, "data after the end of the deflate stream")
                else:
                    self._pending = None
            else:
                self._pending = z.unconsumed_tail
                # A full step may leave output inside zlib even with no input left.
                if not self._pending and len(out) < _INFLATE_STEP:
                    self._pending = None
            if out:
                return out
        return b""

    def finish(self) -> None:
        if not self._fed:
            return
        if self._head or self._z is None or not self._z.eof:
            raise HTTPError(400, "truncated compressed body")


def _inflater(content_encoding: str | None) -> _Inflater | None:
    if not content_encoding:
        return None
    codings = [c.strip().lower() for c in content_encoding.split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return None
    if len(codings) > 1:
        raise HTTPError(415, "only one Content-Encoding is supported")
    coding = codings[0]
    if coding in ("gzip", "x-gzip"):
        return _Inflater(gzip=True)
    if coding == "deflate":
        return _Inflater(gzip=False)
    raise HTTPError(415, f"unsupported Content-Encoding: {coding}")


# ---------------------------------------------------------------- Body


class Body:
    """The request body. Await it (or ``buffer()``) for bytes; ``text()``,
    ``json()``, ``qs()``, ``form()`` parse it; ``async for`` streams it.

    ``limit`` on any method: ``None`` uses the one given to the constructor,
    else ``limits["body"]`` (``limits["upload_size"]`` for multipart forms);
    ``0`` means no limit. The body is received once: buffered reads are
    cached, a streamed or multipart-parsed body cannot be read again.
    """

    __slots__ = (
        "_cache",
        "_content_encoding",
        "_content_length",
        "_content_type",
        "_eof",
        "_error",
        "_form",
        "_inflater",
        "_limit",
        "_limits",
        "_max",
        "_raw",
        "_receive",
        "_size",
        "_state",
        "_uploads",
        "_watch",
        "schema",
    )

    def __init__(
        self,
        receive: Receive,
        *,
        content_type: str | None,
        content_encoding: str | None,
        content_length: int | None,
        limits: Mapping[str, int],
        limit: int | None = None,
    ) -> None:
        self._receive = receive
        self._content_type = content_type
        self._content_encoding = content_encoding
        self._content_length = content_length
        self._limits = limits
        self._limit = _check_limit(limit)
        self._state = _FRESH
        self._cache: bytes | None = None
        self._form: Form | None = None
        self._uploads: list[UploadedFile] = []
        self._error = ""
        self._inflater: _Inflater | None = None
        self._eof = False
        self._max = 0
        self._raw = 0
        self._size = 0
        self._watch: BodyDeadline | _NoDeadline | None = None
        #: The type ``json()`` validates into: the route's ``body=`` (docs/types.md).
        self.schema: Any = None

    def __await__(self) -> Generator[Any, None, bytes]:
        return self.buffer().__await__()

    @property
    def received(self) -> bool:
        """Whether any of the body was asked from the client (``receive()`` called).

        ``False`` also after a 413 or 415 raised before reading: an
        ``Expect: 100-continue`` client then never got its ``100 Continue``.
        """
        return self._state != _FRESH

    # -- reading --------------------------------------------------------------

    async def buffer(self, limit: int | None = None) -> bytes:
        """The whole body as bytes (decoded when Content-Encoding is gzip/deflate)."""
        if self._state == _CACHED:
            return self._cached(limit)
        self._start(self._resolve(limit, "body"))
        chunks: list[bytes] = []
        try:
            while (chunk := await self._pull()) is not None:
                chunks.append(chunk)
        except BaseException as exc:
            self._fail(exc)
            raise
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._cache = data
        self._state = _CACHED
        return data

    async def text(self, limit: int | None = None) -> str:
        """The body decoded with the Content-Type charset (UTF-8 by default)."""
        charset = self._charset()
        return _decode(await self.buffer(limit), charset, 415)

    async def json(self, limit: int | None = None, *, schema: Any = None) -> Any:
        """The body parsed as JSON (always UTF-8, RFC 8259), whatever the Content-Type.

        ``schema`` (else the route's ``body=``): a type to validate the body into;
        422 when it does not fit (docs/types.md)."""
        data = await self.buffer(limit)
        if not data:
            raise HTTPError(400, "empty JSON body")
        depth = self._limit_of("json_depth")
        if depth > 0 and _json_too_deep(data, depth):
            raise HTTPError(400, f"JSON nested deeper than {depth} levels")
        # -- typed bodies (docs/types.md)
        if schema is None:
            schema = self.schema
        if schema is not None:
            from simples.validation import decode_json

            return decode_json(data, schema)
        # --
        try:
            return _json_loads(data)
        except (ValueError, RecursionError) as exc:
            # ValueError covers JSONDecodeError, invalid UTF-8, the int-digits cap
            # and our own non-finite check.
            raise HTTPError(400, f"malformed JSON: {exc}") from None

    async def qs(self, limit: int | None = None) -> MultiDict[str]:
        """The body parsed as ``application/x-www-form-urlencoded``."""
        charset = self._charset()
        data = await self.buffer(limit)
        return _parse_urlencoded(data, self._limit_of("form_fields"), charset)

    async def form(self, limit: int | None = None) -> Form:
        """A urlencoded or multipart/form-data body as a :class:`Form`; other types are 415."""
        if self._form is not None:
            return self._form
        media, params = _parse_content_type(self._content_type)
        if media == "application/x-www-form-urlencoded":
            form = Form(fields=await self.qs(limit))
        elif media == "multipart/form-data":
            boundary = params.get("boundary", "")
            if not _BOUNDARY.fullmatch(boundary):
                raise HTTPError(400, "missing or invalid multipart boundary")
            form = await self._multipart(boundary, limit)
        else:
            raise HTTPError(
                415, "expected multipart/form-data or application/x-www-form-urlencoded"
            )
        self._form = form
        return form

    def stream(self, limit: int | None = None) -> AsyncIterator[bytes]:
        """Chunks as they arrive, never buffered; ``limit`` bounds the bytes received."""
        return _Stream(self, limit)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return _Stream(self, None)

    async def aclose(self) -> None:
        """Delete the temporary files of uploads. Safe to call more than once."""
        if self._watch is not None:
            self._watch.stop()
        # The exchange is over (it calls this when it ends): let go of the
        # server's receive. Held here it keeps the connection that holds this
        # body alive in a reference cycle until the garbage collector runs, and
        # granian goes on reading an unread body (after a 408 or a 413) for as
        # long as its receive is alive, whatever the Connection: close said.
        self._receive = _ended
        if not self._uploads:
            return
        # Cleared in place: a parse still running holds this same list.
        uploads = self._uploads[:]
        self._uploads.clear()
        on_disk = [upload for upload in uploads if upload._path is not None]
        if on_disk:
            await asyncio.to_thread(_discard_all, on_disk)

    # -- internals ------------------------------------------------------------

    def _charset(self) -> str:
        """The Content-Type charset, checked before any byte is received."""
        charset = _parse_content_type(self._content_type)[1].get("charset")
        if not charset:
            return "utf-8"
        _check_charset(charset, 415)
        return charset

    def _limit_of(self, key: str) -> int:
        value = self._limits.get(key)
        return DEFAULT_LIMITS[key] if value is None else value

    def _resolve(self, limit: int | None, key: str) -> int:
        limit = _check_limit(limit)
        if limit is None:
            limit = self._limit
        if limit is None:
            limit = self._limit_of(key)
        return limit

    def _cached(self, limit: int | None) -> bytes:
        data = self._cache
        assert data is not None
        _check_limit(limit)
        # Only an explicit limit is checked again: the body was already read
        # within the limit its first reader chose.
        if limit and len(data) > limit:
            raise HTTPError(413, f"request body over {limit} bytes")
        return data

    def _start(self, limit: int) -> None:
        state = self._state
        if state != _FRESH:
            if state == _DISCONNECTED:
                raise ClientDisconnect()
            if state == _READING:
                raise RuntimeError("the request body is being streamed: finish `async for` first")
            if state == _CONSUMED:
                raise RuntimeError(
                    "the request body was already consumed by streaming (`async for`) or a "
                    "multipart form(); it cannot be read again"
                )
            raise RuntimeError(f"the request body was only partly read ({self._error})")
        inflater = _inflater(self._content_encoding)
        declared = self._content_length
        if limit and declared is not None and declared > limit:
            raise HTTPError(413, f"request body over {limit} bytes")
        self._inflater = inflater
        self._max = limit
        self._state = _READING

    def _fail(self, exc: BaseException) -> None:
        if isinstance(exc, ClientDisconnect):
            self._state = _DISCONNECTED
        else:
            self._state = _FAILED
            self._error = f"{type(exc).__name__}: {exc}"

    async def _pull(self) -> bytes | None:
        """The next non-empty chunk of decoded body, or ``None`` at the end."""
        inflater = self._inflater
        while True:
            if inflater is not None:
                out = inflater.read()
                if out:
                    self._count(len(out))
                    return out
            if self._eof:
                if self._watch is not None:
                    self._watch.stop()
                if inflater is not None:
                    inflater.finish()
                return None
            watch = self._watch
            if watch is None:
                watch = self._watch = self._deadline()
            watch.resume()
            try:
                message = await self._receive()
            except asyncio.CancelledError:
                if watch.withdraw():
                    raise HTTPError(408, watch.reason) from None
                raise
            finally:
                watch.pause()
            kind = message["type"]
            if kind == "http.request":
                data: bytes = message.get("body", b"")
                if not message.get("more_body", False):
                    self._eof = True
                if not data:
                    continue
                watch.received += len(data)
                if inflater is None:
                    self._count(len(data))
                    return data
                # Compressed bytes count too: empty deflate blocks or gzip members
                # would otherwise let a client send unbounded input for no output.
                self._raw += len(data)
                if self._max and self._raw > self._max:
                    raise HTTPError(413, f"request body over {self._max} bytes")
                inflater.feed(data)
            elif kind == "http.disconnect":
                raise ClientDisconnect()
            else:
                raise RuntimeError(f"unexpected ASGI message while reading the body: {kind!r}")

    def _deadline(self) -> BodyDeadline | _NoDeadline:
        """The time bounds of the body (limits ``body_timeout``, ``body_min_rate``
        after ``body_grace``, ``body_deadline``). Only time spent waiting for
        the client counts: the deadline is paused while the handler works on a
        chunk."""
        idle = self._limit_of("body_timeout")
        rate = self._limit_of("body_min_rate")
        total = self._limit_of("body_deadline")
        if not (idle or rate or total):
            return _NoDeadline()
        return BodyDeadline(
            idle or math.inf, min_rate=rate, grace=self._limit_of("body_grace"), total=total
        )

    def _count(self, n: int) -> None:
        self._size += n
        if self._max and self._size > self._max:
            raise HTTPError(413, f"request body over {self._max} bytes")

    async def _multipart(self, boundary: str, limit: int | None) -> Form:
        parser_class, limit_error, parse_error = _multipart_parser()
        total = self._resolve(limit, "upload_size")
        if self._state == _CACHED:
            source: bytes | None = self._cached(limit)
        else:
            source = None
            self._start(total)
            self._state = _CONSUMED
        header_size = self._limit_of("part_header_size")
        parser = parser_class(
            boundary,
            max_header_size=header_size or math.inf,
            max_header_count=_MAX_PART_HEADERS,
            # latin-1 never fails, so a legacy filename survives to be decoded
            # leniently below while field names stay strict UTF-8.
            header_charset="latin-1",
        )
        builder = _FormBuilder(
            self._uploads,
            max_fields=self._limit_of("form_fields"),
            max_files=self._limit_of("form_files"),
            part_size=self._limit_of("part_size"),
            part_header_size=header_size,
            fields_size=self._limit_of("body"),
        )
        try:
            try:
                if source is not None:
                    await builder.feed(parser.parse(source))
                else:
                    while (chunk := await self._pull()) is not None:
                        await builder.feed(parser.parse(chunk))
                parser.close()
            except limit_error as exc:
                message = str(exc)
                raise HTTPError(400 if "count" in message else 413, message) from None
            except parse_error as exc:
                raise HTTPError(400, f"malformed multipart body: {exc}") from None
        except BaseException as exc:
            if source is None:
                self._fail(exc)
            await builder.abort()
            raise
        return builder.result()


class _NoDeadline:
    """Stands in for a deadline when every time bound of the body is 0 (wait forever)."""

    __slots__ = ("received",)
    reason = ""

    def __init__(self) -> None:
        self.received = 0

    def withdraw(self) -> bool:
        return False

    def resume(self) -> None:
        pass

    def pause(self) -> None:
        pass

    def stop(self) -> None:
        pass



def request_body(
    receive: Receive,
    headers: list[tuple[bytes, bytes]],
    limits: Mapping[str, int],
    limit: int | None = None,
) -> Body:
    """A :class:`Body` for an ASGI request: its three headers found in one pass
    over ``scope["headers"]`` (cheaper than three lookups on every POST)."""
    content_type = content_encoding = length = None
    for name, value in headers:
        # ASGI promises lowercase names; a server that breaks the promise
        # still gets its Content-* headers read.
        if name[:8] != b"content-":
            if name[:8].lower() != b"content-":
                continue
            name = name.lower()
        if name == b"content-type":
            if content_type is None:
                content_type = value.decode("latin-1")
        elif name == b"content-length":
            if length is None:
                length = value
        elif name == b"content-encoding":
            # Repeated headers are one comma-separated list (RFC 9110 §5.3).
            text = value.decode("latin-1")
            content_encoding = text if content_encoding is None else f"{content_encoding}, {text}"
    return Body(
        receive,
        content_type=content_type,
        content_encoding=content_encoding,
        content_length=int(length) if length and length.isdigit() else None,
        limits=limits,
        limit=limit,
    )


class _Stream:
    __slots__ = ("_body", "_limit", "_started")

    def __init__(self, body: Body, limit: int | None) -> None:
        self._body = body
        self._limit = _check_limit(limit)
        self._started = False

    def __aiter__(self) -> _Stream:
        return self

    async def __anext__(self) -> bytes:
        body = self._body
        if not self._started:
            self._started = True
            if body._state == _CACHED:
                data = body._cached(self._limit)
                # The body was buffered already: hand it over as one chunk.
                if data:
                    return data
                raise StopAsyncIteration
            # The claim happens on the first step, not in __aiter__, so that an
            # iterator created but never used leaves the body readable.
            body._start(body._resolve(self._limit, "body"))
        elif body._state != _READING:
            raise StopAsyncIteration
        try:
            chunk = await body._pull()
        except BaseException as exc:
            body._fail(exc)
            raise
        if chunk is None:
            body._state = _CONSUMED
            raise StopAsyncIteration
        return chunk


async def _ended() -> Message:
    return {"type": "http.disconnect"}


def _discard_all(uploads: list[UploadedFile]) -> None:
    for upload in uploads:
        upload._discard()


def _check_limit(limit: int | None) -> int | None:
    if limit is not None and limit < 0:
        raise ValueError(f"a body limit must be >= 0 (0 = no limit), got {limit}")
    return limit


# ---------------------------------------------------------------- multipart


def _multipart_parser() -> tuple[Any, type[Exception], type[Exception]]:
    """The ``multipart`` package's push parser and its two error classes."""
    try:
        multipart: Any = importlib.import_module("multipart")
    except ImportError:
        multipart = None
    # python-multipart ships a legacy ``multipart`` shim without this class.
    parser = getattr(multipart, "PushMultipartParser", None)
    if parser is None:
        raise RuntimeError(
            "multipart/form-data needs the `multipart` package: "
            "pip install 'simples-web[forms]' (or pip install multipart)"
        )
    limit_error: type[Exception] = multipart.ParserLimitReached
    parse_error: type[Exception] = multipart.MultipartError
    return parser, limit_error, parse_error


class _FormBuilder:
    """Turns parser events into fields and files, enforcing the per-part limits."""

    __slots__ = (
        "_current",
        "_field",
        "_field_charset",
        "_field_name",
        "_fields",
        "_fields_size",
        "_files",
        "_max_fields",
        "_max_files",
        "_n_fields",
        "_n_files",
        "_part_header_size",
        "_part_size",
        "_total_fields",
        "_uploads",
    )

    def __init__(
        self,
        uploads: list[UploadedFile],
        *,
        max_fields: int,
        max_files: int,
        part_size: int,
        part_header_size: int,
        fields_size: int,
    ) -> None:
        self._uploads = uploads
        self._max_fields = max_fields
        self._max_files = max_files
        self._part_size = part_size
        self._part_header_size = part_header_size
        self._fields_size = fields_size
        self._fields: list[tuple[str, str]] = []
        self._files: list[tuple[str, UploadedFile]] = []
        self._n_fields = 0
        self._n_files = 0
        self._total_fields = 0
        self._current: UploadedFile | None = None
        self._field: bytearray | None = None
        self._field_name = ""
        self._field_charset = "utf-8"

    async def feed(self, events: Any) -> None:
        for event in events:
            if event is None:
                await self._end_part()
            elif isinstance(event, bytes):
                if self._current is not None:
                    upload = self._current
                    if self._part_size and upload.size + len(event) > self._part_size:
                        raise HTTPError(413, f"uploaded file over {self._part_size} bytes")
                    await upload._write(event)
                else:
                    field = self._field
                    assert field is not None
                    self._total_fields += len(event)
                    if len(field) + len(event) > FIELD_SIZE:
                        raise HTTPError(413, f"form field over {FIELD_SIZE} bytes")
                    if self._fields_size and self._total_fields > self._fields_size:
                        raise HTTPError(413, f"form fields over {self._fields_size} bytes")
                    field += event
            else:
                self._start_part(event)

    def _start_part(self, segment: Any) -> None:
        headerlist: list[tuple[str, str]] = segment.headerlist
        if self._part_header_size and (
            sum(len(k) + len(v) + 4 for k, v in headerlist) > self._part_header_size
        ):
            raise HTTPError(413, f"multipart part headers over {self._part_header_size} bytes")
        name = _strip_brackets(_decode(_latin1_bytes(segment.name), "utf-8", 400))
        if not name:
            raise HTTPError(400, "multipart part without a name")
        disposition = next((v for k, v in headerlist if k == "Content-Disposition"), "")
        extended = _extended_filename(disposition)
        raw_filename = extended or None
        if raw_filename is None and segment.filename is not None:
            raw_filename = _latin1_bytes(segment.filename).decode("utf-8", "replace")
        if raw_filename is None and extended is not None:
            raw_filename = ""  # filename* alone, unusable: still a file
        if raw_filename is None:
            self._n_fields += 1
            if self._max_fields and self._n_fields > self._max_fields:
                raise HTTPError(400, f"more than {self._max_fields} form fields")
            self._field = bytearray()
            self._field_name = name
            self._field_charset = segment.charset or "utf-8"
            self._current = None
            return
        self._n_files += 1
        if self._max_files and self._n_files > self._max_files:
            raise HTTPError(400, f"more than {self._max_files} uploaded files")
        headers: dict[str, str] = {}
        for key, value in headerlist:
            headers.setdefault(key.lower(), _latin1_bytes(value).decode("utf-8", "replace"))
        content_type = headers.get("content-type", "").strip() or "application/octet-stream"
        upload = UploadedFile(
            name, _safe_filename(raw_filename), raw_filename, content_type, headers
        )
        self._uploads.append(upload)
        self._current = upload
        self._field = None

    async def _end_part(self) -> None:
        upload = self._current
        if upload is not None:
            await upload._finish()
            self._current = None
            # An <input type=file> left empty arrives with filename="" and no content.
            if upload.raw_filename or upload.size:
                self._files.append((upload.name, upload))
            return
        field = self._field
        assert field is not None
        self._field = None
        self._fields.append((self._field_name, _decode(bytes(field), self._field_charset, 400)))

    async def abort(self) -> None:
        uploads = [u for u in self._uploads if u._file is not None or u._path is not None]
        if uploads:
            await asyncio.to_thread(_discard_all, uploads)

    def result(self) -> Form:
        return Form(MultiDict(self._fields), MultiDict(self._files))


def _latin1_bytes(value: str) -> bytes:
    return value.encode("latin-1", "replace")


_EXT_FILENAME = re.compile(r";\s*filename\*\s*=\s*\"?([^\";\s]*)", re.IGNORECASE)
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')


def _extended_filename(disposition: str) -> str | None:
    """RFC 5987 ``filename*=charset'lang'percent-encoded``, preferred over
    ``filename`` (RFC 6266 §4.3). ``None`` when absent, ``""`` when present but
    unusable (unknown charset, bad syntax)."""
    if "filename*" not in disposition.lower():
        return None
    # Quoted values are blanked first so that a `name="…; filename*=…"` is no match.
    match = _EXT_FILENAME.search(_QUOTED.sub('""', disposition))
    if match is None:
        return None
    charset, sep, rest = match.group(1).partition("'")
    _, sep2, encoded = rest.partition("'")
    if not (sep and sep2):
        return ""
    try:
        _check_charset(charset or "utf-8", 400)
    except HTTPError:
        return ""
    return unquote_to_bytes(encoded).decode(charset or "utf-8", "replace")


_UNSAFE_FILENAME_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def _safe_filename(raw: str) -> str:
    # Both separators, whatever the client's OS, so "..\\..\\x" cannot escape.
    last = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_FILENAME_CHARS.sub("", last).strip()
    return "" if name in (".", "..") else name


def _strip_brackets(name: str) -> str:
    # The same rule as connection.query: `a[]=1&a[]=2` is the key `a`.
    return name[:-2] if name.endswith("[]") else name


# Printable ASCII, 1-200 chars, not ending in a space (RFC 2046 allows 70;
# some clients send longer ones).
_BOUNDARY = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]{0,198}[\x21-\x7e])?")


# ---------------------------------------------------------------- urlencoded


def _parse_urlencoded(data: bytes, max_fields: int, charset: str) -> MultiDict[str]:
    if not data:
        return MultiDict()
    if max_fields:
        # maxsplit stops the work at the limit whatever the body holds.
        pieces = data.split(b"&", max_fields)
        if len(pieces) > max_fields:
            if pieces[-1]:
                raise HTTPError(400, f"more than {max_fields} form fields")
            pieces.pop()
    else:
        pieces = data.split(b"&")
    result: MultiDict[str] = MultiDict()
    for piece in pieces:
        if not piece:
            continue
        name, _, value = piece.partition(b"=")
        key = _strip_brackets(_unquote_plus(name, charset))
        result.add(key, _unquote_plus(value, charset))
    return result


def _unquote_plus(raw: bytes, charset: str) -> str:
    if b"+" in raw:
        raw = raw.replace(b"+", b" ")
    if b"%" in raw:
        raw = unquote_to_bytes(raw)
    return _decode(raw, charset, 400)


# ---------------------------------------------------------------- helpers


def _parse_content_type(value: str | None) -> tuple[str, dict[str, str]]:
    """``type/subtype; key=value; key="quoted"`` → (lowercased type, parameters)."""
    if not value:
        return "", {}
    media, _, rest = value.partition(";")
    params: dict[str, str] = {}
    while rest:
        item, _, rest = rest.partition(";")
        key, eq, val = item.partition("=")
        key = key.strip().lower()
        if not eq or not key:
            continue
        val = val.strip()
        if len(val) >= 2 and val[0] == val[-1] == '"':
            val = val[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        elif val.startswith('"'):
            # A quoted value holding ";" was cut at it: rejoin up to the closing quote.
            whole = val + ";" + rest
            end = whole.find('"', 1)
            if end > 0:
                val, rest = whole[1:end], whole[end + 1 :].partition(";")[2]
        params.setdefault(key, val)
    return media.strip().lower(), params


def _check_charset(charset: str, status: int) -> None:
    try:
        info = codecs.lookup(charset)
    except LookupError:
        raise HTTPError(status, f"unknown charset: {charset}") from None
    # base64, rot13 and friends are codecs too, but not text encodings.
    if not getattr(info, "_is_text_encoding", True):
        raise HTTPError(status, f"unknown charset: {charset}")


def _decode(data: bytes, charset: str, unknown_status: int) -> str:
    if charset in ("utf-8", "utf8", "UTF-8"):
        try:
            return data.decode()
        except UnicodeDecodeError:
            raise HTTPError(400, "body is not valid UTF-8") from None
    _check_charset(charset, unknown_status)
    try:
        return data.decode(charset)
    except UnicodeDecodeError:
        raise HTTPError(400, f"body is not valid {charset}") from None
    except LookupError:
        raise HTTPError(unknown_status, f"unknown charset: {charset}") from None


# ---------------------------------------------------------------- JSON

_KEEP_JSON_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
_CURLY_TO_SQUARE = bytes.maketrans(b"{}", b"[]")


def _json_too_deep(data: bytes, max_depth: int) -> bool:
    """Whether arrays/objects nest deeper than ``max_depth``, in linear time.

    Strings are removed first so brackets inside them do not count: escaped
    backslashes, then escaped quotes, leave every remaining quote a string
    delimiter. The result is exact for valid JSON; for invalid JSON it may
    be anything, and the parser rejects that input anyway. Every step is a
    C-level bytes operation except the final walk over what is left.
    """
    if data.count(b"[") + data.count(b"{") <= max_depth:
        return False
    skeleton = data
    if b"\\" in skeleton:
        skeleton = skeleton.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = skeleton.translate(None, _KEEP_JSON_STRUCTURE)
    # Quotes now alternate open/close, so two adjacent ones are an empty
    # string or the seam of two strings: dropping them changes nothing, and
    # it removes almost every string cheaply.
    skeleton = skeleton.replace(b'""', b"")
    if b'"' in skeleton:
        skeleton = b"".join(skeleton.split(b'"')[::2])
    skeleton = skeleton.translate(_CURLY_TO_SQUARE)
    # Each pass removes every innermost pair, lowering the depth by exactly
    # one: arrays of flat objects shrink to almost nothing before the walk.
    passes = min(max_depth, 4)
    for _ in range(passes):
        skeleton = skeleton.replace(b"[]", b"")
    allowed = max_depth - passes
    depth = 0
    for byte in skeleton:
        if byte == 0x5B:
            depth += 1
            if depth > allowed:
                return True
        elif byte == 0x5D:
            depth -= 1
    return False


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:20]}")
    return value


def _loads_stdlib(data: bytes) -> Any:
    # Decoding first keeps JSON UTF-8 only (json.loads(bytes) would guess UTF-16/32).
    return _stdlib_json.loads(
        data.decode(), parse_constant=_reject_constant, parse_float=_finite_float
    )


_json_loads: Callable[[bytes], Any]
try:
    import orjson

    # orjson already rejects NaN/Infinity, overflowing numbers and invalid UTF-8.
    _json_loads = orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    _json_loads = _loads_stdlib

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
import math
import os
import re
import shutil
import tempfile
import types
import weakref
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping
from typing import Any, Final
from urllib.parse import unquote_to_bytes

from simples.errors import HTTPError
from simples.http import json as strict_json
from simples.http.mediatypes import parse_content_type
from simples.http.multidict import MultiDict
from simples.http.query import QueryLimitError, parse_urlencoded
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
# Input slices start this small after each gzip member and double up to a step.
_SLICE_MIN: Final = 512
# One read() of the inflater stops after this many zlib calls or input bytes
# without output, so a body of empty gzip members cannot hold the event loop.
_INFLATE_CALLS: Final = 64
_INFLATE_INPUT: Final = 64 << 10
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


class _Spool:
    """Where one uploaded file's bytes go while the form is parsed: memory, then a
    temporary file past :data:`SPOOL_SIZE`. Written only by the form parser, read
    through its ``UploadedFile``."""

    __slots__ = (
        "__weakref__",
        "chunks",
        "data",
        "file",
        "finalizer",
        "held",
        "path",
        "removed",
        "size",
        "tail",
    )

    def __init__(self) -> None:
        self.size = 0
        # The content not yet on disk: the parser's pieces as they came (no
        # copy), small pieces gathered in ``tail`` first (see write).
        self.chunks: list[bytes] = []
        self.tail = bytearray()
        self.held = 0
        self.data: bytes | None = None
        self.file: Any = None
        self.path: str | None = None
        self.finalizer: weakref.finalize[..., Any] | None = None
        self.removed = False

    def frozen(self) -> bytes:
        # Joined on the first read, not when the part ends: a handler that only
        # looks at .size or save()s the file never pays for a copy (nor does a
        # file that arrived in one piece). Joined once, so every read() returns
        # the same bytes object.
        data = self.data
        if data is None:
            chunks = self.chunks
            data = self.data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            self.chunks = []
        return data

    async def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self.held += len(chunk)
        if len(chunk) >= _SMALL_PIECE:
            if self.tail:
                self.seal()
            # Kept as it is: no copy, and no large buffer growing (a fresh
            # megabyte of memory costs page faults on every upload).
            self.chunks.append(chunk)
        else:
            # A body sent a few bytes at a time must not become a million tiny
            # objects (each about 40 bytes of overhead): gather small pieces.
            tail = self.tail
            tail += chunk
            if len(tail) >= _SMALL_PIECE:
                self.seal()
        # Memory per file stays near SPOOL_SIZE: past it, the pieces go to disk
        # in one threaded write instead of one thread hop per small chunk.
        if self.held > SPOOL_SIZE:
            if self.file is None:
                self.file, self.path = await asyncio.to_thread(_open_temp)
                self.finalizer = weakref.finalize(self, _remove, self.path)
            await self.flush()

    def seal(self) -> None:
        self.chunks.append(bytes(self.tail))
        self.tail.clear()

    async def flush(self) -> None:
        if self.tail:
            self.seal()
        chunks, self.chunks = self.chunks, []
        self.held = 0
        await asyncio.to_thread(_write_and_free, self.file, chunks)

    async def finish(self) -> None:
        if self.tail:
            self.seal()
        if self.file is None:
            return  # stays in memory until read() (see frozen)
        if self.chunks:
            await self.flush()
        file, self.file = self.file, None
        await asyncio.to_thread(file.close)

    @property
    def on_disk(self) -> bool:
        return self.file is not None or self.path is not None

    def discard(self) -> None:
        """Close and delete the temporary file (blocking; run in a thread)."""
        file, self.file = self.file, None
        if file is not None:
            file.close()
        if self.finalizer is not None:
            self.finalizer()
            self.finalizer = None
        if self.path is not None:
            self.removed = True


class UploadedFile:
    """One file part of a multipart form.

    Small files stay in memory; past :data:`SPOOL_SIZE` bytes the content is
    in a temporary file (``path``) that the connection removes when the
    exchange ends, so ``save()`` what you want to keep before returning.
    """

    __slots__ = (
        "__weakref__",
        "_spool",
        "content_type",
        "filename",
        "headers",
        "name",
        "raw_filename",
    )

    def __init__(
        self,
        name: str,
        filename: str,
        raw_filename: str,
        content_type: str,
        headers: dict[str, str],
        spool: _Spool | None = None,
    ) -> None:
        self.name = name
        #: The last path segment of what the client sent, without control characters.
        self.filename = filename
        #: The file name exactly as the client sent it (decoded): never use it as a path.
        self.raw_filename = raw_filename
        self.content_type = content_type
        self.headers = headers
        self._spool = spool if spool is not None else _Spool()

    @property
    def size(self) -> int:
        return self._spool.size

    @property
    def path(self) -> str | None:
        """The temporary file holding the content, or ``None`` while in memory."""
        return self._spool.path

    @property
    def in_memory(self) -> bool:
        return self._spool.path is None

    async def read(self) -> bytes:
        """The whole content (a big upload is read from disk off the event loop)."""
        spool = self._spool
        if spool.path is None:
            return spool.frozen()
        self._check_present()
        return await asyncio.to_thread(_read_file, spool.path)

    async def save(self, path: str | os.PathLike[str]) -> None:
        """Write the content to ``path`` (file I/O runs in a worker thread)."""
        spool = self._spool
        if spool.path is None:
            # The pieces are final once the part ended: written as they are.
            pieces = [spool.data] if spool.data is not None else spool.chunks[:]
            await asyncio.to_thread(_write_file, path, pieces)
            return
        self._check_present()
        await asyncio.to_thread(shutil.copyfile, spool.path, path)

    def __repr__(self) -> str:
        where = "memory" if self._spool.path is None else self._spool.path
        return (
            f"UploadedFile(name={self.name!r}, filename={self.filename!r}, "
            f"content_type={self.content_type!r}, size={self.size}, in={where!r})"
        )

    def _check_present(self) -> None:
        if self._spool.removed:
            raise RuntimeError(
                "this upload's temporary file was removed when the request ended; "
                "save() or read() it inside the handler"
            )


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
    step of output at a time, so the caller's limit stops a zip bomb early.

    The fed input is kept once, with an offset into it: zlib gets bounded
    slices of a memoryview, so the copies it makes (``unused_data`` at the end
    of each gzip member, ``unconsumed_tail`` when the output step is full) are
    at most one slice long. Thousands of empty gzip members in one chunk then
    cost linear time, not a copy of the rest of the chunk per member. And
    :meth:`read` gives up after a bounded amount of work (``b""`` while
    :attr:`hungry` is false), so the caller can let the event loop run.
    """

    __slots__ = ("_buf", "_drain", "_fed", "_gzip", "_head", "_pos", "_slice", "_z")

    def __init__(self, gzip: bool) -> None:
        self._gzip = gzip
        self._z: Any = zlib.decompressobj(31) if gzip else None
        self._buf = memoryview(b"")
        self._pos = 0
        self._slice = _SLICE_MIN
        # zlib may hold output after a full step even with all input consumed.
        self._drain = False
        self._head = b""
        self._fed = False

    @property
    def hungry(self) -> bool:
        """Whether the fed input is used up: only more input gives more output."""
        return self._pos >= len(self._buf) and not self._drain

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
        if self._pos < len(self._buf):
            # Fed before the previous input was used up (the body reader never does).
            data = bytes(self._buf[self._pos :]) + data
        self._buf = memoryview(data)
        self._pos = 0

    def read(self) -> bytes:
        """Up to one step of output; ``b""`` when the fed input is used up
        (:attr:`hungry`) or when a bounded amount of work gave no output (call
        again, after letting other tasks run)."""
        buf = self._buf
        calls = _INFLATE_CALLS
        budget = _INFLATE_INPUT
        while calls > 0 and budget > 0:
            pos = self._pos
            if pos >= len(buf) and not self._drain:
                return b""
            z = self._z
            if z.eof:
                if not self._gzip:
                    raise HTTPError(400, "data after the end of the deflate stream")
                # Concatenated gzip members are one valid gzip stream.
                z = self._z = zlib.decompressobj(31)
                self._slice = _SLICE_MIN
            piece = buf[pos : pos + self._slice]
            try:
                out: bytes = z.decompress(piece, _INFLATE_STEP)
            except zlib.error as exc:
                raise HTTPError(400, "corrupt compressed body") from exc
            left = len(z.unused_data) if z.eof else len(z.unconsumed_tail)
            self._pos = pos + len(piece) - left
            calls -= 1
            budget -= len(piece) - left
            self._drain = not z.eof and len(out) == _INFLATE_STEP
            if not left and self._slice < _INFLATE_STEP:
                # A long member: fewer, bigger slices.
                self._slice *= 2
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


# The last limits found complete: a router's settings.limits, the same mapping
# for every request (settings are replaced, not changed), so one identity test
# stands for comparing every key on each body.
_complete_limits: Mapping[str, int] | None = None


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
        "_spools",
        "_state",
        "_watch",
        "_wire",
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
        # every key present, so that a limit is one subscript away
        global _complete_limits
        if limits is not _complete_limits:
            if limits.keys() >= LIMITS.keys():
                _complete_limits = limits
            else:
                limits = {**LIMITS, **limits}
        self._limits = limits
        self._limit = limit if limit is None else _check_limit(limit)
        self._state = _FRESH
        self._cache: bytes | None = None
        self._form: Form | None = None
        self._spools: list[_Spool] = []
        self._error = ""
        self._inflater: _Inflater | None = None
        self._eof = False
        self._max = 0
        self._raw = 0
        self._size = 0
        self._watch: BodyDeadline | _NoDeadline | None = None
        self._wire = 0  # body bytes off the wire (compressed ones as sent)
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
                if self._eof and self._inflater is None:
                    # The last message came: no need to step _pull once more
                    # to learn it (a body in one message is one step).
                    if self._watch is not None:
                        self._watch.stop()
                    break
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
        """The body parsed as JSON (always UTF-8, RFC 8259).

        415 before anything is received when the Content-Type is one a form on
        any site can send without a CORS preflight (``text/plain``, urlencoded,
        multipart): reading those as JSON would let another site post JSON to a
        cookie-authenticated endpoint. Any other type, or none, is read.

        ``schema`` (else the route's ``body=``): a type to validate the body into;
        422 when it does not fit (docs/types.md)."""
        content_type = self._content_type
        if content_type != "application/json":  # the common case needs no parsing
            media = parse_content_type(content_type)[0]
            if media in _FORM_TYPES:
                raise HTTPError(
                    415,
                    f"JSON body sent as {media}: send it with Content-Type: application/json",
                )
        data = await self.buffer(limit)
        if not data:
            raise HTTPError(400, "empty JSON body")
        depth = self._limits["json_depth"]
        if depth > 0 and strict_json.too_deep(data, depth):
            raise HTTPError(400, f"JSON nested deeper than {depth} levels")
        # -- typed bodies (docs/types.md)
        if schema is None:
            schema = self.schema
        if schema is not None:
            from simples.validation import decode_json

            return decode_json(data, schema)
        # --
        try:
            return strict_json.loads(data)
        except (ValueError, RecursionError) as exc:
            # ValueError covers JSONDecodeError, invalid UTF-8, the int-digits cap
            # and our own non-finite check.
            raise HTTPError(400, f"malformed JSON: {exc}") from None

    async def qs(self, limit: int | None = None) -> MultiDict[str]:
        """The body parsed as ``application/x-www-form-urlencoded``."""
        charset = self._charset()
        data = await self.buffer(limit)
        try:
            return parse_urlencoded(data, self._limits["form_fields"], charset)
        except QueryLimitError as exc:
            raise HTTPError(400, str(exc)) from None
        except UnicodeDecodeError:
            raise HTTPError(400, f"body is not valid {charset}") from None

    async def form(self, limit: int | None = None) -> Form:
        """A urlencoded or multipart/form-data body as a :class:`Form`; other types are 415."""
        if self._form is not None:
            return self._form
        media, params = parse_content_type(self._content_type)
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
        return _Stream(self._stream_step, limit)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return _Stream(self._stream_step, None)

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
        if not self._spools:
            return
        # Cleared in place: a parse still running holds this same list.
        spools = self._spools[:]
        self._spools.clear()
        on_disk = [spool for spool in spools if spool.path is not None]
        if on_disk:
            await asyncio.to_thread(_discard_all, on_disk)

    # -- internals ------------------------------------------------------------

    async def _stream_step(self, first: bool, limit: int | None) -> bytes | None:
        """The next chunk for ``async for``; ``None`` at the end."""
        if first:
            if self._state == _CACHED:
                # The body was buffered already: hand it over as one chunk.
                return self._cached(limit) or None
            # The claim happens on the first step, not in __aiter__, so that an
            # iterator created but never used leaves the body readable.
            self._start(self._resolve(limit, "body"))
        elif self._state != _READING:
            return None
        try:
            chunk = await self._pull()
        except BaseException as exc:
            self._fail(exc)
            raise
        if chunk is None:
            self._state = _CONSUMED
        return chunk

    def _charset(self) -> str:
        """The Content-Type charset, checked before any byte is received."""
        charset = parse_content_type(self._content_type)[1].get("charset")
        if not charset:
            return "utf-8"
        _check_charset(charset, 415)
        return charset

    def _resolve(self, limit: int | None, key: str) -> int:
        if limit is None:
            limit = self._limit
        else:
            _check_limit(limit)
        if limit is None:
            limit = self._limits[key]
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
        encoding = self._content_encoding
        inflater = _inflater(encoding) if encoding else None
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
                if not inflater.hungry:
                    # A bounded amount of inflating gave nothing yet: let the
                    # other tasks run before going on.
                    await asyncio.sleep(0)
                    continue
            if self._eof:
                if self._watch is not None:
                    self._watch.stop()
                if inflater is not None:
                    inflater.finish()
                return None
            watch = self._watch
            try:
                if watch is None:
                    # No deadline until a receive has to wait: a small body
                    # usually came with the head and is in the server's
                    # buffer already, and then no timer is armed at all.
                    message = await _arm_if_waiting(self._receive, self._arm)
                else:
                    watch.resume()
                    message = await self._receive()
            except asyncio.CancelledError:
                watch = self._watch
                if watch is not None and watch.withdraw():
                    raise HTTPError(408, watch.reason) from None
                raise
            finally:
                watch = self._watch
                if watch is not None:
                    watch.pause()
            kind = message["type"]
            if kind == "http.request":
                data: bytes = message.get("body", b"")
                if not message.get("more_body", False):
                    self._eof = True
                if not data:
                    continue
                wire = self._wire = self._wire + len(data)
                if wire == self._content_length:
                    # The body ends where Content-Length says (RFC 9112 §6.3),
                    # and the server holds a request to it. Granian hands a
                    # whole body over with more_body=True and its end in one
                    # more, empty message: waiting for that one costs a trip
                    # through the event loop per request.
                    self._eof = True
                if watch is not None:
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

    def _arm(self) -> None:
        """A receive has to wait: the deadline starts now, waiting."""
        watch = self._watch = self._deadline()
        watch.received = self._wire
        watch.resume()

    def _deadline(self) -> BodyDeadline | _NoDeadline:
        """The time bounds of the body (limits ``body_timeout``, ``body_min_rate``
        after ``body_grace``, ``body_deadline``). Only time spent waiting for
        the client counts: the deadline is paused while the handler works on a
        chunk."""
        idle = self._limits["body_timeout"]
        rate = self._limits["body_min_rate"]
        total = self._limits["body_deadline"]
        if not (idle or rate or total):
            return _NoDeadline()
        return BodyDeadline(
            idle or math.inf, min_rate=rate, grace=self._limits["body_grace"], total=total
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
        header_size = self._limits["part_header_size"]
        parser = parser_class(
            boundary,
            max_header_size=header_size or math.inf,
            max_header_count=_MAX_PART_HEADERS,
            # latin-1 never fails, so a legacy filename survives to be decoded
            # leniently below while field names stay strict UTF-8.
            header_charset="latin-1",
        )
        builder = _FormBuilder(
            self._spools,
            max_fields=self._limits["form_fields"],
            max_files=self._limits["form_files"],
            part_size=self._limits["part_size"],
            part_header_size=header_size,
            fields_size=self._limits["body"],
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


@types.coroutine
def _arm_if_waiting(receive: Receive, arm: Callable[[], None]) -> Generator[Any, Any, Message]:
    """Awaits ``receive()``, calling ``arm()`` before the first time it has to
    wait: the receive is stepped once by hand, and a message that is there
    already comes back without any timer work. Otherwise what it waits for
    (a future) goes up to the task as ``await`` would pass it, and whatever
    the task sends or throws (a cancellation) goes down to the receive. A
    generator-based coroutine (one frame, where an awaitable class costs its
    constructor and its ``__await__``)."""
    inner = receive().__await__()
    try:
        signal = inner.send(None)
    except StopIteration as done:
        message: Message = done.value
        return message
    arm()
    while True:
        try:
            sent = yield signal
        except BaseException as exc:  # handed to the receive as is (a cancellation)
            try:
                signal = inner.throw(exc)
            except StopIteration as done:
                message = done.value
                return message
        else:
            try:
                signal = inner.send(sent)
            except StopIteration as done:
                message = done.value
                return message


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



# The first byte of a Content-* name, in either case.
_CONTENT_INITIAL: Final = (b"c", b"C")
_CONTENT_FIELDS: Final = frozenset({b"content-type", b"content-length", b"content-encoding"})


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
            # (the first byte compared first: no lower() for the other names)
            if name[:1] not in _CONTENT_INITIAL or name[:8].lower() != b"content-":
                continue
            name = name.lower()
        elif name not in _CONTENT_FIELDS:
            name = name.lower()  # "content-Type"
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
    """``async for chunk in body``: one pass over the body, stepped by the Body."""

    __slots__ = ("_limit", "_started", "_step")

    def __init__(
        self, step: Callable[[bool, int | None], Awaitable[bytes | None]], limit: int | None
    ) -> None:
        self._step = step
        self._limit = _check_limit(limit)
        self._started = False

    def __aiter__(self) -> _Stream:
        return self

    async def __anext__(self) -> bytes:
        first = not self._started
        self._started = True
        chunk = await self._step(first, self._limit)
        if chunk is None:
            raise StopAsyncIteration
        return chunk


async def _ended() -> Message:
    return {"type": "http.disconnect"}


def _discard_all(spools: list[_Spool]) -> None:
    for spool in spools:
        spool.discard()


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
        "_spool",
        "_spools",
        "_total_fields",
        "_upload",
    )

    def __init__(
        self,
        spools: list[_Spool],
        *,
        max_fields: int,
        max_files: int,
        part_size: int,
        part_header_size: int,
        fields_size: int,
    ) -> None:
        self._spools = spools
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
        # The file part being received, and where its bytes go.
        self._upload: UploadedFile | None = None
        self._spool: _Spool | None = None
        self._field: bytearray | None = None
        self._field_name = ""
        self._field_charset = "utf-8"

    async def feed(self, events: Any) -> None:
        for event in events:
            if event is None:
                await self._end_part()
            elif isinstance(event, bytes):
                spool = self._spool
                if spool is not None:
                    if self._part_size and spool.size + len(event) > self._part_size:
                        raise HTTPError(413, f"uploaded file over {self._part_size} bytes")
                    await spool.write(event)
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
            self._upload = self._spool = None
            return
        self._n_files += 1
        if self._max_files and self._n_files > self._max_files:
            raise HTTPError(400, f"more than {self._max_files} uploaded files")
        headers: dict[str, str] = {}
        for key, value in headerlist:
            headers.setdefault(key.lower(), _latin1_bytes(value).decode("utf-8", "replace"))
        content_type = headers.get("content-type", "").strip() or "application/octet-stream"
        spool = _Spool()
        self._upload = UploadedFile(
            name, _safe_filename(raw_filename), raw_filename, content_type, headers, spool
        )
        self._spools.append(spool)
        self._spool = spool
        self._field = None

    async def _end_part(self) -> None:
        upload, spool = self._upload, self._spool
        if upload is not None and spool is not None:
            await spool.finish()
            self._upload = self._spool = None
            # An <input type=file> left empty arrives with filename="" and no content.
            if upload.raw_filename or upload.size:
                self._files.append((upload.name, upload))
            return
        field = self._field
        assert field is not None
        self._field = None
        self._fields.append((self._field_name, _decode(bytes(field), self._field_charset, 400)))

    async def abort(self) -> None:
        spools = [spool for spool in self._spools if spool.on_disk]
        if spools:
            await asyncio.to_thread(_discard_all, spools)

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


# ---------------------------------------------------------------- helpers


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


# The CORS-safelisted request Content-Types (Fetch standard): what a cross-site
# <form> or a no-preflight fetch() can send with the user's cookies.
_FORM_TYPES: Final = frozenset(
    {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"}
)

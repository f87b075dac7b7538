"""Files: ``connection.drain()`` and static folders share one response pipeline.

A file answer carries Content-Type, Content-Length, Last-Modified, a strong ETag
and Accept-Ranges; it answers conditional requests (RFC 9110 §13.2.2 order) and
Range requests (206, ``multipart/byteranges``, 416). Bodies are streamed in
64 KiB chunks read in a worker thread, the next chunk read while the previous
one is sent; small files are read whole in the same thread hop that opens them,
and a server offering ``http.response.pathsend`` (granian) sends files itself.

Static folders add the URL-to-file mapping, which is where the danger lies: the
path (decoded once, by the ASGI server, as routing saw it) is split into
segments that are each checked, joined under the root, resolved with
``realpath`` and checked for containment with ``commonpath``; only regular files
are opened, and the opened file is checked to be the one that was resolved.
"""

from __future__ import annotations

import asyncio
import errno
import inspect
import io
import logging
import os
import re
import secrets
import stat
import time
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ClassVar, Final
from urllib.parse import quote

from .feature import Feature
from .http.cache import cache_control
from .http.conditional import evaluate, if_range, make_etag
from .http.dates import format_http_date, parse_http_date
from .http.headers import validate_header_value
from .http.mediatypes import DEFAULT_TYPE, is_compressible, resolve_type
from .http.qvalues import choose_encoding
from .http.ranges import content_range, multipart_heads, parse_range, unsatisfied_range
from .response import PreparedAnswer

if TYPE_CHECKING:
    from .connection import HTTPConnection
    from .response import Encoder
    from .router import Router

logger = logging.getLogger("simples")

CHUNK: Final = 64 << 10
# Longer request paths are not file names anyone serves; refusing them early keeps
# ENAMETOOLONG (and the work before it) away.
MAX_PATH: Final = 4096
MAX_SEGMENT: Final = 255
IMMUTABLE: Final = "public, max-age=31536000, immutable"
REVALIDATE: Final = "no-cache"
# Sidecar files, best first when the client rates codings alike.
SIDECARS: Final = (("br", ".br"), ("zstd", ".zst"), ("gzip", ".gz"))
PATHSEND: Final = "http.response.pathsend"
# The memory cache of static folders: files of at most this size are kept.
CACHE_FILE_MAX: Final = CHUNK
# A file (or folder) changed less than this long ago is not cached yet: file
# times have a coarse clock, so a change within the same tick as the caching
# could keep the same stat; past this margin any later write moves st_mtime.
_SETTLED_NS: Final = 2_000_000_000

_WINDOWS = os.name == "nt"
# NUL and other control characters, backslashes (a separator on Windows, and "/\"
# is "//" to browsers), ":" (drive letters, NTFS streams) and U+FFFD, which the
# ASGI server leaves where the path had bytes that are not UTF-8 (overlong forms).
_REFUSED = re.compile("[\x00-\x1f\x7f\\\\:\ufffd]")
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", *(f"COM{n}" for n in range(10)), *(f"LPT{n}" for n in range(10))}
)
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)  # opening a FIFO must not wait for a writer
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_BINARY", 0)
)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
# A content hash in a file name: 8 to 64 letters and digits, with at least one of
# each, after a "." or "-" (app.3f2a9c1e.js, index-BfV2rk_5.js, main.a1b2c3d4.chunk.js).
_FINGERPRINT = re.compile(r"[.-]([A-Za-z0-9_]{8,64})\.", re.ASCII)
_HAS_DIGIT = re.compile(r"[0-9]")
_HAS_LETTER = re.compile(r"[A-Za-z]")
_NOT_FOUND_ERRNOS = frozenset(
    {
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.ELOOP,
        errno.ENAMETOOLONG,
        errno.ENXIO,
        errno.EINVAL,
        errno.ENODEV,
    }
)


class NotRegularFile(OSError):
    """The path names a directory, FIFO, socket or device: never served."""


class _Truncated(OSError):
    """The file shrank while it was being sent: the promised length cannot be kept."""


# ----------------------------------------------------------------- worker pool

_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    # Our own pool rather than the loop's default one, because a job's
    # concurrent future is needed to close a file only once its read is over.
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(
            max_workers=min(32, (os.cpu_count() or 1) + 4), thread_name_prefix="simples-files"
        )
    return _pool


async def _offload(
    cleanup: Callable[[Any], None] | None, function: Callable[..., Any], *args: Any
) -> Any:
    """Run ``function`` in the pool; if the caller is cancelled meanwhile, hand
    the result to ``cleanup`` once the thread is done (so no descriptor leaks)."""
    future = _executor().submit(function, *args)
    try:
        return await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        if cleanup is not None:
            future.add_done_callback(lambda done: _cleanup_result(done, cleanup))
        raise


def _cleanup_result(done: Future[Any], cleanup: Callable[[Any], None]) -> None:
    if not done.cancelled() and done.exception() is None:
        cleanup(done.result())


# ------------------------------------------------------------------ file info


class FileInfo:
    """An opened (or, for small files, already read) regular file."""

    __slots__ = (
        "encoding",
        "fd",
        "folder",
        "head",
        "ident",
        "media",
        "mtime",
        "mtime_ns",
        "name",
        "path",
        "size",
        "validators",
        "vary",
    )

    def __init__(self, path: str, fd: int | None, st: os.stat_result, name: str) -> None:
        self.path = path
        self.fd = fd
        #: What the opened file's stat said: (device, inode, mtime_ns, size).
        self.ident = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
        #: The folder of a static file whose sidecars were looked for, and its
        #: stat (device, inode, mtime_ns) taken before that: a sidecar added
        #: or removed changes it.
        self.folder: tuple[str, tuple[int, int, int]] | None = None
        self.size = st.st_size
        self.mtime = st.st_mtime
        self.mtime_ns = st.st_mtime_ns
        self.name = name  # for the media type and the cache policy: never a sidecar's
        self.head: bytes | None = None
        self.media = type_for_name(name)
        self.encoding: str | None = None  # content-coding of a precompressed sidecar
        self.vary = False  # sidecars exist: the answer depends on Accept-Encoding
        #: Made once for a file kept in memory: (ETag, Last-Modified, its text).
        self.validators: tuple[str, int, str] | None = None

    def close(self) -> None:
        fd = self.fd
        if fd is not None:
            self.fd = None
            os.close(fd)


def _close_info(info: Any) -> None:
    if isinstance(info, FileInfo):
        info.close()


def type_for_name(name: str) -> str:
    """Content-Type from a file name's extension (only the extension is looked
    up, so the type cache stays small whatever names arrive)."""
    base = name.rpartition("/")[2]
    dot = base.rfind(".")
    if dot <= 0:
        return DEFAULT_TYPE
    return resolve_type(base[dot + 1 :].lower() or "bin")


def _pread_exact(fd: int, offset: int, size: int) -> bytes:
    data = os.pread(fd, size, offset)
    if len(data) == size:
        return data
    parts = [data]
    got = len(data)
    while got < size:
        more = os.pread(fd, size - got, offset + got)
        if not more:
            raise _Truncated(errno.EIO, "file shrank while being sent")
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _open_regular(
    path: str, expected: os.stat_result, eager: bool, name: str, nofollow: bool = False
) -> FileInfo:
    """Open ``path`` if it is still the regular file ``expected`` describes.

    ``eager``: read a file of at most one chunk now and close it, so that a small
    file costs one thread hop in all. ``nofollow`` for resolved paths, where a
    symlink can only be one swapped in since they were resolved."""
    flags = _OPEN_FLAGS | (_NOFOLLOW if nofollow else 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (
            expected.st_dev,
            expected.st_ino,
        ):
            raise NotRegularFile(errno.ENOENT, "not a regular file", path)
        info = FileInfo(path, fd, st, name)
        if eager and st.st_size <= CHUNK:
            # A short read only means the file shrank: its new size is what is sent.
            head = os.pread(fd, st.st_size, 0) if st.st_size else b""
            os.close(fd)
            info.fd = None
            info.head = head
            info.size = len(head)
        return info
    except BaseException:
        os.close(fd)
        raise


def _open_path(path: str, eager: bool) -> FileInfo:
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise NotRegularFile(errno.ENOENT, "not a regular file", path)
    return _open_regular(os.path.abspath(path), st, eager, os.path.basename(path))


def status_for(error: BaseException) -> int | None:
    """The answer to a file that cannot be served: 404, 403, or ``None`` (a real
    failure such as EIO or EMFILE, left to the 500 route)."""
    if isinstance(error, PermissionError):
        return 403
    if isinstance(error, ValueError):  # a NUL in a path the application passed
        return 404
    if isinstance(
        error, NotRegularFile | FileNotFoundError | NotADirectoryError | IsADirectoryError
    ):
        return 404
    if isinstance(error, OSError) and error.errno in _NOT_FOUND_ERRNOS:
        return 404
    return None


# ---------------------------------------------------------------------- drain


async def drain(
    connection: HTTPConnection, location: Any, type: str | None, override: bool
) -> None:
    """``connection.drain(location, type, override)``: a file by path, or a stream."""
    connection.response.expect_idle()
    if isinstance(location, str | os.PathLike):
        path = os.fspath(location)
        if not isinstance(path, str):
            raise TypeError("drain() takes a str path (or a stream), not a bytes path")
        await _drain_path(connection, path, type, override)
        return
    if isinstance(location, bytes | bytearray | memoryview):
        raise TypeError("drain() takes a path or a stream; send bytes with send()")
    if hasattr(location, "read"):
        await _drain_stream(connection, _file_chunks(location), type, override, location)
        return
    if hasattr(location, "__aiter__") or isinstance(location, Iterable):
        await _drain_stream(connection, location, type, override, None)
        return
    raise TypeError(
        f"drain() takes a path, a file object, or an (async) iterator of bytes, not {location!r}"
    )


async def _drain_path(
    connection: HTTPConnection, path: str, type: str | None, override: bool
) -> None:
    fields = request_fields(connection)
    eager = _wants_eager(connection, fields)
    try:
        info: FileInfo = await _offload(_close_info, _open_path, path, eager)
    except (OSError, ValueError) as error:
        code = status_for(error)
        if code is None:
            raise
        await connection.error(code)
        return
    chosen = connection.response.first("content-type")
    if type is not None:
        info.media = resolve_type(type, override)
    elif chosen is not None:
        info.media = chosen
    await send_file(connection, info, None, fields)


# Request fields the pipeline reads, gathered in one pass over the raw headers
# (seven lookups would each scan them). Lists may arrive split over several lines.
_FIELDS = frozenset(
    {
        b"if-match",
        b"if-none-match",
        b"if-modified-since",
        b"if-unmodified-since",
        b"if-range",
        b"range",
        b"accept-encoding",
    }
)
_LIST_FIELDS = frozenset({b"if-match", b"if-none-match", b"accept-encoding"})
_CONDITIONS = frozenset(
    (b"if-match", b"if-none-match", b"if-modified-since", b"if-unmodified-since")
)


# Raw names known not to be wanted (lowercased once, not on every request); bounded.
_OTHER_FIELDS: set[bytes] = set()


def request_fields(connection: HTTPConnection) -> dict[bytes, str]:
    found: dict[bytes, str] = {}
    for name, value in connection.scope["headers"]:
        if name not in _FIELDS:
            if name in _OTHER_FIELDS:
                continue
            lowered = name.lower()  # ASGI promises lowercase; a lax server is tolerated
            if lowered not in _FIELDS:
                if len(_OTHER_FIELDS) < 1024:
                    _OTHER_FIELDS.add(name)
                continue
            name = lowered
        text = value.decode("latin-1")
        if name not in found:
            found[name] = text
        elif name in _LIST_FIELDS:
            found[name] += ", " + text
    return found


def _wants_eager(connection: HTTPConnection, fields: dict[bytes, str]) -> bool:
    # Read small files in the opening hop unless the body may not be needed
    # (HEAD), may be partial (Range) or the server reads files itself (pathsend).
    if connection.method != "GET" or b"range" in fields:
        return False
    return PATHSEND not in (connection.scope.get("extensions") or ())


async def send_file(
    connection: HTTPConnection,
    info: FileInfo,
    cache: str | None,
    fields: dict[bytes, str] | None = None,
) -> None:
    """Answer with the file ``info`` (opened, or read whole): validators,
    preconditions, ranges, then the body. Closes the file."""
    try:
        if fields is None:
            fields = request_fields(connection)
        await _answer_file(connection, info, cache, fields)
    finally:
        info.close()


async def _answer_file(
    connection: HTTPConnection, info: FileInfo, cache: str | None, fields: dict[bytes, str]
) -> None:
    response = connection.response
    size = info.size
    validators = info.validators
    if validators is None:
        # A Last-Modified in the future would make If-Modified-Since misbehave.
        modified = min(int(info.mtime), int(time.time()))
        etag = response.first("etag") or make_etag(size, info.mtime_ns, info.encoding or "")
    else:
        modified = validators[1]
        etag = response.first("etag") or validators[0]
    chosen_modified = response.first("last-modified")
    if chosen_modified is not None:
        parsed = parse_http_date(chosen_modified)
        last_modified = int(parsed) if parsed is not None else None
    else:
        last_modified = modified
    status = response.status
    ranges: list[tuple[int, int]] | None = None
    if status == 200:
        # Preconditions and ranges are about a successful answer: an error page
        # sent with drain() from a 404 route must not turn into a 304.
        verdict = None
        if fields and not _CONDITIONS.isdisjoint(fields):
            verdict = evaluate(
                connection.method,
                fields.get(b"if-match"),
                fields.get(b"if-unmodified-since"),
                fields.get(b"if-none-match"),
                fields.get(b"if-modified-since"),
                etag,
                last_modified,
            )
        if verdict == 412:
            await connection.error(412)
            return
        if verdict == 304:
            # The validators and the Vary of the 200 go with it (RFC 9110
            # §15.4.5); the response drops the representation's own metadata.
            _validators(connection, etag, modified, cache, info)
            response.set("content-type", [info.media])
            response.set("content-length", [str(size)])
            response.set_status(304)
            await response.respond(b"")
            return
        range_header = fields.get(b"range") if connection.method == "GET" else None
        if range_header is not None:
            condition = fields.get(b"if-range")
            if condition is None or if_range(condition, etag, last_modified):
                ranges = parse_range(range_header, size)
            if ranges is not None and not ranges:
                response.set("accept-ranges", ["bytes"])
                response.set("content-range", [unsatisfied_range(size)])
                await connection.error(416)
                return
    _validators(connection, etag, modified, cache, info)
    response.set("content-type", [info.media])
    if status == 200:
        response.set("accept-ranges", ["bytes"])
    response.remove("content-length")
    if ranges is None:
        if info.head is not None:
            await response.respond(info.head)
            return
        await _stream_file(connection, info, [(0, size)], None, size, whole=True)
        return
    # A 206 carries what its 200 would (RFC 9110 §15.3.7): the validators and
    # cache policy above; start hooks (compression's Vary) see it as well.
    response.set_status(206)
    if len(ranges) == 1:
        start, stop = ranges[0]
        response.set("content-range", [content_range(start, stop, size)])
        await _stream_file(connection, info, ranges, None, stop - start, whole=False)
        return
    boundary = secrets.token_hex(16)
    heads, tail, total = multipart_heads(ranges, size, info.media, boundary)
    response.set("content-type", [f"multipart/byteranges; boundary={boundary}"])
    await _stream_file(connection, info, ranges, (heads, tail), total, whole=False)


def _validators(
    connection: HTTPConnection, etag: str, modified: int, cache: str | None, info: FileInfo
) -> None:
    response = connection.response
    response.default("etag", etag)
    validators = info.validators
    response.default(
        "last-modified",
        validators[2] if validators is not None else format_http_date(modified),
    )
    if cache is not None:
        response.default("cache-control", cache)
    if info.encoding is not None:
        response.set("content-encoding", [info.encoding])
    if info.vary:
        response.vary("Accept-Encoding")


Job = tuple[bytes, int, int]  # (bytes to send first, offset, length to read)


def _jobs(
    ranges: list[tuple[int, int]], framing: tuple[list[bytes], bytes] | None
) -> Iterator[Job]:
    for index, (start, stop) in enumerate(ranges):
        prefix = framing[0][index] if framing is not None else b""
        offset = start
        while offset < stop:
            length = min(CHUNK, stop - offset)
            yield prefix, offset, length
            prefix = b""
            offset += length
    if framing is not None:
        yield framing[1], 0, 0


def _read_job(fd: int, job: Job, encoder: Encoder | None) -> bytes:
    prefix, offset, length = job
    data = _pread_exact(fd, offset, length) if length else b""
    if prefix:
        data = prefix + data
    # Compressing in the reading thread keeps the loop free; calls stay in order
    # because a job starts only after the previous one has finished.
    return encoder(data, False) if encoder is not None else data


async def _stream_file(
    connection: HTTPConnection,
    info: FileInfo,
    ranges: list[tuple[int, int]],
    framing: tuple[list[bytes], bytes] | None,
    length: int,
    whole: bool,
) -> None:
    response = connection.response
    response.set("content-length", [str(length)])
    await response.start(None)
    status = response.status
    if connection.method == "HEAD" or status in (204, 304) or status < 200:
        await response.write_raw(b"", more=False)
        return
    encoder = response.encoder
    if whole and encoder is None and PATHSEND in (connection.scope.get("extensions") or ()):
        info.close()
        await response.send_path(info.path)
        return
    fd = info.fd
    assert fd is not None
    jobs = _jobs(ranges, framing)
    watcher = _DisconnectWatcher(connection) if length > CHUNK else None
    pool = _executor()
    pending: Future[bytes] | None = None
    try:
        job = next(jobs, None)
        pending = pool.submit(_read_job, fd, job, encoder) if job is not None else None
        while pending is not None:
            data = await asyncio.wrap_future(pending)
            job = next(jobs, None)
            pending = pool.submit(_read_job, fd, job, encoder) if job is not None else None
            if watcher is not None and watcher.gone:
                response.abort()
                return
            last = pending is None and encoder is None
            try:
                await response.write_raw(data, more=not last)
            except OSError:
                # The client went away (ASGI servers raise an OSError subclass).
                response.abort()
                return
        if encoder is not None:
            await response.write_raw(encoder(b"", True), more=False)
    finally:
        if watcher is not None:
            watcher.stop()
        if pending is not None and not pending.done() and not pending.cancel():
            # A thread is reading from the descriptor: close it when that is over.
            info.fd = None
            pending.add_done_callback(lambda _done: os.close(fd))


class _DisconnectWatcher:
    """Notices a client that left, so a long body stops being read and sent (some
    servers silently drop what is sent after a disconnect)."""

    __slots__ = ("gone", "task")

    def __init__(self, connection: HTTPConnection) -> None:
        self.gone = False
        self.task = asyncio.ensure_future(self._watch(connection))

    async def _watch(self, connection: HTTPConnection) -> None:
        receive = connection.request.receive
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.gone = True
                return

    def stop(self) -> None:
        task = self.task
        if not task.done():
            task.cancel()
        elif not task.cancelled():
            task.exception()  # a failed receive only means the client is gone


# -------------------------------------------------------------------- streams


async def _file_chunks(source: Any) -> AsyncIterator[bytes]:
    read = source.read
    if inspect.iscoroutinefunction(read):
        while chunk := await read(CHUNK):
            yield chunk
        return
    if isinstance(source, io.BytesIO | io.StringIO):
        # In memory: a thread hop would cost more than the read.
        while chunk := read(CHUNK):
            yield chunk
        return
    while chunk := await _offload(None, read, CHUNK):
        yield chunk


async def _sync_chunks(iterator: Iterator[Any]) -> AsyncIterator[Any]:
    # Iterated in a worker thread: a generator may block (files, sockets, queries).
    done = object()
    while True:
        chunk = await _offload(None, next, iterator, done)
        if chunk is done:
            return
        yield chunk


async def _drain_stream(
    connection: HTTPConnection, source: Any, type: str | None, override: bool, owner: Any
) -> None:
    response = connection.response
    if type is not None:
        response.set("content-type", [resolve_type(type, override)])
    elif response.first("content-type") is None:
        name = getattr(owner, "name", None)
        media = type_for_name(name) if isinstance(name, str) else DEFAULT_TYPE
        response.set("content-type", [media])
    response.remove("content-length")
    chunks: Any
    if hasattr(source, "__aiter__"):
        chunks = source
    elif isinstance(source, list | tuple):
        chunks = _memory_chunks(source)
    else:
        chunks = _sync_chunks(iter(source))
    watcher: _DisconnectWatcher | None = None
    try:
        await response.start(None)
        if connection.method != "HEAD":
            watcher = _DisconnectWatcher(connection)
            iterator = chunks.__aiter__()
            while True:
                step = asyncio.ensure_future(iterator.__anext__())
                done, _ = await asyncio.wait(
                    (step, watcher.task), return_when=asyncio.FIRST_COMPLETED
                )
                if step not in done or watcher.gone:
                    # The client left (maybe while the source was waiting to produce).
                    step.cancel()
                    await asyncio.gather(step, return_exceptions=True)
                    response.abort()
                    return
                try:
                    chunk = step.result()
                except StopAsyncIteration:
                    break
                if isinstance(chunk, bytearray | memoryview):
                    chunk = bytes(chunk)
                elif not isinstance(chunk, bytes | str):
                    raise TypeError(f"drain() streams bytes or str chunks, not {chunk!r}")
                if chunk:
                    await connection.write(chunk)
        await connection.end()
    finally:
        if watcher is not None:
            watcher.stop()
        # The response consumed the stream: release the generator or the file.
        if hasattr(chunks, "aclose"):
            await chunks.aclose()
        if owner is not None:
            await _close_source(owner)
        elif chunks is not source:
            await _close_source(source)


async def _memory_chunks(items: Iterable[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


async def _close_source(source: Any) -> None:
    close = getattr(source, "aclose", None) or getattr(source, "close", None)
    if close is None:
        return
    try:
        result = close()
        if inspect.isawaitable(result):
            await result
    except ValueError:
        # A generator still running in a worker thread (its client left while it
        # was producing) cannot be closed now; it is finalised when collected.
        logger.debug("stream source still running, left to the garbage collector")


# -------------------------------------------------------------------- static


class Static:
    """A router's static section, resolved once: absolute root, index names,
    dotfile rule, cache policy, SPA fallback."""

    __slots__ = ("_cache", "dotfiles", "fallback", "index", "memory", "root")

    def __init__(self, section: Mapping[str, Any], base: str) -> None:
        location = _location(section["location"])
        self.root = os.path.realpath(os.path.join(base, location))
        if not os.path.isdir(self.root):
            logger.warning("static location %s is not a directory (yet)", self.root)
        self.index = _index_names(section["index"])
        self.dotfiles = _dotfiles(section["dotfiles"])
        self.fallback = _fallback(section["fallback"])
        self._cache = _cache_policy(section["cache"])
        entries = _cache_size("cache_entries", section["cache_entries"])
        limit = _cache_size("cache_bytes", section["cache_bytes"])
        #: Small files kept in memory (``cache_entries``/``cache_bytes``; 0: off).
        self.memory = FileCache(entries, limit) if entries and limit else None

    def cache_for(self, name: str) -> str | None:
        return self._cache(name)


def check_config(partial: Mapping[str, Any]) -> None:
    """Validate the keys of a ``static`` section as it is configured, so that a
    mistake fails at start-up rather than on a request."""
    if "location" in partial:
        _location(partial["location"])
    if "index" in partial:
        _index_names(partial["index"])
    if "dotfiles" in partial:
        _dotfiles(partial["dotfiles"])
    if "fallback" in partial:
        _fallback(partial["fallback"])
    if "cache" in partial:
        _cache_policy(partial["cache"])
    for key in ("cache_entries", "cache_bytes"):
        if key in partial:
            _cache_size(key, partial[key])


def _cache_size(key: str, value: Any) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"static {key} is an int of 0 or more (0: no memory cache), not {value!r}")
    return value


def _dotfiles(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"static dotfiles is a bool, not {value!r}")
    return value


def _location(location: Any) -> str:
    if not isinstance(location, str | os.PathLike):
        raise TypeError(f"static location is a path, not {location!r}")
    path = os.fspath(location)
    if not isinstance(path, str) or not path:
        raise ValueError(f"static location is a non-empty str path, not {location!r}")
    return path


def _index_names(index: Any) -> tuple[str, ...]:
    names = (index,) if isinstance(index, str) else tuple(index or ())
    for name in names:
        if (
            not isinstance(name, str)
            or not name
            or "/" in name
            or _REFUSED.search(name)
            or name in (".", "..")
        ):
            raise ValueError(f"static index names files in the folder, not {name!r}")
    return names


def _fallback(fallback: Any) -> list[str] | None:
    if fallback is None:
        return None
    parsed = safe_segments("/" + fallback.lstrip("/"), True) if isinstance(fallback, str) else None
    if parsed is None or not parsed[0] or parsed[1]:
        raise ValueError(f"static fallback is a file inside the folder, not {fallback!r}")
    return parsed[0]


def _cache_policy(option: Any) -> Callable[[str], str | None]:
    if callable(option):
        return _checked_policy(option)
    if option is False:
        return lambda name: None
    regular: str
    if option is None or option is True:
        regular = REVALIDATE
    elif isinstance(option, int):
        if option < 0:
            raise ValueError(f"static cache seconds must not be negative, got {option}")
        regular = f"public, max-age={option}"
    elif isinstance(option, str):
        regular = validate_header_value(option)
    elif isinstance(option, Mapping):
        regular = cache_control(option)
    else:
        raise TypeError(
            f"static cache takes None, False, seconds, a str, a dict or a function, not {option!r}"
        )

    def policy(name: str) -> str | None:
        return IMMUTABLE if is_fingerprinted(name) else regular

    return policy


def _checked_policy(function: Callable[[str], Any]) -> Callable[[str], str | None]:
    def policy(name: str) -> str | None:
        value = function(name)
        # What a function returns goes into a header: no line breaks smuggled in.
        return None if value is None else validate_header_value(str(value))

    return policy


def is_fingerprinted(name: str) -> bool:
    """Whether a file name carries a content hash, so its content never changes."""
    base = name.rpartition("/")[2]
    for match in _FINGERPRINT.finditer(base):
        token = match.group(1)
        if _HAS_DIGIT.search(token) and _HAS_LETTER.search(token):
            return True
    return False


def safe_segments(relative: str, dotfiles: bool) -> tuple[list[str], bool] | None:
    """Split a decoded URL path (relative to the router) into file name segments,
    or ``None`` if any part is refused. The bool says it ended with a slash."""
    if len(relative) > MAX_PATH or _REFUSED.search(relative) is not None:
        return None
    if not relative:
        return [], False
    if relative[0] != "/":
        return None
    parts = relative[1:].split("/")
    directory = parts[-1] == ""
    if directory:
        parts.pop()
    for index, part in enumerate(parts):
        if part in ("", ".", "..") or len(part.encode("utf-8", "surrogatepass")) > MAX_SEGMENT:
            return None
        if part[0] == "." and not dotfiles and not (index == 0 and part == ".well-known"):
            return None
        if _WINDOWS and (part[-1] in ". " or part.partition(".")[0].upper() in _WINDOWS_RESERVED):
            return None
    return parts, directory


_REDIRECT: Final = 301


def _contained(static: Static, path: str) -> str | None:
    """The real path of ``path`` if it stays inside the root (and, unless
    dotfiles are on, does not pass through one: a symlink must not reveal one)."""
    real = os.path.realpath(path)
    root = static.root
    try:
        if os.path.commonpath((root, real)) != root:
            return None
    except ValueError:  # different drives on Windows
        return None
    if not static.dotfiles and real != root:
        for index, part in enumerate(real[len(root) :].lstrip(os.sep).split(os.sep)):
            if part.startswith(".") and not (index == 0 and part == ".well-known"):
                return None
    return real


def _resolve(static: Static, base: str, segments: list[str]) -> tuple[str, os.stat_result] | None:
    """The real path and stat of ``base`` (already real, inside the root) joined
    with checked ``segments``, or ``None`` if it leads outside.

    One ``lstat`` per segment proves a path free of symlinks to be its own real
    path; only a path through a symlink pays for ``realpath`` and the
    ``commonpath`` containment check (and costs no more than that when the
    symlink is legitimate)."""
    path = base
    for index, segment in enumerate(segments):
        path = os.path.join(path, segment)
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            real = _contained(static, os.path.join(path, *segments[index + 1 :]))
            if real is None:
                return None
            return real, os.stat(real)
        if index < len(segments) - 1 and not stat.S_ISDIR(st.st_mode):
            return None
    if not segments:
        return path, os.stat(path)
    return path, st


def _locate(
    static: Static,
    segments: list[str],
    directory: bool,
    eager: bool,
    accept: str | None,
    remember: bool = False,
) -> FileInfo | int:
    """Find, check and open the file for a request (in a worker thread): a
    FileInfo, 301 for a directory named without its slash, 404 or 403."""
    try:
        found = _resolve(static, static.root, segments)
        if found is None:
            return 404
        real, st = found
        name = "/".join(segments)
        if stat.S_ISDIR(st.st_mode):
            for index in static.index:
                try:
                    entry = _resolve(static, real, [index])
                except OSError as error:
                    if status_for(error) == 404:
                        continue
                    raise
                if entry is not None and stat.S_ISREG(entry[1].st_mode):
                    if not directory:
                        return _REDIRECT
                    path = f"{name}/{index}".lstrip("/")
                    # remembered with the folder's stat: an index file added
                    # earlier in the list must win at once
                    return _open_static(
                        static, entry[0], entry[1], path, eager, accept, remember, True
                    )
            return 404
        if directory or not stat.S_ISREG(st.st_mode):
            return 404
        return _open_static(static, real, st, name, eager, accept, remember)
    except OSError as error:
        code = status_for(error)
        if code is None:
            raise
        return code


def _open_static(
    static: Static,
    real: str,
    st: os.stat_result,
    name: str,
    eager: bool,
    accept: str | None,
    remember: bool = False,
    indexed: bool = False,
) -> FileInfo:
    target, target_st, coding = real, st, None
    vary = False
    folder = None
    compressible = is_compressible(type_for_name(name))
    if remember and (compressible or indexed):
        # Taken before the sidecars (or the index) are looked for: one added or
        # removed later changes the folder's mtime.
        parent = os.path.dirname(real)
        parent_st = os.stat(parent)
        folder = (parent, (parent_st.st_dev, parent_st.st_ino, parent_st.st_mtime_ns))
    # Looked for even without Accept-Encoding: when sidecars exist the answer
    # is negotiated, and every variant must say so with Vary.
    if compressible:
        found: dict[str, tuple[str, os.stat_result]] = {}
        for candidate, suffix in SIDECARS:
            side = real + suffix
            try:
                side_st = os.lstat(side)  # usually fails: no such sidecar
                if stat.S_ISLNK(side_st.st_mode):
                    # The same rule as for any path: a symlink must stay inside.
                    resolved = _contained(static, side)
                    if resolved is None:
                        continue
                    side, side_st = resolved, os.stat(resolved)
            except OSError:
                continue
            # A sidecar older than its file is stale: serving it would be wrong.
            if stat.S_ISREG(side_st.st_mode) and side_st.st_mtime_ns >= st.st_mtime_ns:
                found[candidate] = (side, side_st)
        if found:
            vary = True
            chosen = choose_encoding(accept, list(found)) if accept else None
            if chosen in found:
                target, target_st = found[chosen]
                coding = chosen
    info = _open_regular(target, target_st, eager, name, nofollow=True)
    info.encoding = coding
    info.vary = vary
    info.folder = folder
    return info


# ------------------------------------------------------------- memory cache


# A kept file, its Cache-Control, and its plain 200 (header lines and body).
CacheEntry = tuple["FileInfo", str | None, PreparedAnswer]


class FileCache:
    """Small static files kept in memory (bytes, stat, validators), least
    recently used first out, bounded by a number of entries and a total size.

    An entry is revalidated on every use with one ``os.stat`` of the file (and
    one of its folder when sidecars were looked for): a different device,
    inode, modification time or size drops it and the request takes the usual
    path. A replaced or deleted file is therefore never served from memory
    once its stat says so. Files changed within the last two seconds are not
    kept (a coarse file clock could hide a second change in the same tick)."""

    __slots__ = ("_entries", "entries", "limit", "size")

    def __init__(self, entries: int, limit: int) -> None:
        self.entries = entries
        self.limit = limit
        self.size = 0
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> CacheEntry | None:
        """The fresh entry for ``key`` (dropping a stale one), or ``None``."""
        found = self._entries.get(key)
        if found is None:
            return None
        info = found[0]
        try:
            st = os.stat(info.path)
            fresh = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size) == info.ident
            folder = info.folder
            if fresh and folder is not None:
                st = os.stat(folder[0])
                fresh = (st.st_dev, st.st_ino, st.st_mtime_ns) == folder[1]
        except (OSError, ValueError):
            fresh = False
        if not fresh:
            self.drop(key)
            return None
        self._entries.move_to_end(key)
        return found

    def put(self, key: str, info: FileInfo, cache: str | None) -> None:
        """Keep ``info`` if it is a small whole file, settled, with no sidecars."""
        head = info.head
        size = info.size
        if (
            head is None
            or info.vary
            or info.encoding is not None
            or size > CACHE_FILE_MAX
            or size > self.limit
            or size != info.ident[3]
        ):
            return
        settled = time.time_ns() - _SETTLED_NS
        folder = info.folder
        if info.ident[2] > settled or (folder is not None and folder[1][2] > settled):
            return
        modified = int(info.mtime)  # settled: not in the future
        etag = make_etag(size, info.mtime_ns)
        date = format_http_date(modified)
        info.validators = (etag, modified, date)
        # the header lines of a plain 200, in the order _answer_file sets them
        lines = [("etag", etag), ("last-modified", date)]
        if cache is not None:
            lines.append(("cache-control", cache))
        lines += [("content-type", info.media), ("accept-ranges", "bytes")]
        self.drop(key)
        entries = self._entries
        entries[key] = (info, cache, PreparedAnswer(lines, head))
        self.size += size
        while len(entries) > self.entries or self.size > self.limit:
            _, (old, _, _) = entries.popitem(last=False)
            self.size -= old.size

    def drop(self, key: str) -> None:
        found = self._entries.pop(key, None)
        if found is not None:
            self.size -= found[0].size

    def clear(self) -> None:
        self._entries.clear()
        self.size = 0


# Bases (working directories) per root router, recorded when the server starts.
_bases: weakref.WeakKeyDictionary[Router, str] = weakref.WeakKeyDictionary()


class StaticFiles(Feature):
    """The ``static`` section: GET and HEAD requests no route took are served from
    a folder, with everything ``drain`` does."""

    name: ClassVar[str] = "static"
    defaults: ClassVar[Mapping[str, Any]] = {
        "enabled": False,
        "location": "public",
        "index": ["index.html"],
        "dotfiles": False,
        "cache": None,
        "fallback": None,
        "cache_entries": 256,
        "cache_bytes": 4 << 20,
    }

    def validate(self, partial: Mapping[str, Any]) -> None:
        check_config(partial)

    def compile(self, section: Mapping[str, Any], router: Router) -> Static:
        base = _bases.get(router.root)
        if base is None:
            # No lifespan startup (some servers and tests skip it): the working
            # directory of the first request is the one, once and for all.
            base = _bases[router.root] = os.getcwd()
        return Static(section, base)

    async def answer(self, connection: HTTPConnection, state: Static) -> bool:
        if connection.method not in ("GET", "HEAD"):
            return False
        return await serve_static(connection, state)


FEATURE = StaticFiles()


def prepare_static(root: Router) -> None:
    """At startup: resolve every static ``location`` of this tree against the
    working directory now, so a later ``chdir`` cannot move the folders."""
    _bases[root] = os.getcwd()
    for router in (root, *root.descendants):
        settings = router.settings
        if settings.section("static") is not None:
            settings.state(FEATURE)


async def serve_static(connection: HTTPConnection, static: Static) -> bool:
    """Answer a GET or HEAD no route took from the router's static folder."""
    relative = connection.path[len(connection.router.prefix) :]
    fields = request_fields(connection)
    memory = static.memory
    if memory is not None and b"range" not in fields:
        # Not for ranges: a range is read from the file, as without the cache.
        # A path in the cache passed safe_segments (same rules) when it was kept.
        cached = memory.get(relative)
        if cached is not None:
            response = connection.response
            if not response.headers and response.status == 200 and _CONDITIONS.isdisjoint(fields):
                # The common hit (no middleware set a header, no precondition):
                # the answer _answer_file would give, prepared when it was kept.
                await response.respond_prepared(cached[2])
                return True
            await _answer_file(connection, cached[0], cached[1], fields)
            return True
    parsed = safe_segments(relative, static.dotfiles)
    if parsed is None:
        return False
    segments, directory = parsed
    accept = fields.get(b"accept-encoding")
    eager = _wants_eager(connection, fields)
    remember = False
    if memory is not None and connection.method == "GET" and b"range" not in fields:
        # A small file read now can be kept (even where the server would send it
        # itself with pathsend: from memory is cheaper still).
        eager = remember = True
    result: FileInfo | int = await _offload(
        _close_info, _locate, static, segments, directory, eager, accept, remember
    )
    if result == 404 and static.fallback is not None and _wants_fallback(connection, segments):
        fallback = await _offload(
            _close_info, _locate, static, static.fallback, False, eager, accept
        )
        if isinstance(fallback, FileInfo):
            await send_file(connection, fallback, REVALIDATE, fields)
            return True
        return False
    if isinstance(result, FileInfo):
        cache = static.cache_for(result.name)
        if remember:
            memory.put(relative, result, cache)  # type: ignore[union-attr]
        await send_file(connection, result, cache, fields)
        return True
    if result == _REDIRECT:
        await connection.redirect(_slash_location(connection), True)
        return True
    if result == 403:
        await connection.error(403)
        return True
    return False


def _wants_fallback(connection: HTTPConnection, segments: list[str]) -> bool:
    # A single-page app owns the URLs a browser navigates to: no file extension,
    # an HTML-accepting request, and no route for another method at that path.
    if segments and "." in segments[-1]:
        return False
    accept = connection.headers.get("accept")
    if accept is not None and "text/html" not in accept and "*/*" not in accept:
        return False
    return not connection.router.allowed(connection.path)


def _slash_location(connection: HTTPConnection) -> str:
    location = quote(connection.path, safe="/!$&'()*+,;=@-._~") + "/"
    # Never "//host": a protocol-relative Location would send the client elsewhere.
    location = "/" + location.lstrip("/")
    query = connection.scope.get("query_string", b"")
    if query:
        location += "?" + quote(query.decode("latin-1"), safe="&=+%;/?:@!$'()*,~-._")
    return location


__all__ = [
    "CACHE_FILE_MAX",
    "CHUNK",
    "FileCache",
    "FileInfo",
    "NotRegularFile",
    "Static",
    "drain",
    "is_fingerprinted",
    "prepare_static",
    "safe_segments",
    "send_file",
    "serve_static",
    "status_for",
    "type_for_name",
]

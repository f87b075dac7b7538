"""Response compression (docs/files.md): br, zstd, gzip, deflate.

``attach_compression`` registers one start hook per exchange. The hook runs just
before the headers go out, when status, headers and (for whole responses) the
body are known, and decides there: whole bodies are compressed in one call, and
streams (``write()``, ``drain()`` of a large file or an iterator) get an encoder
that compresses chunk by chunk with a flush after each, so every chunk reaches
the client at once (server-sent events stay live).
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from .feature import Feature
from .http.mediatypes import is_compressible
from .http.qvalues import choose_encoding

if TYPE_CHECKING:
    from .connection import HTTPConnection
    from .response import Encoder, Response
    from .router import Router

# Whole bodies above this are compressed in a worker thread: zlib, brotli and
# zstandard release the GIL, and a megabyte at gzip level 6 holds a loop ~10 ms.
THREAD_THRESHOLD = 128 << 10

# Defaults chosen for dynamic responses, where compression time is paid on every
# request: brotli 4 and zstd 3 are about as fast as gzip 6 and smaller.
DEFAULT_LEVELS = {"br": 4, "zstd": 3, "gzip": 6, "deflate": 6}
LEVEL_RANGES = {"br": (0, 11), "zstd": (1, 22), "gzip": (1, 9), "deflate": (1, 9)}


def _load_brotli() -> Any:
    try:
        import brotli
    except ImportError:
        return None
    return brotli


def _load_zstd() -> Any:
    try:
        import zstandard
    except ImportError:
        return None
    return zstandard


_brotli = _load_brotli()
_zstd = _load_zstd()

# Tie order when the client rates codings alike and ``preferred`` says nothing:
# smallest output first; gzip before deflate because "deflate" has a history of
# being implemented as raw deflate by some clients.
ORDER = ("br", "zstd", "gzip", "deflate")


def available_encodings() -> tuple[str, ...]:
    """The codings this process can produce (br and zstd need their packages)."""
    return tuple(
        name
        for name in ORDER
        if not (name == "br" and _brotli is None) and not (name == "zstd" and _zstd is None)
    )


# ------------------------------------------------------------------- encoders


class _ZlibStream:
    __slots__ = ("_compressor",)

    def __init__(self, level: int, wbits: int) -> None:
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, wbits)

    def __call__(self, chunk: bytes, final: bool) -> bytes:
        compressor = self._compressor
        if final:
            return compressor.compress(chunk) + compressor.flush(zlib.Z_FINISH)
        if not chunk:
            return b""
        return compressor.compress(chunk) + compressor.flush(zlib.Z_SYNC_FLUSH)


class _BrotliStream:
    __slots__ = ("_compressor",)

    def __init__(self, level: int) -> None:
        self._compressor = _brotli.Compressor(quality=level)

    def __call__(self, chunk: bytes, final: bool) -> bytes:
        compressor = self._compressor
        if final:
            head = compressor.process(chunk) if chunk else b""
            return bytes(head + compressor.finish())
        if not chunk:
            return b""
        return bytes(compressor.process(chunk) + compressor.flush())


class _ZstdStream:
    __slots__ = ("_compressor",)

    def __init__(self, level: int) -> None:
        self._compressor = _zstd.ZstdCompressor(level=level).compressobj()

    def __call__(self, chunk: bytes, final: bool) -> bytes:
        compressor = self._compressor
        if final:
            return bytes(
                compressor.compress(chunk) + compressor.flush(_zstd.COMPRESSOBJ_FLUSH_FINISH)
            )
        if not chunk:
            return b""
        return bytes(compressor.compress(chunk) + compressor.flush(_zstd.COMPRESSOBJ_FLUSH_BLOCK))


class Compression:
    """A router's compression settings, resolved once: codings, levels, size floor."""

    __slots__ = ("_zstd_whole", "available", "levels", "min_size", "preferred")

    def __init__(self, section: Mapping[str, Any]) -> None:
        self.available = available_encodings()
        self.preferred = _preferred(section.get("preferred"))
        self.levels = _levels(section.get("level"))
        self.min_size = _min_size(section.get("min_size"))
        # One zstd compressor per router: building one per response costs more
        # than compressing a small body. Used on the loop thread only.
        self._zstd_whole: Any = (
            _zstd.ZstdCompressor(level=self.levels["zstd"]) if _zstd is not None else None
        )

    def choose(self, accept_encoding: str | None) -> str | None:
        """The coding for this client, or ``None`` for an uncompressed answer."""
        if not accept_encoding:
            return None
        chosen = choose_encoding(accept_encoding, self.available, self.preferred)
        return None if chosen is None or chosen == "identity" else chosen

    def compress(self, coding: str, body: bytes, shared: bool = True) -> bytes:
        """``body`` compressed whole; ``shared=False`` off the loop thread, where
        the router's zstd compressor must not be used (it is not thread-safe)."""
        level = self.levels[coding]
        if coding == "gzip":
            return zlib.compress(body, level, wbits=31)
        if coding == "deflate":
            return zlib.compress(body, level)
        if coding == "br":
            return bytes(_brotli.compress(body, quality=level))
        if shared:
            return bytes(self._zstd_whole.compress(body))
        return bytes(_zstd.ZstdCompressor(level=level).compress(body))

    def encoder(self, coding: str) -> Encoder:
        level = self.levels[coding]
        if coding == "gzip":
            return _ZlibStream(level, 31)
        if coding == "deflate":
            return _ZlibStream(level, 15)
        if coding == "br":
            return _BrotliStream(level)
        return _ZstdStream(level)


def check_config(partial: Mapping[str, Any]) -> None:
    """Validate the keys of a ``compression`` section as it is configured, so that
    a mistake fails at start-up rather than on a request."""
    if "preferred" in partial:
        _preferred(partial["preferred"])
    if "level" in partial:
        _levels(partial["level"])
    if "min_size" in partial:
        _min_size(partial["min_size"])


def _preferred(preferred: Any) -> str | None:
    if preferred is not None and preferred not in ORDER:
        raise ValueError(f"compression preferred is one of {', '.join(ORDER)}, not {preferred!r}")
    return preferred  # type: ignore[no-any-return]


def _min_size(value: Any) -> int:
    if value is None:
        return 0
    if type(value) is not int or value < 0:
        raise ValueError(f"compression min_size is a number of bytes (int >= 0), not {value!r}")
    return value


def _levels(level: Any) -> dict[str, int]:
    levels = dict(DEFAULT_LEVELS)
    if level is None:
        return levels
    if isinstance(level, Mapping):
        chosen = {name: level[name] for name in level}
        unknown = set(chosen) - set(DEFAULT_LEVELS)
        if unknown:
            raise ValueError(
                f"compression level names codings {sorted(DEFAULT_LEVELS)}, not {sorted(unknown)}"
            )
    elif isinstance(level, int) and not isinstance(level, bool):
        chosen = dict.fromkeys(DEFAULT_LEVELS, level)
    else:
        raise TypeError(f"compression level is an int or a dict of ints per coding, not {level!r}")
    for name, value in chosen.items():
        if type(value) is not int:
            raise TypeError(f"compression level of {name} is an int, not {value!r}")
        low, high = LEVEL_RANGES[name]
        # One number for every coding: each gets it within its own scale.
        levels[name] = min(max(int(value), low), high)
    return levels


class CompressionFeature(Feature):
    """The ``compression`` section: a start hook per exchange decides, when status,
    headers and (for whole responses) the body are known."""

    name: ClassVar[str] = "compression"
    defaults: ClassVar[Mapping[str, Any]] = {
        "enabled": False,
        "preferred": None,
        "level": None,
        "min_size": 1024,
    }

    def validate(self, partial: Mapping[str, Any]) -> None:
        check_config(partial)

    def compile(self, section: Mapping[str, Any], router: Router) -> Compression:
        return Compression(section)

    async def attach(self, connection: HTTPConnection, state: Compression) -> None:
        connection.response.on_start(partial(_compress_hook, connection, state))


FEATURE = CompressionFeature()


def _no_transform(response: Response) -> bool:
    directives = response.headers.get("cache-control")
    if not directives:
        return False  # the common case, without the generator
    return any("no-transform" in value.lower() for value in directives)


# ---------------------------------------------------------------------- hook


async def _compress_hook(
    connection: HTTPConnection, settings: Compression, body: bytes | None
) -> bytes | None:
    response = connection.response
    status = response.status
    # 204 and 1xx have no body and no representation.
    if status < 200 or status == 204:
        return body
    headers = response.headers
    if "content-encoding" in headers:
        return body  # already encoded (a precompressed file, or the handler's own)
    types = headers.get("content-type")
    if not types or not is_compressible(types[0]):
        return body
    # The answer depends on Accept-Encoding from here on, compressed or not.
    response.vary("Accept-Encoding")
    # A 304 or 206 carries the Vary its 200 would (RFC 9110 §15.4.5, §15.3.7);
    # a 206 answers a Range of the identity representation: never re-encoded.
    if status == 206 or connection.method == "HEAD" or _no_transform(response):
        return body
    if body is not None and status != 304:
        if len(body) < settings.min_size:
            return body
    else:
        declared = headers.get("content-length")
        if declared and declared[0].isdigit() and int(declared[0]) < settings.min_size:
            return body
    coding = settings.choose(connection.headers.get("accept-encoding"))
    if coding is None:
        return body
    etags = headers.get("etag")
    weak = etags is not None and not etags[0].startswith("W/")
    if status == 304:
        # No body, but the ETag must be the one of the 200 it stands for.
        if weak:
            response.set("etag", ["W/" + etags[0]])  # type: ignore[index]
        return body
    response.set("content-encoding", [coding])
    # Ranges would address the identity bytes, which this answer no longer is.
    response.remove("content-length", "accept-ranges")
    if weak:
        # The bytes differ from the identity ones: a strong tag would be a lie.
        response.set("etag", ["W/" + etags[0]])  # type: ignore[index]
    if body is None:
        response.set_encoder(settings.encoder(coding))
        return None
    if len(body) > THREAD_THRESHOLD:
        compressed: bytes = await asyncio.get_running_loop().run_in_executor(
            None, settings.compress, coding, body, False
        )
        return compressed
    return settings.compress(coding, body)


__all__ = ["FEATURE", "Compression", "available_encodings"]

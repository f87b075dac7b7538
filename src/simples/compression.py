"""Response compression (SPEC §4 ``compression``, §6): br, zstd, gzip, deflate.

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
from typing import TYPE_CHECKING, Any

from .http.mediatypes import is_compressible
from .http.qvalues import choose_encoding

if TYPE_CHECKING:
    from .connection import Encoder, HTTPConnection

# Whole bodies above this are compressed in a worker thread: zlib, brotli and
# zstandard release the GIL, and a megabyte at gzip level 6 holds a loop ~10 ms.
THREAD_THRESHOLD = 128 << 10

# Defaults chosen for dynamic responses, where compression time is paid on every
# request: brotli 4 and zstd 3 are about as fast as gzip 6 and smaller.
DEFAULT_LEVELS = {"br": 4, "zstd": 3, "gzip": 6, "deflate": 6}
LEVEL_RANGES = {"br": (0, 11), "zstd": (1, 22), "gzip": (1, 9), "deflate": (1, 9)}

_EXTENSION_KEY = "compression"


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


def settings_for(connection: HTTPConnection, section: Mapping[str, Any]) -> Compression:
    extensions = connection.router.settings.extensions
    found = extensions.get(_EXTENSION_KEY)
    if found is None:
        found = extensions[_EXTENSION_KEY] = Compression(section)
    return found


# ------------------------------------------------------------------- headers


def add_vary(out: dict[str, list[str]], token: str) -> None:
    """Add ``token`` to the response's Vary unless it is there (or Vary is ``*``)."""
    values = out.get("vary")
    if not values:
        out["vary"] = [token]
        return
    wanted = token.lower()
    for value in values:
        for item in value.split(","):
            item = item.strip(" \t").lower()
            if item == "*" or item == wanted:
                return
    out["vary"] = [f"{', '.join(values)}, {token}"]


def _no_transform(out: dict[str, list[str]]) -> bool:
    return any("no-transform" in value.lower() for value in out.get("cache-control", ()))


# ---------------------------------------------------------------------- hook


def attach_compression(connection: HTTPConnection, section: Mapping[str, Any]) -> None:
    """Compress this exchange's response when it qualifies (decided at start)."""
    settings_for(connection, section)
    connection.on_start(_compress_hook)


async def _compress_hook(connection: HTTPConnection, body: bytes | None) -> bytes | None:
    status = connection._status
    # 206 answers a Range of the identity representation; 204/304/1xx have no body.
    if status < 200 or status in (204, 206, 304):
        return body
    out = connection._out
    if "content-encoding" in out:
        return body  # already encoded (a precompressed file, or the handler's own)
    types = out.get("content-type")
    if not types or not is_compressible(types[0]):
        return body
    # The answer depends on Accept-Encoding from here on, compressed or not.
    add_vary(out, "Accept-Encoding")
    if connection.method == "HEAD" or _no_transform(out):
        return body
    settings: Compression = connection.router.settings.extensions[_EXTENSION_KEY]
    if body is not None:
        if len(body) < settings.min_size:
            return body
    else:
        declared = out.get("content-length")
        if declared and declared[0].isdigit() and int(declared[0]) < settings.min_size:
            return body
    coding = settings.choose(connection.headers.get("accept-encoding"))
    if coding is None:
        return body
    out["content-encoding"] = [coding]
    out.pop("content-length", None)
    # Ranges would address the identity bytes, which this answer no longer is.
    out.pop("accept-ranges", None)
    etags = out.get("etag")
    if etags and not etags[0].startswith("W/"):
        # The bytes differ from the identity ones: a strong tag would be a lie.
        out["etag"] = ["W/" + etags[0]]
    if body is None:
        connection._encoder = settings.encoder(coding)
        return None
    if len(body) > THREAD_THRESHOLD:
        return await asyncio.get_running_loop().run_in_executor(
            None, settings.compress, coding, body, False
        )
    return settings.compress(coding, body)


__all__ = ["Compression", "add_vary", "attach_compression", "available_encodings"]

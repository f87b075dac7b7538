"""Strict JSON for request bodies: UTF-8 only, no NaN or Infinity, no number
that overflows, and a linear-time check of the nesting depth before parsing
(RFC 8259; a deep document would otherwise exhaust the parser's stack)."""

from __future__ import annotations

import json as _stdlib_json
import math
from collections.abc import Callable
from typing import Any

_KEEP_JSON_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
_CURLY_TO_SQUARE = bytes.maketrans(b"{}", b"[]")


def too_deep(data: bytes, max_depth: int) -> bool:
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


def loads_stdlib(data: bytes) -> Any:
    # Decoding first keeps JSON UTF-8 only (json.loads(bytes) would guess UTF-16/32).
    return _stdlib_json.loads(
        data.decode(), parse_constant=_reject_constant, parse_float=_finite_float
    )


loads: Callable[[bytes], Any]
try:
    import orjson

    # orjson already rejects NaN/Infinity, overflowing numbers and invalid UTF-8.
    loads = orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    loads = loads_stdlib

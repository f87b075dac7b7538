"""Turn what a handler sends into bytes and a default Content-Type.

See ``send`` in docs/connection.md.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

TEXT = "text/plain; charset=utf-8"
BINARY = "application/octet-stream"
JSON = "application/json"


def _stdlib_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _stdlib_dumps(value: Any) -> bytes:
    return json.dumps(
        value, ensure_ascii=False, separators=(",", ":"), default=_stdlib_default, allow_nan=False
    ).encode()


dumps_json: Callable[[Any], bytes]
try:
    import orjson

    def _orjson_dumps(value: Any) -> bytes:
        try:
            return orjson.dumps(value)
        except orjson.JSONEncodeError:
            # orjson refuses what the stdlib accepts (ints over 64 bits, tuples as keys...)
            return _stdlib_dumps(value)

    dumps_json = _orjson_dumps
except ImportError:  # pragma: no cover - orjson is an optional speed-up
    dumps_json = _stdlib_dumps


def encode_body(data: Any) -> tuple[bytes, str | None]:
    """Bytes to send and the Content-Type to use when the handler set none."""
    kind = type(data)
    if kind is str:
        return data.encode(), TEXT
    if kind is dict or kind is list:
        return dumps_json(data), JSON
    if data is None:
        return b"", None
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data), BINARY
    if isinstance(data, str):
        return data.encode(), TEXT
    if isinstance(data, int | float | bool | dict | list | tuple) or (
        dataclasses.is_dataclass(data) and not isinstance(data, type)
    ):
        return dumps_json(data), JSON
    raise TypeError(
        f"send() takes str, bytes, None, or JSON-able data (dict, list, numbers, bool, "
        f"dataclasses), not {kind.__name__}"
    )

"""Turn what a handler sends into bytes and a default Content-Type.

See ``send`` in docs/connection.md.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from typing import Any

TEXT = "text/plain; charset=utf-8"
BINARY = "application/octet-stream"
JSON = "application/json"


def _stdlib_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    typed = _typed_builtins(value)
    if typed is not _NOT_TYPED:
        return typed
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


_NOT_TYPED = object()


def _typed_builtins(value: Any) -> Any:
    """A msgspec ``Struct`` or a pydantic model as plain data, else ``_NOT_TYPED``.
    Neither library is imported here: an instance exists only once its module is."""
    msgspec = sys.modules.get("msgspec")
    if msgspec is not None and isinstance(value, msgspec.Struct):
        return msgspec.to_builtins(value)
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    return _NOT_TYPED


def _typed_json(value: Any) -> bytes | None:
    msgspec = sys.modules.get("msgspec")
    if msgspec is not None and isinstance(value, msgspec.Struct):
        encoded: bytes = msgspec.json.encode(value)
        return encoded
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(value, pydantic.BaseModel):
        text: str = value.model_dump_json()
        return text.encode()
    return None


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
    typed = _typed_json(data)
    if typed is not None:
        return typed, JSON
    raise TypeError(
        f"send() takes str, bytes, None, or JSON-able data (dict, list, numbers, bool, "
        f"dataclasses, msgspec Structs, pydantic models), not {kind.__name__}"
    )

"""Typed JSON bodies: decode and validate into a declared type (docs/types.md).

Dataclasses, ``TypedDict``, msgspec ``Struct`` and the other types msgspec
knows (``list[Note]``, ``dict[str, int]``...) are validated by msgspec while it
decodes; pydantic models (when pydantic is installed) by pydantic. A body that
is not JSON stays a 400; JSON of the wrong shape is a :class:`ValidationError`,
a 422 answered with an ``application/problem+json`` body (RFC 9457) unless an
error route answers it.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from .errors import HTTPError

PROBLEM_JSON = "application/problem+json"

_AT = re.compile(r"^(.*) - at `\$(.*)`$", re.DOTALL)
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[\.\.\.\]")
_MISSING = re.compile(r"missing required field `([^`]+)`")
_decoders: dict[Any, Any] = {}


class ValidationError(HTTPError):
    """A body (or value) that does not match its declared type: 422.

    ``errors``: one ``{"loc": [...], "pointer": "/a/0", "message": "..."}``
    per problem, ``loc`` naming the field from the top of the body
    (``["tags", 0]``) and ``pointer`` the same as a JSON Pointer (RFC 6901)."""

    def __init__(self, errors: list[dict[str, Any]], detail: str | None = None) -> None:
        super().__init__(422, detail or "The request body does not match the expected type")
        self.errors = errors

    def problem(self) -> dict[str, Any]:
        """The problem details object (RFC 9457) sent when no error route answers."""
        return {
            "type": "about:blank",
            "title": "Unprocessable Content",
            "status": 422,
            "detail": self.message,
            "errors": self.errors,
        }


def entry(loc: list[str | int], message: str) -> dict[str, Any]:
    pointer = "".join("/" + str(step).replace("~", "~0").replace("/", "~1") for step in loc)
    return {"loc": loc, "pointer": pointer, "message": message}


def is_pydantic(kind: Any) -> bool:
    """Whether ``kind`` is a pydantic model class (without importing pydantic)."""
    pydantic = sys.modules.get("pydantic")
    return (
        pydantic is not None and isinstance(kind, type) and issubclass(kind, pydantic.BaseModel)
    )


def decode_json(data: bytes, schema: Any) -> Any:
    """Decode the JSON ``data`` into an instance of ``schema``: ``HTTPError(400)``
    when it is not JSON, :class:`ValidationError` when it does not fit."""
    if is_pydantic(schema):
        return _pydantic(data, schema)
    decoder = _decoders.get(schema)
    if decoder is None:
        import msgspec

        decoder = msgspec.json.Decoder(schema)
        if len(_decoders) < 1024:
            _decoders[schema] = decoder
    try:
        return decoder.decode(data)
    except Exception as exc:
        import msgspec

        if isinstance(exc, msgspec.ValidationError):
            raise ValidationError([_msgspec_entry(str(exc))]) from None
        if isinstance(exc, msgspec.DecodeError):
            raise HTTPError(400, f"malformed JSON: {exc}") from None
        raise


def convert(value: Any, schema: Any) -> Any:
    """Validate already-decoded data (``dict``, ``list``...) into ``schema``."""
    if is_pydantic(schema):
        import pydantic

        try:
            return schema.model_validate(value)
        except pydantic.ValidationError as exc:
            raise ValidationError(_pydantic_entries(exc)) from None
    import msgspec

    try:
        return msgspec.convert(value, schema)
    except msgspec.ValidationError as exc:
        raise ValidationError([_msgspec_entry(str(exc))]) from None


def _msgspec_entry(text: str) -> dict[str, Any]:
    """``Expected `int`, got `str` - at `$.tags[0]``` to an error entry."""
    found = _AT.match(text)
    message, where = found.groups() if found is not None else (text, "")
    loc: list[str | int] = []
    for step in _STEP.finditer(where):
        field, index = step.groups()
        if field is not None:
            loc.append(field)
        elif index is not None:
            loc.append(int(index))
        else:
            loc.append("...")  # a dict key msgspec does not name
    missing = _MISSING.search(message)
    if missing is not None:
        loc.append(missing.group(1))
    return entry(loc, message)


def _pydantic(data: bytes, schema: Any) -> Any:
    import pydantic

    try:
        return schema.model_validate_json(data)
    except pydantic.ValidationError as exc:
        errors = exc.errors()
        if any(error["type"] == "json_invalid" for error in errors):
            raise HTTPError(400, f"malformed JSON: {errors[0]['msg']}") from None
        raise ValidationError(_pydantic_entries(exc)) from None


def _pydantic_entries(exc: Any) -> list[dict[str, Any]]:
    return [entry(list(error["loc"]), error["msg"]) for error in exc.errors()]


__all__ = ["PROBLEM_JSON", "ValidationError", "convert", "decode_json", "is_pydantic"]

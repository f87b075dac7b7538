"""What send() makes of each kind of value."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from simples.encode import encode_body


@dataclasses.dataclass
class Item:
    name: str


@pytest.mark.parametrize(
    ("value", "body", "kind"),
    [
        ("é", "é".encode(), "text/plain; charset=utf-8"),
        (b"x", b"x", "application/octet-stream"),
        (bytearray(b"y"), b"y", "application/octet-stream"),
        ({"k": [1, None]}, b'{"k":[1,null]}', "application/json"),
        ((1, 2), b"[1,2]", "application/json"),
        (False, b"false", "application/json"),
        (Item("a"), b'{"name":"a"}', "application/json"),
        (2**70, str(2**70).encode(), "application/json"),
        (None, b"", None),
    ],
)
def test_encode_body(value: object, body: bytes, kind: str | None) -> None:
    assert encode_body(value) == (body, kind)


def test_unsupported_values_raise_type_error() -> None:
    with pytest.raises(TypeError, match="send"):
        encode_body(Decimal("1.5"))
    with pytest.raises(TypeError):
        encode_body({"x": object()})

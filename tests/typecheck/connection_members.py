"""Checked by mypy --strict (``./dev lint``, ``./dev test``), never run: what a
user's type checker learns from the connection's getter/setter members."""

from __future__ import annotations

from typing import assert_type

from simples import HTTPConnection
from simples.response import Response


async def members(connection: HTTPConnection) -> None:
    assert_type(connection.status(), int)
    assert_type(connection.status(201), HTTPConnection)
    assert_type(connection.header("x-a"), str | list[str] | None)
    assert_type(connection.header("x-a", "1"), HTTPConnection)
    assert_type(connection.type(), str | None)
    assert_type(connection.type("json"), HTTPConnection)
    assert_type(connection.cache(), str | None)
    assert_type(connection.cache({"max_age": 60}), HTTPConnection)
    assert_type(connection.cache(max_age=60), HTTPConnection)
    assert_type(connection.lang(), str | None)
    assert_type(connection.lang("en"), HTTPConnection)
    assert_type(connection.links(), str | None)
    assert_type(connection.links({"next": "/2"}), HTTPConnection)
    assert_type(connection.keep(), float | None)
    assert_type(connection.keep(5), HTTPConnection)
    assert_type(connection.response, Response)
    # chaining keeps the type all the way
    assert_type(connection.status(201).header("x-b", 2).type("json").lang("en"), HTTPConnection)

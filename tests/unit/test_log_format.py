"""Log formats: compiled once, tokens resolved, values escaped to one line."""

from __future__ import annotations

from simples.log import _escape, compile_format


def test_compile_splits_literals_and_tokens() -> None:
    assert compile_format("%method %req[User-Agent] -> %res[x-a] %short-date!") == [
        ("", "method"),
        " ",
        ("req", "user-agent"),
        " -> ",
        ("res", "x-a"),
        " ",
        ("", "short-date"),
        "!",
    ]


def test_compile_is_cached() -> None:
    assert compile_format("%path") is compile_format("%path")


def test_escape_keeps_one_line() -> None:
    assert _escape("a\r\nb\x00c\\d\x7f") == "a\\x0d\\x0ab\\x00c\\\\d\\x7f"
    assert _escape("ünïcode ok") == "ünïcode ok"

"""Log formats: compiled once, tokens resolved, values escaped to one line."""

from __future__ import annotations

import time
from typing import Any

from simples.log import BUILTIN, compile_format, format_line


def test_compile_splits_literals_and_resolves_tokens() -> None:
    mine = lambda c: "mine"  # noqa: E731
    parts = compile_format("%method %req[User-Agent] -> %res[x-a] %mine %nope!", {"mine": mine})
    literals = [part if isinstance(part, str) else None for part in parts]
    assert literals == [None, " ", None, " -> ", None, " ", None, " ", "%nope", "!"]
    assert parts[0] is BUILTIN["method"]
    assert parts[6] is mine
    assert all(callable(part) for part in parts if not isinstance(part, str))


def test_custom_tokens_come_before_built_in_ones() -> None:
    mine = lambda c: "x"  # noqa: E731
    assert compile_format("%path", {"path": mine}) == [mine]
    assert compile_format("%path") == [BUILTIN["path"]]


def test_compile_is_cached_without_custom_tokens() -> None:
    assert compile_format("%path") is compile_format("%path")
    tokens = {"a": lambda c: "a"}
    assert compile_format("%a", tokens) is not compile_format("%a", tokens)


def _now(pattern: str) -> str:
    # The tokens read time.time(). time.strftime() without a tuple reads C's
    # time(), the coarse clock, which can lag a tick behind at a second's edge.
    return time.strftime(pattern, time.localtime(time.time()))


def test_clock_tokens_give_the_local_time() -> None:
    before = _now("%Y-%m-%d %H:%M:%S")
    stamp = BUILTIN["date"](None)  # type: ignore[arg-type]
    after = _now("%Y-%m-%d %H:%M:%S")
    assert stamp in (before, after)
    day = BUILTIN["short-date"](None)  # type: ignore[arg-type]
    assert day in (stamp[:10], _now("%Y-%m-%d"))  # midnight may pass meanwhile


def test_values_are_escaped_to_keep_one_line() -> None:
    def line(value: str) -> str:
        return format_line(None, "[%v]", {"v": lambda c: value})  # type: ignore[arg-type]

    assert line("a\r\nb\x00c\\d\x7f") == "[a\\x0d\\x0ab\\x00c\\\\d\\x7f]"
    assert line("ünïcode ok") == "[ünïcode ok]"
    tokens: dict[str, Any] = {"n": lambda c: 42}  # a custom token need not give a str
    assert format_line(None, "%n", tokens) == "42"  # type: ignore[arg-type]

import time

import pytest

from simples.http.ranges import (
    MAX_RANGES,
    content_range,
    merge_ranges,
    multipart_heads,
    parse_range,
    unsatisfied_range,
)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-4", [(0, 5)]),
        ("bytes=5-", [(5, 100)]),
        ("bytes=-3", [(97, 100)]),
        ("bytes=90-1000", [(90, 100)]),  # last-pos past the end is clipped
        ("bytes=-1000", [(0, 100)]),  # a suffix longer than the content takes it all
        ("bytes=99-99", [(99, 100)]),
        ("bytes=0-0", [(0, 1)]),
        ("Bytes=0-4", [(0, 5)]),  # the unit is case-insensitive
        ("bytes= 0-1 , 3-4 ", [(0, 2), (3, 5)]),  # optional whitespace around members
        ("bytes=0-1,,3-4", [(0, 2), (3, 5)]),  # empty list members count for nothing
    ],
)
def test_satisfiable_ranges(header: str, expected: list[tuple[int, int]]) -> None:
    assert parse_range(header, 100) == expected


def test_overlapping_and_adjacent_ranges_are_merged_and_sorted() -> None:
    assert parse_range("bytes=50-59,0-9,5-14,15-19", 100) == [(0, 20), (50, 60)]
    # merged down to one: the caller answers a plain 206, not multipart
    assert parse_range("bytes=0-10,5-20,-90", 100) == [(0, 100)]


def test_unsatisfiable_ranges_give_an_empty_list() -> None:
    assert parse_range("bytes=100-", 100) == []
    assert parse_range("bytes=200-300", 100) == []
    assert parse_range("bytes=-0", 100) == []
    assert parse_range("bytes=-0,100-", 100) == []
    assert parse_range("bytes=0-", 0) == []


def test_unsatisfiable_members_are_dropped_when_others_are_satisfiable() -> None:
    assert parse_range("bytes=500-600,0-1", 100) == [(0, 2)]
    assert parse_range("bytes=-0,0-1", 100) == [(0, 2)]


def test_suffix_range_on_empty_content_is_ignored_rather_than_refused() -> None:
    # §14.1.1 calls it satisfiable, yet "bytes 0--1/0" cannot be written: send all.
    assert parse_range("bytes=-5", 0) is None


@pytest.mark.parametrize(
    "header",
    [
        "bytes=5-1",  # last before first: invalid
        "items=0-1",  # unknown unit
        "bytes",
        "bytes=",
        "bytes=,",
        "bytes=abc",
        "bytes=1",
        "bytes=1-2-3",
        "bytes=-",
        "bytes=--1",
        "bytes=0x10-0x20",
        "bytes=+1-2",
        "bytes=1.5-2",
        "bytes=٠-٤",  # Arabic-Indic digits: int() would accept them
        "bytes=²-3",  # superscript two: str.isdigit() would accept it
        "bytes=0-１",  # fullwidth one
        "bytes=" + "9" * 40 + "-",  # longer than any offset
        "=0-1",
    ],
)
def test_malformed_headers_are_ignored(header: str) -> None:
    assert parse_range(header, 100) is None


def test_more_than_the_limit_is_ignored_and_the_limit_itself_is_not() -> None:
    exactly = "bytes=" + ",".join(f"{2 * i}-{2 * i}" for i in range(MAX_RANGES))
    assert parse_range(exactly, 1000) is not None
    over = "bytes=" + ",".join(f"{2 * i}-{2 * i}" for i in range(MAX_RANGES + 1))
    assert parse_range(over, 1000) is None


def test_ten_thousand_ranges_are_rejected_quickly() -> None:
    header = "bytes=" + ",".join(["0-0"] * 10_000)
    started = time.perf_counter()
    assert parse_range(header, 1000) is None
    assert time.perf_counter() - started < 0.05


def test_many_ranges_merge_in_n_log_n() -> None:
    ranges = [(i, i + 2) for i in range(100_000, 0, -1)]
    started = time.perf_counter()
    assert merge_ranges(ranges) == [(1, 100_002)]
    assert time.perf_counter() - started < 1.0


def test_content_range_values() -> None:
    assert content_range(0, 500, 1234) == "bytes 0-499/1234"
    assert content_range(1233, 1234, 1234) == "bytes 1233-1233/1234"
    assert unsatisfied_range(1234) == "bytes */1234"


def test_multipart_total_length_matches_the_assembled_body() -> None:
    content = bytes(range(256)) * 4
    ranges = [(0, 10), (100, 150), (1000, 1024)]
    heads, tail, total = multipart_heads(ranges, len(content), "text/plain", "BOUNDARY")
    body = b"".join(
        head + content[start:stop] for head, (start, stop) in zip(heads, ranges, strict=True)
    )
    body += tail
    assert len(body) == total
    assert body.startswith(b"--BOUNDARY\r\ncontent-type: text/plain\r\n")
    assert b"\r\ncontent-range: bytes 100-149/1024\r\n\r\n" in body
    assert body.endswith(b"\r\n--BOUNDARY--\r\n")
    # every part after the first opens with CRLF before its delimiter
    assert body.count(b"\r\n--BOUNDARY\r\n") == 2

import pytest

from simples.http.conditional import (
    evaluate,
    if_range,
    make_etag,
    parse_etags,
    strong_match,
    weak_match,
)
from simples.http.dates import format_http_date

MODIFIED = 1_700_000_000  # Last-Modified of the representation, in seconds
ETAG = '"abc"'
BEFORE = format_http_date(MODIFIED - 60)
AT = format_http_date(MODIFIED)
AFTER = format_http_date(MODIFIED + 60)


def check(
    method: str = "GET",
    if_match: str | None = None,
    if_unmodified_since: str | None = None,
    if_none_match: str | None = None,
    if_modified_since: str | None = None,
) -> int | None:
    return evaluate(
        method, if_match, if_unmodified_since, if_none_match, if_modified_since, ETAG, MODIFIED
    )


def test_make_etag_is_strong_quoted_and_changes_with_size_time_and_coding() -> None:
    tag = make_etag(4096, 1_700_000_000_123_456_789)
    assert tag.startswith('"')
    assert tag.endswith('"')
    assert tag != make_etag(4097, 1_700_000_000_123_456_789)
    assert tag != make_etag(4096, 1_700_000_000_123_456_790)  # nanoseconds count
    assert make_etag(4096, 1, "br") != make_etag(4096, 1, "gzip")


def test_parse_etags() -> None:
    assert parse_etags("*") is None
    assert parse_etags(" * ") is None
    assert parse_etags('"a", W/"b",  "c"') == ['"a"', 'W/"b"', '"c"']
    assert parse_etags('"a,b", "c"') == ['"a,b"', '"c"']  # a comma inside a tag
    assert parse_etags('junk, "a", W/junk, "b') == ['"a"']  # malformed members dropped
    assert parse_etags("") == []
    assert len(parse_etags(", ".join(['"x"'] * 10_000)) or []) == 64  # bounded


def test_strong_and_weak_comparison() -> None:
    assert strong_match(['"abc"'], '"abc"')
    assert not strong_match(['W/"abc"'], '"abc"')
    assert not strong_match(['"abc"'], 'W/"abc"')
    assert weak_match(['W/"abc"'], '"abc"')
    assert weak_match(['"abc"'], 'W/"abc"')
    assert not weak_match(['"abd"'], '"abc"')
    assert strong_match(None, '"abc"')  # "*"
    assert weak_match(None, '"abc"')


def test_no_conditional_headers_go_on() -> None:
    assert check() is None


def test_if_match() -> None:
    assert check(if_match='"abc"') is None
    assert check(if_match='"x", "abc"') is None
    assert check(if_match="*") is None
    assert check(if_match='"other"') == 412
    assert check(if_match='W/"abc"') == 412  # If-Match compares strongly


def test_if_match_wins_over_if_unmodified_since() -> None:
    # §13.2.2 step 2 runs only when If-Match is absent
    assert check(if_match='"abc"', if_unmodified_since=BEFORE) is None


def test_if_unmodified_since() -> None:
    assert check(if_unmodified_since=AT) is None
    assert check(if_unmodified_since=AFTER) is None
    assert check(if_unmodified_since=BEFORE) == 412
    assert check(if_unmodified_since="not a date") is None


def test_if_none_match() -> None:
    assert check(if_none_match='"abc"') == 304
    assert check(if_none_match='W/"abc"') == 304  # weak comparison
    assert check(if_none_match='"x", W/"abc"') == 304
    assert check(if_none_match="*") == 304
    assert check(if_none_match='"other"') is None
    assert check("HEAD", if_none_match='"abc"') == 304
    assert check("POST", if_none_match='"abc"') == 412
    assert check("PUT", if_none_match="*") == 412


def test_if_none_match_wins_over_if_modified_since() -> None:
    assert check(if_none_match='"other"', if_modified_since=AFTER) is None


def test_if_modified_since() -> None:
    assert check(if_modified_since=AT) == 304
    assert check(if_modified_since=AFTER) == 304
    assert check(if_modified_since=BEFORE) is None
    assert check("POST", if_modified_since=AFTER) is None  # GET and HEAD only


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        "",
        "Sun, 31 Feb 2021 10:00:00 GMT",  # no such day
        "Sun, 06 Nov 1994 25:00:00 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT",  # two members
        "Sun, ٠٦ Nov 1994 08:49:37 GMT",
        "x" * 10_000,
    ],
)
def test_invalid_dates_are_ignored(value: str) -> None:
    assert check(if_modified_since=value) is None
    assert check(if_unmodified_since=value) is None


def test_precondition_before_cache_validation() -> None:
    assert check(if_match='"other"', if_none_match='"abc"') == 412


def test_if_range() -> None:
    assert if_range('"abc"', ETAG, MODIFIED)
    assert not if_range('"other"', ETAG, MODIFIED)
    assert not if_range('W/"abc"', ETAG, MODIFIED)  # a weak tag never validates a range
    assert not if_range('"abc"', 'W/"abc"', MODIFIED)
    assert if_range(AT, ETAG, MODIFIED)
    assert not if_range(AFTER, ETAG, MODIFIED)  # only an exact date match
    assert not if_range(BEFORE, ETAG, MODIFIED)
    assert not if_range("garbage", ETAG, MODIFIED)
    assert not if_range(AT, ETAG, None)

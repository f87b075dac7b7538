import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from simples.http import cookies
from simples.http.cookies import cookie_line, parse_cookies, serialize_cookie
from simples.http.dates import parse_http_date

# --- parse_cookies ---------------------------------------------------------------


def test_parse_simple() -> None:
    assert parse_cookies("a=1; b=2") == {"a": "1", "b": "2"}


def test_parse_empty_header() -> None:
    assert parse_cookies("") == {}
    assert parse_cookies("   ") == {}
    assert parse_cookies(";;;") == {}


def test_parse_trims_spaces_and_tabs() -> None:
    assert parse_cookies("  a = 1 ;\tb=2\t;c=3") == {"a": "1", "b": "2", "c": "3"}


def test_parse_without_space_after_semicolon() -> None:
    assert parse_cookies("a=1;b=2") == {"a": "1", "b": "2"}


def test_parse_quoted_value() -> None:
    assert parse_cookies('a="hello world"; b=""') == {"a": "hello world", "b": ""}


def test_parse_lone_quote_is_kept() -> None:
    assert parse_cookies('a="; b=x"') == {"a": '"', "b": 'x"'}


def test_parse_empty_value() -> None:
    assert parse_cookies("a=; b=2") == {"a": "", "b": "2"}


def test_parse_value_with_equals() -> None:
    assert parse_cookies("token=abc==; b=a=b") == {"token": "abc==", "b": "a=b"}


def test_parse_percent_decodes() -> None:
    assert parse_cookies("a=hello%20world; b=%E2%98%83; c=100%25") == {
        "a": "hello world",
        "b": "☃",
        "c": "100%",
    }


def test_parse_percent_decodes_inside_quotes() -> None:
    assert parse_cookies('a="x%3By"') == {"a": "x;y"}


def test_parse_plus_is_not_space() -> None:
    assert parse_cookies("a=1+1") == {"a": "1+1"}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("a=%", "%"),
        ("a=%2", "%2"),
        ("a=%zz", "%zz"),
        ("a=100%", "100%"),
        ("a=%%41", "%A"),
        ("a=%G0x", "%G0x"),
        ("a=%ff", "\ufffd"),
        ("a=%C3", "\ufffd"),
        ("a=%C3%A9", "é"),
    ],
)
def test_parse_malformed_escapes_never_raise(header: str, expected: str) -> None:
    assert parse_cookies(header) == {"a": expected}


def test_parse_first_duplicate_wins() -> None:
    assert parse_cookies("a=1; a=2; b=3; a=4") == {"a": "1", "b": "3"}


def test_parse_first_duplicate_wins_even_if_later_is_valid_and_first_empty() -> None:
    assert parse_cookies("a=; a=2") == {"a": ""}


@pytest.mark.parametrize(
    "header",
    [
        "novalue",
        "=value",
        " =value",
        "a b=1",
        "a,b=1",
        'a"b=1',
        "a(b)=1",
        "a[b]=1",
        "a\x00=1",
        "a\x7f=1",
        "é=1",
        "a/b=1",
        "a:b=1",
        "a@b=1",
        "a{b}=1",
        "a\\b=1",
    ],
)
def test_parse_skips_malformed_pairs(header: str) -> None:
    assert parse_cookies(f"{header}; ok=yes") == {"ok": "yes"}


def test_parse_keeps_unusual_but_valid_names() -> None:
    names = ["__Host-id", "__Secure-x", "a.b", "a_b", "A-B", "x!#$%&'*+^`|~"]
    header = "; ".join(f"{name}=v{i}" for i, name in enumerate(names))
    assert parse_cookies(header) == {name: f"v{i}" for i, name in enumerate(names)}


def test_parse_names_are_case_sensitive() -> None:
    assert parse_cookies("A=1; a=2") == {"A": "1", "a": "2"}


def test_parse_10000_pairs() -> None:
    header = "; ".join(f"c{i}=v{i}" for i in range(10_000))
    cookies = parse_cookies(header)
    assert len(cookies) == 10_000
    assert cookies["c0"] == "v0"
    assert cookies["c9999"] == "v9999"


def test_parse_50kb_header() -> None:
    value = "x" * 50_000
    assert parse_cookies(f"big={value}; small=1") == {"big": value, "small": "1"}


def test_parse_50kb_of_escapes() -> None:
    value = "%41" * 17_000
    assert parse_cookies(f"a={value}") == {"a": "A" * 17_000}


def test_parse_50kb_of_broken_escapes() -> None:
    value = "%" * 50_000
    assert parse_cookies(f"a={value}") == {"a": value}


def test_parse_50kb_of_separators_and_junk() -> None:
    assert parse_cookies(";" * 50_000) == {}
    assert parse_cookies("=" * 50_000) == {}
    assert parse_cookies("a" * 50_000) == {}
    assert parse_cookies("a=1;" + ";=;" * 20_000 + "b=2") == {"a": "1", "b": "2"}


def test_parse_100000_duplicates_linear() -> None:
    header = "; ".join(["same=%41%42"] * 100_000)
    assert parse_cookies(header) == {"same": "AB"}


def test_parse_100000_distinct_pairs_linear() -> None:
    header = ";".join(f"k{i}={i}" for i in range(100_000))
    cookies = parse_cookies(header)
    assert len(cookies) == 100_000
    assert cookies["k54321"] == "54321"


# --- serialize_cookie ------------------------------------------------------------


def test_serialize_plain() -> None:
    assert serialize_cookie("a", "1") == "a=1"


def test_serialize_empty_value() -> None:
    assert serialize_cookie("a", "") == "a="


def test_serialize_all_attributes_in_order() -> None:
    header = serialize_cookie(
        "id",
        "abc",
        max_age=60,
        expires=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
        path="/",
        domain="example.com",
        secure=True,
        http_only=True,
        same_site="lax",
        partitioned=True,
    )
    assert header == (
        "id=abc; Max-Age=60; Expires=Wed, 02 Jan 2030 03:04:05 GMT; Domain=example.com; "
        "Path=/; Secure; HttpOnly; SameSite=Lax; Partitioned"
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [("strict", "Strict"), ("LAX", "Lax"), ("Lax", "Lax"), ("None", "None"), ("none", "None")],
)
def test_serialize_same_site(given: str, expected: str) -> None:
    assert serialize_cookie("a", "1", same_site=given, secure=True).endswith(
        f"Secure; SameSite={expected}"
    )


@pytest.mark.parametrize("bad", ["", "always", "strict ", "lax;", "None\r\n"])
def test_serialize_same_site_invalid(bad: str) -> None:
    with pytest.raises(ValueError, match="same_site"):
        serialize_cookie("a", "1", same_site=bad, secure=True)


def test_serialize_same_site_non_string_is_value_error() -> None:
    with pytest.raises(ValueError, match="same_site"):
        serialize_cookie("a", "1", same_site=True, secure=True)  # type: ignore[arg-type]


def test_serialize_same_site_none_requires_secure() -> None:
    with pytest.raises(ValueError, match="secure"):
        serialize_cookie("a", "1", same_site="none")


def test_serialize_partitioned_requires_secure() -> None:
    with pytest.raises(ValueError, match="secure"):
        serialize_cookie("a", "1", partitioned=True)
    assert serialize_cookie("a", "1", partitioned=True, secure=True) == ("a=1; Secure; Partitioned")


def test_serialize_flags_only_when_true() -> None:
    assert serialize_cookie("a", "1", secure=False, http_only=False) == "a=1"
    assert serialize_cookie("a", "1", http_only=True) == "a=1; HttpOnly"


def test_serialize_max_age() -> None:
    assert serialize_cookie("a", "1", max_age=0) == "a=1; Max-Age=0"
    assert serialize_cookie("a", "1", max_age=3600) == "a=1; Max-Age=3600"
    assert serialize_cookie("a", "1", max_age=1.9) == "a=1; Max-Age=1"  # type: ignore[arg-type]


def test_serialize_negative_max_age_is_zero() -> None:
    assert serialize_cookie("a", "1", max_age=-5) == "a=1; Max-Age=0"


@pytest.mark.parametrize("bad", [True, "60", [60], None.__class__])
def test_serialize_max_age_invalid(bad: object) -> None:
    with pytest.raises(ValueError, match="max_age"):
        serialize_cookie("a", "1", max_age=bad)  # type: ignore[arg-type]


def test_serialize_expires_aware_datetime_is_converted_to_gmt() -> None:
    plus_two = timezone(timedelta(hours=2))
    header = serialize_cookie("a", "1", expires=datetime(2030, 1, 1, 2, 0, 0, tzinfo=plus_two))
    assert header == "a=1; Expires=Tue, 01 Jan 2030 00:00:00 GMT"


def test_serialize_expires_naive_datetime_is_utc() -> None:
    header = serialize_cookie("a", "1", expires=datetime(2030, 1, 1, 0, 0, 0))
    assert header == "a=1; Expires=Tue, 01 Jan 2030 00:00:00 GMT"


@pytest.mark.parametrize("seconds", [3600, 3600.0])
def test_serialize_expires_seconds_from_now(seconds: float) -> None:
    before = int(time.time())
    header = serialize_cookie("a", "1", expires=seconds)
    after = int(time.time()) + 1
    assert header.startswith("a=1; Expires=")
    stamp = parse_http_date(header.removeprefix("a=1; Expires="))
    assert stamp is not None
    assert before + 3600 <= stamp <= after + 3600


@pytest.mark.parametrize("bad", [True, "tomorrow", object()])
def test_serialize_expires_invalid(bad: object) -> None:
    with pytest.raises(ValueError, match="expires"):
        serialize_cookie("a", "1", expires=bad)  # type: ignore[arg-type]


def test_serialize_delete() -> None:
    assert serialize_cookie("a", None) == ("a=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT")


def test_serialize_delete_keeps_path_and_domain_and_ignores_lifetime() -> None:
    header = serialize_cookie(
        "a", None, path="/app", domain="example.com", max_age=60, expires=60, secure=True
    )
    assert header == (
        "a=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Domain=example.com; "
        "Path=/app; Secure"
    )


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a b",
        "a;b",
        "a=b",
        "a,b",
        'a"b',
        "a\r\nb",
        "a\x00",
        "é",
        "a(b)",
        "a[b]",
        "a/b",
        "a:b",
        "a\t",
    ],
)
def test_serialize_invalid_name(name: str) -> None:
    with pytest.raises(ValueError, match="cookie name"):
        serialize_cookie(name, "1")


def test_serialize_non_string_name_or_value() -> None:
    with pytest.raises(ValueError, match="cookie name"):
        serialize_cookie(1, "1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cookie value"):
        serialize_cookie("a", 1)  # type: ignore[arg-type]


@pytest.mark.parametrize("attribute", ["path", "domain"])
@pytest.mark.parametrize(
    "bad", ["", "/a;b", "/a\r\nSet-Cookie: x=1", "/a\n", "/a\x00", "/a\x01", "/a\x7f", "/é"]
)
def test_serialize_invalid_path_or_domain(attribute: str, bad: str) -> None:
    with pytest.raises(ValueError, match=attribute):
        serialize_cookie("a", "1", **{attribute: bad})  # type: ignore[arg-type]


def test_serialize_path_with_spaces_and_symbols_is_allowed() -> None:
    assert serialize_cookie("a", "1", path="/a b/~x") == "a=1; Path=/a b/~x"


def test_serialize_encodes_outside_cookie_octets() -> None:
    assert serialize_cookie("a", 'x y;z,"w\\%') == "a=x%20y%3Bz%2C%22w%5C%25"


def test_serialize_keeps_cookie_octets() -> None:
    octets = "!#$&'()*+-./0123456789:<=>?@ABCXYZ[]^_`abcxyz{|}~"
    assert serialize_cookie("a", octets) == f"a={octets}"


def test_serialize_value_is_ascii_and_header_safe() -> None:
    header = serialize_cookie("a", "é ☃ 😀 \r\n\x00\t\x7f")
    assert header.isascii()
    for forbidden in ' ;,"\\\r\n\x00\t\x7f':
        assert forbidden not in header.removeprefix("a=")


def test_serialize_lone_surrogate_is_value_error() -> None:
    with pytest.raises(ValueError, match="cookie value"):
        serialize_cookie("a", "\ud800")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "__Secure-"),
        ({"secure": False, "path": "/"}, "__Secure-"),
    ],
)
def test_serialize_secure_prefix_requires_secure(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        serialize_cookie("__Secure-id", "1", **kwargs)  # type: ignore[arg-type]
    assert serialize_cookie("__Secure-id", "1", secure=True) == "__Secure-id=1; Secure"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"secure": True},
        {"secure": True, "path": "/app"},
        {"secure": True, "path": "/", "domain": "example.com"},
        {"path": "/"},
    ],
)
def test_serialize_host_prefix_rules(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="__Host-"):
        serialize_cookie("__Host-id", "1", **kwargs)  # type: ignore[arg-type]


def test_serialize_host_prefix_valid_and_case_insensitive() -> None:
    assert serialize_cookie("__Host-id", "1", secure=True, path="/") == (
        "__Host-id=1; Path=/; Secure"
    )
    with pytest.raises(ValueError, match="__Host-"):
        serialize_cookie("__HOST-id", "1")


ROUND_TRIP_VALUES = [
    "",
    "plain",
    "hello world",
    " leading and trailing ",
    "semi;colon",
    "comma,separated",
    'double"quote',
    '"fully quoted"',
    "percent%",
    "%41 already encoded looking",
    "%",
    "%%",
    "%zz",
    "back\\slash",
    "plus+sign",
    "equals=sign==",
    "tab\there",
    "new\nline\r\n",
    "nul\x00byte",
    "del\x7f",
    "unicode é ñ ü",
    "snow ☃",
    "emoji 😀🎉👨‍👩‍👧",
    "中文字符",
    "עברית",
    "\u200b zero width",
    "{json: [1, 2]}",
    '{"a": "b; c", "d": 1}',
    "a" * 4000,
    "".join(chr(c) for c in range(32, 127)),
    "".join(chr(c) for c in range(32)),
]


@pytest.mark.parametrize("value", ROUND_TRIP_VALUES)
def test_round_trip(value: str) -> None:
    header = serialize_cookie("name", value, path="/", http_only=True)
    name_value = header.split("; ")[0]
    assert parse_cookies(name_value) == {"name": value}
    # The same pair inside a full Cookie header with neighbours.
    assert parse_cookies(f"x=1; {name_value}; y=2") == {"x": "1", "name": value, "y": "2"}


def test_round_trip_every_bmp_character_block() -> None:
    for start in range(0, 0xD800, 0x400):
        value = "".join(chr(c) for c in range(start, start + 0x400))
        pair = serialize_cookie("v", value)
        assert parse_cookies(pair) == {"v": value}


def test_round_trip_many_cookies() -> None:
    values = {f"c{i}": f"value {i}; ☃ {i}%" for i in range(1000)}
    header = "; ".join(serialize_cookie(name, value) for name, value in values.items())
    assert parse_cookies(header) == values


# Issue #18: numbers that are not finite, and dates that browsers do not read.


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan")])
def test_serialize_max_age_not_finite_is_value_error(bad: float) -> None:
    with pytest.raises(ValueError, match="max_age"):
        serialize_cookie("a", "1", max_age=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan")])
def test_serialize_expires_not_finite_is_value_error(bad: float) -> None:
    with pytest.raises(ValueError, match="expires"):
        serialize_cookie("a", "1", expires=bad)


EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"
LAST = "Fri, 31 Dec 9999 23:59:59 GMT"


@pytest.mark.parametrize(
    "when",
    [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))),
        datetime(1600, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(1601, 1, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59),
        -1e300,
        -(10**400),
        -100 * 365 * 86400,
    ],
)
def test_serialize_expires_in_the_far_past_is_the_epoch(when: datetime | float) -> None:
    # RFC 6265 §5.1.1: a year before 1601 (or a negative one) is ignored by the
    # browser, and the cookie meant to expire would live on.
    assert serialize_cookie("a", "1", expires=when) == f"a=1; Expires={EPOCH}"


@pytest.mark.parametrize(
    "when",
    [
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 0, 0, tzinfo=timezone(timedelta(hours=-14))),
        1e300,
        10**400,
        # Year 10000 and beyond, as seconds from now.
        (datetime(10000 - 1, 12, 31, tzinfo=UTC) - datetime.now(UTC)).total_seconds() + 2 * 86400,
    ],
)
def test_serialize_expires_after_year_9999_is_clamped(when: datetime | float) -> None:
    assert serialize_cookie("a", "1", expires=when) == f"a=1; Expires={LAST}"


def test_serialize_expires_every_clamped_value_parses_back() -> None:
    for when in (datetime(1, 1, 1, tzinfo=UTC), 10**400):
        header = serialize_cookie("a", "1", expires=when)
        assert parse_http_date(header.removeprefix("a=1; Expires=")) is not None


def test_serialize_huge_finite_max_age_is_kept() -> None:
    assert serialize_cookie("a", "1", max_age=1e18) == "a=1; Max-Age=1000000000000000000"  # type: ignore[arg-type]


# ------------------------------------------------- cookie_line (the cached way)

LINE_CASES: list[tuple[str, str | None, dict[str, Any]]] = [
    ("seen", "1", {"http_only": True, "path": "/"}),
    ("seen", "2", {"http_only": True, "path": "/"}),  # same attributes, another value
    ("sid", "abc", {"max_age": 3600, "secure": True, "same_site": "lax"}),
    ("sid", "abc", {"max_age": 3600.7, "secure": True, "same_site": "Lax"}),
    ("sp", "a b;c", {"path": "/"}),  # percent-encoded: not cached
    ("gone", None, {"path": "/"}),  # a deletion
    ("__Host-id", "x", {"secure": True, "path": "/"}),
    ("e", "", {"domain": "example.com"}),
]


@pytest.mark.parametrize(("name", "value", "options"), LINE_CASES)
def test_cookie_line_is_serialize_cookie(
    name: str, value: str | None, options: dict[str, Any]
) -> None:
    for _ in range(2):  # the first call fills the cache, the second reads it
        assert cookie_line(name, value, options) == serialize_cookie(name, value, **options)


REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("m", {"max_age": True}, "max_age"),  # equal to 1 as a key, and 1 was cached
    ("m", {"max_age": float("inf")}, "max_age"),
    ("m", {"path": ["/"]}, "path"),  # unhashable
    ("bad name", {}, "name"),
    ("__Host-x", {"secure": True, "path": "/a"}, "__Host-"),
    ("n", {"same_site": "none"}, "secure=True"),
]


@pytest.mark.parametrize(("name", "options", "said"), REFUSED)
def test_cookie_line_refuses_what_serialize_cookie_refuses_even_after_a_hit(
    name: str, options: dict[str, Any], said: str
) -> None:
    assert cookie_line("m", "1", {"max_age": 1}) == "m=1; Max-Age=1"
    for _ in range(2):
        with pytest.raises(ValueError, match=said):
            cookie_line(name, "1", options)


def test_cookie_line_with_expires_is_computed_each_time() -> None:
    # a number of seconds is relative to now: never served from the cache
    before = dict(cookies._TAILS)
    line = cookie_line("t", "1", {"expires": 60, "path": "/"})
    assert line.startswith("t=1; Expires=")
    assert line.endswith("; Path=/")
    assert before == cookies._TAILS

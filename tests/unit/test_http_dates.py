import calendar
import time

import pytest

from simples.http.dates import format_http_date, parse_http_date

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
RFC_EXAMPLE = 784111777.0  # Sun, 06 Nov 1994 08:49:37 GMT, the RFC 9110 example


def test_format_rfc_example() -> None:
    assert format_http_date(RFC_EXAMPLE) == "Sun, 06 Nov 1994 08:49:37 GMT"


def test_format_epoch() -> None:
    assert format_http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"


def test_format_truncates_fractions() -> None:
    assert format_http_date(RFC_EXAMPLE + 0.999) == "Sun, 06 Nov 1994 08:49:37 GMT"


def test_format_pads_and_names_every_month_and_day() -> None:
    seen_days = set()
    for month in range(1, 13):
        stamp = calendar.timegm((2024, month, 3, 4, 5, 6, 0, 0, 0))
        text = format_http_date(stamp)
        assert text[5:7] == "03"
        assert text.endswith(" 2024 04:05:06 GMT")
        assert text[8:11] == MONTHS[month - 1]
        seen_days.add(text[:3])
    for day in range(1, 8):
        seen_days.add(format_http_date(calendar.timegm((2024, 1, day, 0, 0, 0, 0, 0, 0)))[:3])
    assert seen_days == {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}


def test_format_is_not_locale_dependent() -> None:
    # strftime("%a") would follow LC_TIME; the output must be the English names.
    import locale

    previous = locale.setlocale(locale.LC_TIME)
    try:
        for name in ("de_DE.UTF-8", "fr_FR.UTF-8", "C.UTF-8", "C"):
            try:
                locale.setlocale(locale.LC_TIME, name)
            except locale.Error:
                continue
            assert format_http_date(RFC_EXAMPLE) == "Sun, 06 Nov 1994 08:49:37 GMT"
            assert parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == RFC_EXAMPLE
    finally:
        locale.setlocale(locale.LC_TIME, previous)


def test_format_out_of_range_is_value_error() -> None:
    with pytest.raises(ValueError, match="out of range"):
        format_http_date(1e20)


@pytest.mark.parametrize(
    "value",
    [
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
        "Sun Nov 06 08:49:37 1994",
        "  Sun, 06 Nov 1994 08:49:37 GMT  ",
        "sun, 06 nov 1994 08:49:37 gmt",
    ],
)
def test_parse_all_three_formats(value: str) -> None:
    assert parse_http_date(value) == RFC_EXAMPLE


def test_parse_round_trips_format() -> None:
    for stamp in (0, 1, 951782400, 1709210096, 2147483647, 4102444800, RFC_EXAMPLE):
        assert parse_http_date(format_http_date(stamp)) == float(int(stamp))


def test_parse_returns_float() -> None:
    result = parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT")
    assert isinstance(result, float)
    assert result == 0.0


def test_parse_leap_day() -> None:
    assert parse_http_date("Thu, 29 Feb 2024 00:00:00 GMT") == calendar.timegm(
        (2024, 2, 29, 0, 0, 0, 0, 0, 0)
    )


def test_parse_rfc850_two_digit_year_is_recent_past() -> None:
    current = time.gmtime().tm_year
    # A two-digit year one ahead of now is taken as this century.
    ahead = (current + 1) % 100
    parsed = parse_http_date(f"Monday, 01-Jan-{ahead:02d} 00:00:00 GMT")
    assert parsed is not None
    assert time.gmtime(parsed).tm_year == current + 1
    # One 60 years ahead is more than 50 years in the future: last century.
    far = (current + 60) % 100
    parsed = parse_http_date(f"Monday, 01-Jan-{far:02d} 00:00:00 GMT")
    assert parsed is not None
    assert time.gmtime(parsed).tm_year == current + 60 - 100


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        "Sun, 32 Nov 1994 08:49:37 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 31 Nov 1994 08:49:37 GMT",
        "Thu, 29 Feb 2023 00:00:00 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 06 13 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT",
        "Sun, 06 Nov 0000 08:49:37 GMT",
        "Xyz, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun,06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, ٠٦ Nov ١٩٩٤ ٠٨:٤٩:٣٧ GMT",
        "Sun, ０６ Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sun Nov  6 08:49:37 94",
        "1994-11-06T08:49:37Z",
        "784111777",
        "ſun, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT\x00",
        "Sun, 06 Nov 1994 08:49:37 GMT" + " " * 100,
        "Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT",
    ],
)
def test_parse_invalid_is_none(value: str) -> None:
    assert parse_http_date(value) is None


def test_parse_huge_input_is_none() -> None:
    assert parse_http_date("Sun, " * 100_000) is None


def test_parse_non_string_is_none() -> None:
    assert parse_http_date(None) is None  # type: ignore[arg-type]
    assert parse_http_date(784111777) is None  # type: ignore[arg-type]

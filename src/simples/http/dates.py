"""HTTP dates (RFC 9110 §5.6.7) without locale or ``email.utils`` dependence."""

import calendar
import re
import time

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NUMBER = {name.lower(): number for number, name in enumerate(_MONTHS, 1)}
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

_DAY = "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_LONG_DAY = "(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_MONTH = "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_TIME = "([0-9]{2}):([0-9]{2}):([0-9]{2})"
# [0-9] rather than \d: str patterns would otherwise accept any Unicode digit.
# Case-insensitive because real clients and caches are not always careful; ASCII
# so that case folding cannot admit look-alikes such as "ſ" for "s".
_IMF_FIXDATE = re.compile(
    rf"{_DAY}, ([0-9]{{2}}) {_MONTH} ([0-9]{{4}}) {_TIME} GMT", re.IGNORECASE | re.ASCII
)
_RFC850 = re.compile(
    rf"{_LONG_DAY}, ([0-9]{{2}})-{_MONTH}-([0-9]{{2}}) {_TIME} GMT", re.IGNORECASE | re.ASCII
)
_ASCTIME = re.compile(
    rf"{_DAY} {_MONTH} ([0-9]{{2}}| [0-9]) {_TIME} ([0-9]{{4}})", re.IGNORECASE | re.ASCII
)
# The longest valid form (RFC 850 with "Wednesday") is 37 characters.
_MAX_LENGTH = 40


def format_http_date(timestamp: float) -> str:
    """``Sun, 06 Nov 1994 08:49:37 GMT`` for a POSIX timestamp."""
    try:
        t = time.gmtime(timestamp)
    except (OverflowError, OSError) as exc:
        raise ValueError(f"timestamp out of range: {timestamp!r}") from exc
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


def parse_http_date(value: str) -> float | None:
    """The POSIX timestamp of an IMF-fixdate, RFC 850 or asctime date, or ``None``
    for anything else; a conditional request with a bad date must be treated as if
    the header were absent, so this never raises."""
    if not isinstance(value, str) or len(value) > _MAX_LENGTH:
        return None
    value = value.strip()
    match = _IMF_FIXDATE.fullmatch(value)
    if match is not None:
        day, month, year, hour, minute, second = match.groups()
        return _timestamp(int(year), month, int(day), hour, minute, second)
    match = _RFC850.fullmatch(value)
    if match is not None:
        day, month, year, hour, minute, second = match.groups()
        return _timestamp(_full_year(int(year)), month, int(day), hour, minute, second)
    match = _ASCTIME.fullmatch(value)
    if match is not None:
        month, day, hour, minute, second, year = match.groups()
        return _timestamp(int(year), month, int(day), hour, minute, second)
    return None


def _full_year(two_digits: int) -> int:
    # RFC 9110 §5.6.7: a two-digit year that looks more than 50 years in the future
    # is the most recent past year with those digits.
    current = time.gmtime().tm_year
    year = current - current % 100 + two_digits
    if year > current + 50:
        year -= 100
    return year


def _timestamp(
    year: int, month_name: str, day: int, hour: str, minute: str, second: str
) -> float | None:
    month = _MONTH_NUMBER[month_name.lower()]
    limit = _DAYS_IN_MONTH[month - 1]
    if month == 2 and calendar.isleap(year):
        limit = 29
    h, m, s = int(hour), int(minute), int(second)
    # Second 60 is a leap second, which the grammar allows.
    if year < 1 or not 1 <= day <= limit or h > 23 or m > 59 or s > 60:
        return None
    return float(calendar.timegm((year, month, day, h, m, s, 0, 0, 0)))

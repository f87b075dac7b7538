"""The Cookie request header and Set-Cookie values (RFC 6265, RFC 6265bis)."""

import math
import re
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from simples.http.dates import format_http_date
from simples.http.headers import TOKEN, TOKEN_CHARS
from simples.http.query import percent_decode

# RFC 6265 §4.1.1 defines cookie-name as an RFC 2616 token: no separators.
# The same set for str.strip, which checks a name in C faster than a regex call.
# cookie-octet minus "%", which is reserved for our own percent-encoding so that
# parse_cookies can always undo serialize_cookie.
_SAFE_OCTETS = "!#$&'()*+-./:<=>?@[]^_`{|}~"
_PLAIN_VALUE = re.compile(r"[!#$&'()*+\-./0-9:<=>?@A-Z\[\]^_`a-z{|}~]*")
# Attribute values end at ";" and must stay on one header line; non-ASCII would
# never match what a browser compares them with.
_BAD_ATTRIBUTE = re.compile(r"[^\x20-\x3a\x3c-\x7e]")
_SAME_SITE = {"strict": "Strict", "lax": "Lax", "none": "None"}
_DELETED = "Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
# RFC 6265 §5.1.1: a user agent ignores an Expires whose year is before 1601 or
# that it cannot parse (a negative or five-digit year), and the cookie then lives
# as a session cookie. Dates are clamped into the range every client reads: the
# past to the epoch (the usual "expired" value, also safe for 32-bit parsers), the
# far future to the last second of year 9999.
_EARLIEST_EXPIRES = 0.0
_LATEST_EXPIRES = 253402300799.0  # Fri, 31 Dec 9999 23:59:59 GMT


def parse_cookies(header: str) -> dict[str, str]:
    """The cookies of a Cookie header; a malformed pair is skipped, never an error.

    One pass of ``str.split`` plus constant work per pair keeps this linear, so a
    hostile header costs no more than its length.
    """
    cookies: dict[str, str] = {}
    for pair in header.split(";"):
        name, sep, value = pair.partition("=")
        if not sep:
            continue
        name = name.strip(" \t")
        # strip() leaves something behind exactly when a non-token char is present.
        if name in cookies or not name or name.strip(TOKEN_CHARS):
            continue
        value = value.strip(" \t")
        if value[:1] == '"' and len(value) > 1 and value[-1] == '"':
            value = value[1:-1]
        if "%" in value:
            value = percent_decode(value.encode("utf-8", "surrogatepass")).decode(
                "utf-8", "replace"
            )
        cookies[name] = value
    return cookies


def serialize_cookie(
    name: str,
    value: str | None,
    *,
    max_age: int | None = None,
    expires: datetime | int | float | None = None,
    path: str | None = None,
    domain: str | None = None,
    secure: bool = False,
    http_only: bool = False,
    same_site: str | None = None,
    partitioned: bool = False,
) -> str:
    """The value of one Set-Cookie header line; ``value=None`` deletes the cookie."""
    if not isinstance(name, str) or TOKEN.fullmatch(name) is None:
        raise ValueError(f"invalid cookie name: {name!r}")
    parts = [f"{name}={_encode_value(value)}" if value is not None else f"{name}="]

    if value is None:
        parts.append(_DELETED)
    else:
        if max_age is not None:
            parts.append(f"Max-Age={_max_age(max_age)}")
        if expires is not None:
            parts.append(f"Expires={_expires(expires)}")
    if domain is not None:
        parts.append(f"Domain={_attribute('domain', domain)}")
    if path is not None:
        parts.append(f"Path={_attribute('path', path)}")
    if secure:
        parts.append("Secure")
    if http_only:
        parts.append("HttpOnly")
    if same_site is not None:
        site = _SAME_SITE.get(same_site.lower()) if isinstance(same_site, str) else None
        if site is None:
            raise ValueError(f"same_site must be 'strict', 'lax' or 'none', got {same_site!r}")
        if site == "None" and not secure:
            # Browsers drop SameSite=None cookies that are not Secure.
            raise ValueError("same_site='none' requires secure=True")
        parts.append(f"SameSite={site}")
    if partitioned:
        if not secure:
            raise ValueError("partitioned=True requires secure=True")
        parts.append("Partitioned")
    _check_prefix(name, secure=secure, path=path, domain=domain)
    return "; ".join(parts)


# The attributes part of Set-Cookie lines ("; HttpOnly; Path=/"), by the name
# and the attributes asked for: an application sets its few cookies the same
# way each time, so the checks run once per way (bounded; a miss serializes).
_TAILS: dict[tuple[Any, ...], str] = {}


def cookie_line(name: str, value: str | None, options: dict[str, Any]) -> str:
    """``serialize_cookie(name, value, **options)``, its attributes checked and
    formatted once per (name, attributes). Not cached: deletions, values that
    need percent-encoding, ``expires`` (relative to now when a number) and a
    bool ``max_age`` (refused, but equal to 0 or 1 as a key)."""
    if (
        type(value) is not str
        or "expires" in options
        or type(options.get("max_age")) is bool
        or _PLAIN_VALUE.fullmatch(value) is None
    ):
        return serialize_cookie(name, value, **options)
    try:
        key = (name, *options.items())
        tail = _TAILS.get(key)
    except TypeError:  # an unhashable attribute: refused by serialize_cookie
        return serialize_cookie(name, value, **options)
    if tail is not None:
        return f"{name}={value}{tail}"
    line = serialize_cookie(name, value, **options)
    if len(_TAILS) < 256:
        _TAILS[key] = line[len(name) + 1 + len(value) :]
    return line


def _encode_value(value: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"cookie value must be a str or None, got {type(value).__name__}")
    if _PLAIN_VALUE.fullmatch(value) is not None:
        return value
    try:
        return quote(value, safe=_SAFE_OCTETS)
    except UnicodeEncodeError as exc:
        raise ValueError(f"cookie value cannot be encoded as UTF-8: {value!r}") from exc


def _max_age(max_age: object) -> int:
    if (
        isinstance(max_age, bool)
        or not isinstance(max_age, int | float)
        or (isinstance(max_age, float) and not math.isfinite(max_age))
    ):
        raise ValueError(f"max_age must be a finite number of seconds, got {max_age!r}")
    # A negative Max-Age is outside the RFC 6265 grammar but means "expire now",
    # which 0 says in a form every client accepts.
    return max(int(max_age), 0)


def _expires(expires: object) -> str:
    if isinstance(expires, datetime):
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        timestamp = expires.timestamp()
    elif (
        isinstance(expires, int | float)
        and not isinstance(expires, bool)
        and (isinstance(expires, int) or math.isfinite(expires))
    ):
        # float() of a huge int overflows; such an int is clamped like any far date.
        timestamp = time.time() + min(max(expires, -_LATEST_EXPIRES), _LATEST_EXPIRES)
    else:
        raise ValueError(
            f"expires must be a datetime or a finite number of seconds from now, got {expires!r}"
        )
    return format_http_date(min(max(timestamp, _EARLIEST_EXPIRES), _LATEST_EXPIRES))


def _attribute(label: str, value: object) -> str:
    if not isinstance(value, str) or not value or _BAD_ATTRIBUTE.search(value) is not None:
        raise ValueError(f"invalid cookie {label}: {value!r}")
    return value


def _check_prefix(name: str, *, secure: bool, path: str | None, domain: str | None) -> None:
    # Browsers silently refuse prefixed cookies that break these rules (RFC 6265bis
    # §4.1.3, prefixes matched case-insensitively); failing loudly here saves a
    # confusing debugging session.
    lowered = name.lower()
    if lowered.startswith("__secure-") and not secure:
        raise ValueError("a __Secure- cookie requires secure=True")
    if lowered.startswith("__host-") and (not secure or path != "/" or domain is not None):
        raise ValueError("a __Host- cookie requires secure=True, path='/' and no domain")

"""The query string (``application/x-www-form-urlencoded``) as a multi-dict."""

import codecs
import re

from simples.http.multidict import MultiDict

# A "%" not followed by two hex digits: kept literally, never an error.
_BROKEN_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")


class QueryLimitError(ValueError):
    """More pairs than the configured limit: the caller answers 400."""


def parse_query(query: bytes | str, max_pairs: int = 1000) -> MultiDict[str]:
    """Parse ``a=1&b=2&b=3``; ``+`` is a space, ``a[]`` is key ``a``.

    Percent-escapes decode as UTF-8 with replacement characters, and a malformed
    escape stays literal, so no query string is ever an error except one with more
    than ``max_pairs`` pairs (``0`` means no limit).
    """
    # One decode of the whole string instead of one per key and value: ASCII
    # bytes ("&", "=", "%") never belong to an invalid UTF-8 sequence, so splitting
    # afterwards finds the same pieces.
    text = query.decode("utf-8", "replace") if isinstance(query, bytes) else query
    if not text:
        return MultiDict()
    if "+" in text:
        text = text.replace("+", " ")
    pieces = text.split("&")
    if max_pairs and len(pieces) > max_pairs:
        count = len(pieces) - pieces.count("")
        if count > max_pairs:
            raise QueryLimitError(f"more than {max_pairs} query pairs")
    pairs: list[tuple[str, str]] = []
    append = pairs.append
    for piece in pieces:
        if not piece:
            continue
        name, _, value = piece.partition("=")
        if "%" in name:
            name = _unescape(name)
        if name.endswith("[]"):
            name = name[:-2]
        if "%" in value:
            value = _unescape(value)
        append((name, value))
    return MultiDict(pairs)


def _unescape(text: str) -> str:
    raw = percent_decode(text.encode("utf-8", "surrogatepass"))
    return raw.decode("utf-8", "replace")


def percent_decode(raw: bytes) -> bytes:
    """Decode every ``%XX`` of ``raw``; a malformed escape stays as it is.

    ``urllib.parse.unquote_to_bytes`` loops in Python once per escape, which a
    hostile value full of escapes turns into milliseconds. Here every step runs in
    C: broken escapes become ``%25`` (an escaped "%"), backslashes are doubled,
    each ``%`` becomes ``\\x`` and ``codecs.escape_decode`` decodes the lot.
    """
    if b"%" not in raw:
        return raw
    raw = _BROKEN_ESCAPE.sub(b"%25", raw)
    return codecs.escape_decode(raw.replace(b"\\", b"\\\\").replace(b"%", b"\\x"))[0]


def parse_urlencoded(data: bytes, max_fields: int, charset: str = "utf-8") -> MultiDict[str]:
    """An ``application/x-www-form-urlencoded`` body (WHATWG URL standard,
    "application/x-www-form-urlencoded parsing"): ``+`` is a space, ``a[]`` is
    key ``a``. Unlike a query string, a body is decoded strictly: bytes that are
    not valid ``charset`` raise ``UnicodeDecodeError``; more than ``max_fields``
    pairs (0 = no limit) raise ``QueryLimitError``."""
    if not data:
        return MultiDict()
    if max_fields:
        # maxsplit stops the work at the limit whatever the body holds.
        pieces = data.split(b"&", max_fields)
        if len(pieces) > max_fields:
            if pieces[-1]:
                raise QueryLimitError(f"more than {max_fields} form fields")
            pieces.pop()
    else:
        pieces = data.split(b"&")
    result: MultiDict[str] = MultiDict()
    for piece in pieces:
        if not piece:
            continue
        name, _, value = piece.partition(b"=")
        key = _unquote_plus(name, charset)
        if key.endswith("[]"):
            key = key[:-2]
        result.add(key, _unquote_plus(value, charset))
    return result


def _unquote_plus(raw: bytes, charset: str) -> str:
    if b"+" in raw:
        raw = raw.replace(b"+", b" ")
    return percent_decode(raw).decode(charset)

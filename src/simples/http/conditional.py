"""Conditional requests (RFC 9110 §13): validators and the order they are checked in.

Pure functions over header values. ``evaluate`` follows §13.2.2 step by step:
If-Match, else If-Unmodified-Since (412); then If-None-Match, else
If-Modified-Since (304 for GET and HEAD). ``if_range`` is step 5, for Range.
"""

from __future__ import annotations

from .dates import parse_http_date

# A client has no reason to send more validators than this in one header.
MAX_TAGS = 64


def make_etag(size: int, mtime_ns: int, suffix: str = "") -> str:
    """A strong entity tag for file content: size and modification time (in
    nanoseconds), both hex; ``suffix`` tells apart encodings of the same file."""
    tail = f"-{suffix}" if suffix else ""
    return f'"{size:x}-{mtime_ns:x}{tail}"'


def parse_etags(header: str) -> list[str] | None:
    """The entity tags of an If-Match / If-None-Match value, weak ones with
    their ``W/`` prefix; ``None`` for ``*``. Malformed members are dropped (a
    mangled tag can match nothing, so leaving it out changes no answer)."""
    stripped = header.strip(" \t")
    if stripped == "*":
        return None
    tags: list[str] = []
    position = 0
    length = len(stripped)
    while position < length and len(tags) < MAX_TAGS:
        char = stripped[position]
        if char in ", \t":
            position += 1
            continue
        start = position
        if stripped.startswith("W/", position):
            position += 2
        if position >= length or stripped[position] != '"':
            # Not a tag: skip to the next comma.
            comma = stripped.find(",", position)
            position = length if comma == -1 else comma + 1
            continue
        close = stripped.find('"', position + 1)
        if close == -1:
            break
        tags.append(stripped[start : close + 1])
        position = close + 1
    return tags


def _opaque(tag: str) -> str:
    return tag[2:] if tag.startswith("W/") else tag


def strong_match(tags: list[str] | None, etag: str) -> bool:
    """Strong comparison (§8.8.3.2): neither tag weak, same characters."""
    if tags is None:
        return True
    if etag.startswith("W/"):
        return False
    return etag in tags


def weak_match(tags: list[str] | None, etag: str) -> bool:
    """Weak comparison: same opaque tag, ``W/`` ignored on either side."""
    if tags is None:
        return True
    opaque = _opaque(etag)
    return any(_opaque(tag) == opaque for tag in tags)


def evaluate(
    method: str,
    if_match: str | None,
    if_unmodified_since: str | None,
    if_none_match: str | None,
    if_modified_since: str | None,
    etag: str | None,
    last_modified: int | None,
) -> int | None:
    """412 or 304 when a precondition decides the answer, ``None`` to go on.

    ``last_modified`` is in whole seconds, as Last-Modified carries it. An
    unparsable date makes its header count as absent, as §13.1.3 and §13.1.4
    require; the "*" forms match any current representation.
    """
    if if_match is not None:
        if etag is None or not strong_match(parse_etags(if_match), etag):
            return 412
    elif if_unmodified_since is not None and last_modified is not None:
        date = parse_http_date(if_unmodified_since)
        if date is not None and last_modified > date:
            return 412
    safe = method in ("GET", "HEAD")
    if if_none_match is not None:
        if etag is not None and weak_match(parse_etags(if_none_match), etag):
            return 304 if safe else 412
    elif if_modified_since is not None and safe and last_modified is not None:
        date = parse_http_date(if_modified_since)
        if date is not None and last_modified <= date:
            return 304
    return None


def if_range(value: str, etag: str | None, last_modified: int | None) -> bool:
    """Whether a Range request stands given its If-Range value (§13.1.5): a strong
    entity tag equal to ours, or exactly our Last-Modified date. A weak tag or
    anything unreadable fails, and the whole content is sent instead."""
    value = value.strip(" \t")
    if value.startswith(('"', "W/")):
        return etag is not None and not value.startswith("W/") and value == etag
    date = parse_http_date(value)
    return date is not None and last_modified is not None and int(date) == last_modified

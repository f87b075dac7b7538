"""Byte ranges (RFC 9110 §14): parsing the Range header and framing the answer.

Pure functions: ``parse_range`` says which bytes to send, the others build the
Content-Range values and the ``multipart/byteranges`` framing, whose exact size is
known before the first byte goes out (so the response keeps a Content-Length).
"""

from __future__ import annotations

from collections.abc import Sequence

# Range (start, stop): half-open, like a slice, so that ``stop - start`` is the size.
ByteRange = tuple[int, int]

# More ranges than this in one request is the signature of a broken client or of an
# attack (RFC 9110 §14.2); such a header is ignored and the whole file is sent.
MAX_RANGES = 16
# A position longer than this is not a file offset; also keeps int() far from
# Python's limit on converting long digit strings.
_MAX_DIGITS = 30
_DIGITS = frozenset("0123456789")


def _number(text: str) -> int | None:
    # str.isdigit() and int() accept any Unicode digit ("٣", "²"); HTTP allows ASCII.
    if not text or len(text) > _MAX_DIGITS or not _DIGITS.issuperset(text):
        return None
    return int(text)


def parse_range(header: str, size: int, limit: int = MAX_RANGES) -> list[ByteRange] | None:
    """The ranges of ``size`` bytes that ``header`` asks for.

    Returns ``None`` when the header must be ignored (another unit, bad syntax,
    more than ``limit`` ranges, ``5-1``): the caller answers 200 with everything.
    Returns ``[]`` when it is valid but no range overlaps the content: 416.
    Otherwise the satisfiable ranges, sorted, with overlapping and adjacent ones
    merged (RFC 9110 §14.6 allows coalescing), so a single range stays single.
    """
    unit, equals, ranges_text = header.partition("=")
    if not equals or unit.strip(" \t").lower() != "bytes":
        return None
    # maxsplit bounds the work on a header with thousands of ranges.
    specs = ranges_text.split(",", limit)
    if len(specs) > limit:
        return None
    found: list[ByteRange] = []
    seen_any = False
    suffix_on_empty = False
    for spec in specs:
        spec = spec.strip(" \t")
        if not spec:
            # RFC 9110 §5.6.1: a list may carry empty elements; they count for nothing.
            continue
        seen_any = True
        first_text, dash, last_text = spec.partition("-")
        if not dash:
            return None
        if not first_text:
            suffix = _number(last_text)
            if suffix is None:
                return None
            if suffix == 0:
                continue  # "-0" asks for no bytes: unsatisfiable, not malformed
            if size == 0:
                suffix_on_empty = True
                continue
            found.append((max(0, size - suffix), size))
            continue
        first = _number(first_text)
        if first is None:
            return None
        if last_text:
            last = _number(last_text)
            if last is None or last < first:
                return None
            stop = min(last + 1, size)
        else:
            stop = size
        if first < size:
            found.append((first, stop))
    if not seen_any:
        return None
    if not found:
        # §14.1.1: for empty content a non-zero suffix range is the one satisfiable
        # form, yet no Content-Range can describe zero bytes; send the (empty) whole.
        return None if suffix_on_empty else []
    return merge_ranges(found)


def merge_ranges(ranges: Sequence[ByteRange]) -> list[ByteRange]:
    """Sort and coalesce overlapping or touching ranges: O(n log n)."""
    ordered = sorted(ranges)
    merged = [ordered[0]]
    for start, stop in ordered[1:]:
        last_start, last_stop = merged[-1]
        if start <= last_stop:
            if stop > last_stop:
                merged[-1] = (last_start, stop)
        else:
            merged.append((start, stop))
    return merged


def content_range(start: int, stop: int, size: int) -> str:
    """``bytes 0-499/1234`` for the half-open range (start, stop)."""
    return f"bytes {start}-{stop - 1}/{size}"


def unsatisfied_range(size: int) -> str:
    """The Content-Range of a 416 answer: ``bytes */1234``."""
    return f"bytes */{size}"


def multipart_heads(
    ranges: Sequence[ByteRange], size: int, content_type: str, boundary: str
) -> tuple[list[bytes], bytes, int]:
    """Framing of a ``multipart/byteranges`` body.

    Returns the head to send before each range, the closing delimiter, and the
    total length of the body (heads, range bytes and closing delimiter).
    """
    heads: list[bytes] = []
    total = 0
    for index, (start, stop) in enumerate(ranges):
        lead = "" if index == 0 else "\r\n"
        head = (
            f"{lead}--{boundary}\r\n"
            f"content-type: {content_type}\r\n"
            f"content-range: {content_range(start, stop, size)}\r\n\r\n"
        ).encode("latin-1")
        heads.append(head)
        total += len(head) + stop - start
    tail = f"\r\n--{boundary}--\r\n".encode("latin-1")
    return heads, tail, total + len(tail)

"""Accept-* headers: quality lists (RFC 9110 §12.4.2) and their negotiation."""

import re
from collections.abc import Sequence
from operator import itemgetter

# A client has no reason to list more; beyond this the header is noise or an attack.
MAX_ITEMS = 100

# Looser than the RFC's qvalue grammar on purpose (q=1.5 is clamped, not refused);
# [0-9] keeps non-ASCII digits out, which float() would otherwise accept.
_QVALUE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_SORT_KEY = itemgetter(1)
_ALIASES = {"x-gzip": "gzip", "x-compress": "compress"}


def parse_qlist(header: str) -> list[tuple[str, float]]:
    """``[(item, q), ...]`` by quality, highest first, ties in the client's order.

    Items with ``q=0`` are kept so that callers can honour refusals; items with an
    unreadable q are dropped. Parameters other than q stay on the item, without
    spaces (``text/html;level=1``). Only the first ``MAX_ITEMS`` items count.
    """
    result: list[tuple[str, float]] = []
    # maxsplit bounds the work: whatever follows the last split is never looked at.
    pieces = header.split(",", MAX_ITEMS)
    del pieces[MAX_ITEMS:]
    for piece in pieces:
        if ";" not in piece:
            item = piece.strip(" \t")
            if item:
                result.append((item, 1.0))
            continue
        parameters = piece.split(";")
        item = parameters[0].strip(" \t")
        if not item:
            continue
        quality = 1.0
        kept: list[str] = []
        for parameter in parameters[1:]:
            key, equals, raw = parameter.partition("=")
            key = key.strip(" \t")
            if key.lower() == "q":
                match = _QVALUE.fullmatch(raw.strip(" \t"))
                if match is None:
                    quality = -1.0
                    break
                quality = min(max(float(match.group()), 0.0), 1.0)
                # Anything after q is an accept-ext, not part of the item.
                break
            if key:
                kept.append(key + equals + raw.strip(" \t"))
        if quality < 0.0:
            continue
        if kept:
            item = ";".join([item, *kept])
        result.append((item, quality))
    result.sort(key=_SORT_KEY, reverse=True)
    return result


def accept_languages(header: str) -> list[str]:
    """Language ranges from Accept-Language, best first, refused ones (q=0) left out."""
    return [item for item, quality in parse_qlist(header) if quality > 0.0]


def choose_encoding(
    header: str | None, available: Sequence[str], preferred: str | None = None
) -> str | None:
    """The content coding to answer with (RFC 9110 §12.5.3).

    One of ``available`` when the client accepts it, ``"identity"`` when none of
    them fits but an uncompressed answer does, ``None`` when nothing is acceptable
    (a caller may answer 406 or ignore the header).
    """
    if not header or not header.strip(" \t"):
        return "identity"
    qualities: dict[str, float] = {}
    for item, quality in parse_qlist(header):
        coding = item.lower()
        coding = _ALIASES.get(coding, coding)
        # parse_qlist sorts by quality, so the first seen is the best a client
        # gave for a coding it listed twice.
        qualities.setdefault(coding, quality)

    star = qualities.get("*")
    best: str | None = None
    best_quality = 0.0
    preferred_key = preferred.lower() if preferred else None
    for coding in available:
        key = coding.lower()
        quality = qualities.get(key, star if star is not None else 0.0)
        if quality <= 0.0:
            continue
        if quality > best_quality or (quality == best_quality and key == preferred_key):
            best, best_quality = coding, quality

    identity = qualities.get("identity", star)
    if best is not None:
        # The client rated identity above every coding we have: its choice wins.
        if identity is not None and identity > best_quality:
            return "identity"
        return best
    if identity is None or identity > 0.0:
        return "identity"
    return None

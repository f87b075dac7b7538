"""Link response header values (RFC 8288)."""

import re
from collections.abc import Mapping
from urllib.parse import quote

# ">" would end the URI reference early; controls would break the header line.
_BAD_URL = re.compile(r"[\x00-\x1f\x7f>]")
# rel is a quoted-string here: no quote, no backslash escape, no controls, and
# relation types are ASCII.
_BAD_REL = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")
# Printable ASCII passes through as given, "%" included, so that an already
# encoded URL is not encoded twice; only spaces and non-ASCII get percent-encoded.
_ASCII_SAFE = "".join(chr(code) for code in range(0x21, 0x7F))
_PLAIN_URL = re.compile(r"[\x21-\x7e]*")


def format_links(links: Mapping[str, str]) -> str:
    """``{"next": "/2", "prev": "/0"}`` → ``</2>; rel="next", </0>; rel="prev"``."""
    parts = []
    for rel, url in links.items():
        if not isinstance(rel, str) or not rel or _BAD_REL.search(rel) is not None:
            raise ValueError(f"invalid link relation: {rel!r}")
        if not isinstance(url, str) or _BAD_URL.search(url) is not None:
            raise ValueError(f"invalid link URL: {url!r}")
        if _PLAIN_URL.fullmatch(url) is None:
            # A URI reference has no spaces or non-ASCII: an IRI must be encoded.
            try:
                url = quote(url, safe=_ASCII_SAFE)
            except UnicodeEncodeError as exc:
                raise ValueError(f"invalid link URL: {url!r}") from exc
        parts.append(f'<{url}>; rel="{rel}"')
    return ", ".join(parts)

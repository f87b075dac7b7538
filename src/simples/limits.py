"""The ``limits`` section: every bound simples puts on what a client sends, with
its default. One table, read by the configuration (``router.limits(...)``), the
body reader and the request-head checks.

Over a limit: 413 for sizes of the body and its parts, 431 for headers and
cookies, 400 for counts and depth, 408 for time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final

from .feature import Feature

KiB: Final = 1 << 10
MiB: Final = 1 << 20

LIMITS: Final[dict[str, int]] = {
    # Bytes of a body read into memory (buffer/text/json/qs, urlencoded forms).
    "body": MiB,
    # Nesting of JSON arrays and objects; deeper is 400.
    "json_depth": 64,
    # Non-file fields of a form (urlencoded pairs or multipart parts); more is 400.
    "form_fields": 1000,
    # File parts of a multipart form; more is 400.
    "form_files": 100,
    # Bytes of one uploaded file; more is 413. Past 1 MiB it is spooled to disk.
    "part_size": 10 * MiB,
    # Bytes of one multipart part's header block; more is 413.
    "part_header_size": 8 * KiB,
    # Bytes of a whole multipart body when no explicit limit is given; more is 413.
    "upload_size": 100 * MiB,
    # Pairs in the query string; more is 400.
    "query_pairs": 1000,
    # Bytes of one request header value; more is 431.
    "header_size": 8 * KiB,
    # Number of request header lines; more is 431.
    "headers": 100,
    # Bytes of the Cookie header; more is 431.
    "cookie_size": 8 * KiB,
    # Seconds a client may leave the body idle mid-way; then 408 and close
    # (0 = wait forever). The ASGI servers have no such timeout.
    "body_timeout": 30,
}


class Limits(Feature):
    """``router.limits(body=...)``: the values above, inherited by sub-routers."""

    name: ClassVar[str] = "limits"
    defaults: ClassVar[Mapping[str, Any]] = LIMITS
    switch: ClassVar[bool] = False

    def validate(self, partial: Mapping[str, Any]) -> None:
        for key, value in partial.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"limits {key} is a number >= 0 (0 = no limit), got {value!r}")


FEATURE = Limits()

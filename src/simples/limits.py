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
    # Bytes per second a body must average, counted from its first read, once
    # ``body_grace`` seconds of waiting for it have passed; slower is 408 and
    # close (0 = off). Only time spent waiting for the client counts, not time
    # the handler spends on a chunk. 1 KiB/s is far below any real link (a
    # 100 MiB upload at 1 KiB/s takes 28 hours; a poor mobile uplink does
    # 50 KiB/s or more), yet it cuts a body trickled a few bytes at a time,
    # which ``body_timeout`` alone never does (each byte resets it).
    "body_min_rate": KiB,
    # Seconds of a body before ``body_min_rate`` applies: slow starts (TCP slow
    # start, a phone waking its radio) are not cut.
    "body_grace": 10,
    # Seconds a whole body may take, waiting time only (0 = no total bound:
    # the rate above already bounds what a slow client costs per byte).
    "body_deadline": 0,
    # Seconds a client has to send a complete request head, from the moment
    # its connection is made or its previous response is complete; then the
    # connection is closed (0 = off). Applied by the server simples starts
    # (``listen()``, ``start()``, ``simples run``), read from the served app's
    # own limits (a head is not routed yet). uvicorn has no such timeout;
    # granian gets it as its ``header_read_timeout``.
    "header_timeout": 10,
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

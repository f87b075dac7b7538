"""What the ``session`` endpoint's apps and the harness agree on (stdlib only).

wrk repeats one request, so every request carries the same cookies: a session
id that the simples apps seed into their store at start (``n`` = 41), and a
Starlette session cookie signed ahead of time with the same data. Every app
then does the same work per request: read ``n``, add one, write the session
back, answer ``{"n": ...}`` with a Set-Cookie line. The check accepts any
``n`` above 41, so a session that was not read (``n`` = 1) fails it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

# The format of secrets.token_urlsafe(32): 43 URL-safe letters, the last one of
# those that can end 256 bits.
SESSION_ID = "bench-session-0123456789abcdefghijklmnopqrA"
SEED: dict[str, int] = {"n": 41}
STARLETTE_SECRET = "bench-secret-not-for-production"
STARLETTE_COOKIE = "session"


def starlette_cookie(data: dict[str, int] = SEED, now: int | None = None) -> str:
    """A cookie value Starlette's SessionMiddleware accepts for ``data``.

    The same bytes as ``itsdangerous.TimestampSigner(secret).sign(b64(json))``:
    HMAC-SHA1 with the key derived by itsdangerous' "django-concat" rule, over
    the payload and a big-endian timestamp, URL-safe base64 without padding."""
    stamp_int = int(time.time()) if now is None else now
    payload = base64.b64encode(json.dumps(data).encode())
    key = hashlib.sha1(b"itsdangerous.Signer" + b"signer" + STARLETTE_SECRET.encode()).digest()
    stamp = stamp_int.to_bytes((stamp_int.bit_length() + 7) // 8, "big")
    value = payload + b"." + base64.urlsafe_b64encode(stamp).rstrip(b"=")
    signature = hmac.new(key, value, hashlib.sha1).digest()
    return (value + b"." + base64.urlsafe_b64encode(signature).rstrip(b"=")).decode()


def cookie_header() -> str:
    """The Cookie header of the ``session`` endpoint: one cookie for each design."""
    return f"_session={SESSION_ID}; {STARLETTE_COOKIE}={starlette_cookie()}"

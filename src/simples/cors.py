"""Cross-origin resource sharing: the ``cors`` section (docs/cors.md).

- ``origin_allowed(origin, origins)`` is the one origin rule, pure; WebSocket
  routes use it for ``router.ws(origins=...)``.
- ``Cors.attach`` runs for every request when the section is on; the headers
  are added by a start hook, just before the response goes out, so that error
  routes and handlers that replace headers keep them.
- ``Cors.answer`` answers ``OPTIONS`` + ``Access-Control-Request-Method``
  when no route took it (``answer_preflight``).

A rejected origin gets no ``Access-Control-*`` header at all and an otherwise
unchanged answer: the browser is the one that blocks, and a server that
answered differently would tell an attacker which origins are listed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any, ClassVar, Final

from .feature import Feature
from .http.url import is_valid_host

if TYPE_CHECKING:
    from .connection import HTTPConnection
    from .response import Response
    from .router import Router

OriginRule = str | Iterable[str] | Callable[[str], bool] | None

DEFAULT_PORTS: Final = {"http": "80", "https": "443", "ws": "80", "wss": "443"}
# Request headers a browser may need to list even for plain JSON calls
# (``Content-Type: application/json`` is not CORS-safelisted); always allowed.
SAFELISTED_HEADERS: Final = ("accept", "accept-language", "content-language", "content-type")
# RFC 6454 serialisation: scheme "://" host [":" port], nothing else.
_ORIGIN = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://([^/?#@\s\\]+)")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_MAX_REQUESTED_HEADERS = 64


def normalise_origin(origin: str) -> str | None:
    """``"HTTPS://Example.COM:443"`` → ``"https://example.com"``; ``"null"`` stays;
    anything that is not an origin (a path, userinfo, no scheme) → ``None``."""
    if origin == "null":
        return origin
    match = _ORIGIN.fullmatch(origin) if len(origin) <= 2048 else None
    if match is None:
        return None
    scheme, authority = match.group(1).lower(), match.group(2).lower()
    if not is_valid_host(authority):
        return None
    if authority.endswith("]") or ":" not in authority:
        return f"{scheme}://{authority}"
    host, _, port = authority.rpartition(":")
    port = port.lstrip("0") or "0"
    if port == DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def origin_allowed(origin: str, origins: OriginRule) -> bool:
    """Whether ``origin`` (an ``Origin`` header value) passes ``origins``.

    ``origins``: ``None`` or ``"*"`` (any origin), one origin, a list of
    origins (it may hold ``"*"`` and ``"null"``), or a callable that gets the
    normalised origin (lowercase, default port dropped) or ``"null"``. Origins
    are compared whole: scheme, host and port. A malformed origin never passes
    a list or a callable.
    """
    if origins is None:
        return True
    if callable(origins):
        normalised = normalise_origin(origin)
        return normalised is not None and bool(origins(normalised))
    any_origin, exact = compile_origins((origins,) if isinstance(origins, str) else tuple(origins))
    if any_origin:
        return True
    normalised = normalise_origin(origin)
    return normalised is not None and normalised in exact


@lru_cache(maxsize=128)
def compile_origins(origins: tuple[str, ...]) -> tuple[bool, frozenset[str]]:
    """Configured origins → (any origin allowed, normalised exact origins). Raises
    ``ValueError`` for an entry that is not an origin."""
    exact: set[str] = set()
    any_origin = False
    for entry in origins:
        if not isinstance(entry, str):
            raise TypeError(f"cors origins are strings, got {entry!r}")
        if entry == "*":
            any_origin = True
            continue
        # "https://example.com/" is a common way to write an origin; accept it.
        normalised = normalise_origin(entry[:-1] if entry.endswith("/") else entry)
        if normalised is None:
            raise ValueError(
                f"cors origin {entry!r} is not an origin: write scheme://host[:port], "
                "e.g. 'https://example.com' or 'http://localhost:3000'"
            )
        exact.add(normalised)
    return any_origin, frozenset(exact)


# ------------------------------------------------------------------ the section


def check_config(partial: Mapping[str, Any]) -> None:
    """Validate the keys of a ``cors`` section as it is configured, so a typo fails
    at start-up rather than on the first cross-origin request."""
    if "origins" in partial:
        _origin_rule(partial["origins"])
    for key in ("methods", "headers", "expose"):
        if key in partial:
            _names(key, partial[key])
    if "max_age" in partial:
        max_age = partial["max_age"]
        if max_age is not None and (type(max_age) is not int or max_age < 0):
            raise ValueError(f"cors max_age is seconds (an int >= 0) or None, got {max_age!r}")
    if "credentials" in partial and not isinstance(partial["credentials"], bool):
        raise TypeError(f"cors credentials is a bool, got {partial['credentials']!r}")


def _origin_rule(origins: Any) -> tuple[bool, frozenset[str], Callable[[str], bool] | None]:
    if callable(origins):
        return False, frozenset(), origins
    if isinstance(origins, str):
        origins = [origins]
    if not isinstance(origins, Iterable):
        raise TypeError(f"cors origins is '*', a list of origins or a callable, not {origins!r}")
    any_origin, exact = compile_origins(tuple(origins))
    return any_origin, exact, None


def _names(key: str, value: Any) -> tuple[bool, tuple[str, ...]]:
    """A list of header or method names, or ``"*"``: (wildcard, names)."""
    if value == "*":
        return True, ()
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise TypeError(f"cors {key} is a list of names or '*', not {value!r}")
    names = tuple(value)
    if "*" in names:
        return True, ()
    for name in names:
        if not isinstance(name, str) or _TOKEN.fullmatch(name) is None:
            raise ValueError(f"cors {key}: {name!r} is not a header or method name")
    return False, names


class CorsRules:
    """A ``cors`` section compiled once per router settings."""

    __slots__ = (
        "any_origin", "check", "credentials", "exact", "expose", "headers", "max_age",
        "methods", "reflect_headers", "reflect_methods", "section", "varies",
    )

    def __init__(self, section: Mapping[str, Any]) -> None:
        check_config(section)
        self.section = section
        self.any_origin, self.exact, self.check = _origin_rule(section["origins"])
        self.credentials: bool = section["credentials"]
        self.reflect_methods, methods = _names("methods", section["methods"])
        self.methods = frozenset(method.upper() for method in methods)
        self.reflect_headers, headers = _names("headers", section["headers"])
        names = dict.fromkeys([*SAFELISTED_HEADERS, *(name.lower() for name in headers)])
        self.headers = ", ".join(names)
        wildcard, expose = _names("expose", section["expose"])
        self.expose = "*" if wildcard else ", ".join(expose) or None
        max_age = section["max_age"]
        self.max_age = None if max_age is None else str(max_age)
        # When the answer depends on the Origin header, caches must know it, for
        # requests without one too (else a cached answer without
        # Access-Control-Allow-Origin is served to a cross-origin page).
        # A lone "*" answers the same to everyone, and so does an empty list.
        self.varies = bool(self.exact) or self.check is not None

    def allow_origin(self, origin: str) -> tuple[str, bool] | None:
        """The ``Access-Control-Allow-Origin`` value for ``origin`` and whether
        credentials may go with it; ``None`` when the origin is rejected."""
        normalised = normalise_origin(origin)
        if normalised is not None and (
            normalised in self.exact or (self.check is not None and self.check(normalised))
        ):
            # reflect the header as sent: browsers compare it byte for byte
            return origin, self.credentials
        if self.any_origin:
            # "*" never reflects an origin, so it never lends credentials to one
            return "*", False
        return None


class Cors(Feature):
    """The ``cors`` section: headers on every answer to a listed origin, and
    preflights for paths whose routes allow the requested method."""

    name: ClassVar[str] = "cors"
    defaults: ClassVar[Mapping[str, Any]] = {
        "enabled": False,
        "origins": [],
        "credentials": False,
        "methods": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
        "headers": [],
        "expose": [],
        "max_age": None,
    }

    def validate(self, partial: Mapping[str, Any]) -> None:
        check_config(partial)

    def compile(self, section: Mapping[str, Any], router: Router) -> CorsRules:
        return CorsRules(section)

    async def attach(self, connection: HTTPConnection, state: CorsRules) -> None:
        # The headers go on in a start hook, just before the response goes out,
        # so that error routes and handlers that replace headers keep them.
        if "origin" in connection.headers:
            connection.response.on_start(partial(_cors_headers, connection, state))
        elif state.varies:
            connection.response.on_start(partial(_vary_origin, connection.response))

    async def answer(self, connection: HTTPConnection, state: CorsRules) -> bool:
        if connection.method != "OPTIONS":
            return False
        allowed = connection.router.allowed(connection.path)
        return bool(allowed) and await answer_preflight(connection, state, allowed)


FEATURE = Cors()


async def _vary_origin(response: Response, body: bytes | None) -> bytes | None:
    response.vary("Origin")
    return body


async def _cors_headers(
    connection: HTTPConnection, rules: CorsRules, body: bytes | None
) -> bytes | None:
    response = connection.response
    if rules.varies:
        response.vary("Origin")
    allowed = rules.allow_origin(connection.headers.get("origin", ""))
    if allowed is None:
        return body
    value, credentials = allowed
    response.set("access-control-allow-origin", [value])
    if credentials:
        response.set("access-control-allow-credentials", ["true"])
    preflight = (
        connection.method == "OPTIONS" and "access-control-request-method" in connection.headers
    )
    if rules.expose is not None and not preflight:
        response.set("access-control-expose-headers", [rules.expose])
    return body


async def answer_preflight(
    connection: HTTPConnection, rules: CorsRules, allowed: list[str]
) -> bool:
    """Answer a preflight for a path whose routes allow ``allowed`` methods: 204 with
    the allowed set. ``False`` (the router answers as usual) when it is not a
    preflight or the origin is rejected."""
    headers = connection.headers
    origin = headers.get("origin")
    requested = headers.get("access-control-request-method")
    if origin is None or requested is None or _TOKEN.fullmatch(requested) is None:
        return False
    verdict = rules.allow_origin(origin)
    if verdict is None:
        return False
    value, credentials = verdict
    connection.header("allow", ", ".join(allowed))
    connection.header("access-control-allow-origin", value)
    if credentials:
        connection.header("access-control-allow-credentials", "true")
    methods = [
        method for method in allowed
        if method != "OPTIONS" and (rules.reflect_methods or method in rules.methods)
    ]
    if methods:
        connection.header("access-control-allow-methods", ", ".join(methods))
    vary = ["Origin"] if rules.varies else []
    if rules.reflect_headers:
        asked = _requested_headers(headers.get("access-control-request-headers"))
        if asked:
            connection.header("access-control-allow-headers", asked)
        vary.append("Access-Control-Request-Headers")
    else:
        connection.header("access-control-allow-headers", rules.headers)
    if rules.max_age is not None:
        connection.header("access-control-max-age", rules.max_age)
    if vary:
        connection.response.vary(*vary)
    await connection.status(204).send(None)
    return True


def _requested_headers(value: str | None) -> str:
    """The names a preflight asks for, kept only when each is a token."""
    if not value:
        return ""
    names = [name.strip().lower() for name in value.split(",")[:_MAX_REQUESTED_HEADERS]]
    return ", ".join(dict.fromkeys(name for name in names if _TOKEN.fullmatch(name)))


__all__ = [
    "FEATURE",
    "SAFELISTED_HEADERS",
    "Cors",
    "CorsRules",
    "answer_preflight",
    "check_config",
    "normalise_origin",
    "origin_allowed",
]

"""The ``allowed_hosts`` section: the host names a site answers to.

Without it, ``connection.url`` and every absolute URL an application builds
from it (a password-reset link, an absolute redirect) follow whatever ``Host``
the client sent; a cache or a mail sent on behalf of an attacker then points
elsewhere (the reason for Django's ``ALLOWED_HOSTS`` and Starlette's
``TrustedHostMiddleware``). With it, a request whose Host — or, from a trusted
proxy, forwarded host — is not listed gets 400 before any handler runs.

Patterns, compared without the port and case-insensitively (RFC 9110 §4.2.3):

- ``"example.com"``: that name exactly;
- ``"*.example.com"``: any name below it (one or more labels), not the apex;
- ``".example.com"``: the apex and any name below it;
- ``"*"``: any host (say so explicitly, and the warning stays quiet).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from .feature import Feature
from .http.url import is_valid_host, split_host

if TYPE_CHECKING:
    from .router import Router

class AllowedHosts:
    """Compiled patterns: exact names and suffixes."""

    __slots__ = ("any", "exact", "suffixes")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.any = False
        exact: set[str] = set()
        suffixes: list[tuple[str, bool]] = []  # (".example.com", apex allowed)
        for pattern in patterns:
            if pattern == "*":
                self.any = True
            elif pattern.startswith("*."):
                suffixes.append((pattern[1:], False))
            elif pattern.startswith("."):
                suffixes.append((pattern, True))
            else:
                # the same form the request's host takes below (IPv6 unbracketed)
                exact.add(split_host(pattern)[0])
        self.exact = frozenset(exact)
        self.suffixes = tuple(suffixes)

    def __call__(self, host: str) -> bool:
        """Whether ``host`` (a Host value, port included, lowercase) is allowed."""
        if self.any:
            return True
        name = split_host(host)[0].rstrip(".")
        if name in self.exact:
            return True
        for suffix, apex in self.suffixes:
            if name.endswith(suffix) and len(name) > len(suffix):
                return True
            if apex and name == suffix[1:]:
                return True
        return False


def check_patterns(patterns: Any) -> list[str]:
    if isinstance(patterns, str) or not isinstance(patterns, Iterable):
        raise TypeError(
            f"allowed_hosts is a list of host names, not {patterns!r}: "
            "write allowed_hosts=['example.com', '*.example.com']"
        )
    checked = []
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise TypeError(f"allowed_hosts: {pattern!r} is not a str")
        lowered = pattern.lower().rstrip(".")
        bare = lowered[2:] if lowered.startswith("*.") else lowered.lstrip(".")
        if lowered != "*" and (
            not bare or "*" in bare or not is_valid_host(bare) or split_host(bare)[1] is not None
        ):
            raise ValueError(
                f"allowed_hosts: {pattern!r} is not a host pattern; write a name "
                "('example.com'), a subdomain pattern ('*.example.com' or '.example.com' "
                "for the apex too), an address ('127.0.0.1', '[::1]') or '*', without a port"
            )
        checked.append(lowered)
    return checked


class AllowedHostsSection(Feature):
    """``server.config(allowed_hosts=["example.com", "*.example.com"])``; an empty
    list (the default) allows any host."""

    name: ClassVar[str] = "allowed_hosts"
    defaults: ClassVar[Mapping[str, Any]] = {"hosts": []}
    switch: ClassVar[bool] = False

    def normalise(self, value: Any) -> Any:
        return value if isinstance(value, Mapping) else {"hosts": value}

    def validate(self, partial: Mapping[str, Any]) -> None:
        check_patterns(partial.get("hosts", []))

    def compile(self, section: Mapping[str, Any], router: Router) -> AllowedHosts | None:
        hosts = check_patterns(section["hosts"])
        return AllowedHosts(hosts) if hosts else None


FEATURE = AllowedHostsSection()

__all__ = ["FEATURE", "AllowedHosts", "check_patterns"]

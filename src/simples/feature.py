"""The one interface every feature plugs in through.

A feature is a configuration section (``router.config(name=...)``) and what it
does to exchanges. The registry (``features.py``) lists them in order; the
configuration, the resolved ``Settings``, the HTTP exchange and the WebSocket
handshake iterate it, so adding a feature is one module plus one registry line.

The phases, each optional:

- ``normalise(value)``: shorthands such as ``proxy=["10.0.0.0/8"]``;
- ``validate(partial)``: check the keys as they are configured, so a mistake
  fails at ``config()`` rather than on a request;
- ``compile(section, router)``: build what requests use, once per router
  resolution (``Settings.state``);
- ``attach(connection, state)``: per HTTP exchange, before the middlewares
  (register start hooks, load the session, arm a deadline), in registry order;
- ``attach_ws(ws, state)``: per WebSocket handshake; ``False`` when it refused;
- ``answer(connection, state)``: when no route took the request (static files,
  CORS preflights); ``True`` when it answered;
- ``finish(connection, state)``: once the exchange is over (the access log).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from .connection import HTTPConnection
    from .router import Router

Enabled = bool | Callable[[Any], bool]


def switched_on(enabled: Enabled, connection: Any) -> bool:
    """Whether a section's ``enabled`` switch other than ``True`` (callers test
    that inline: it is the common case) applies to this (HTTP or WebSocket)
    connection."""
    return bool(enabled(connection)) if callable(enabled) else bool(enabled)


class Feature:
    """Base of every feature: override the phases it takes part in."""

    #: The configuration section's name.
    name: ClassVar[str]
    #: Every key of the section with its default.
    defaults: ClassVar[Mapping[str, Any]]
    #: Whether the section has an ``enabled`` switch (``limits`` and ``proxy`` only
    #: carry values).
    switch: ClassVar[bool] = True

    def normalise(self, value: Any) -> Any:
        """Turn a shorthand value into a dict (or a bool/callable switch)."""
        return value

    def validate(self, partial: Mapping[str, Any]) -> None:
        """Raise ``ValueError``/``TypeError`` for a bad key of a configured section."""

    def compile(self, section: Mapping[str, Any], router: Router) -> Any:
        """What requests use, built once per resolved section."""
        return section

    async def attach(self, connection: HTTPConnection, state: Any) -> None:
        """Take part in one HTTP exchange, before the middlewares."""

    async def attach_ws(self, ws: Any, state: Any) -> bool:
        """Take part in one WebSocket handshake; ``False`` when it refused it."""
        return True

    async def answer(self, connection: HTTPConnection, state: Any) -> bool:
        """Answer a request no route took; ``True`` when answered."""
        return False

    def finish(self, connection: HTTPConnection, state: Any) -> None:
        """Once the exchange is over."""

    # Which phases a feature takes part in, found once from what it overrides,
    # so an exchange calls only those.
    @classmethod
    def takes(cls, phase: str) -> bool:
        return getattr(cls, phase) is not getattr(Feature, phase)


__all__ = ["Enabled", "Feature", "switched_on"]

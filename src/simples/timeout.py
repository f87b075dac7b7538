"""The ``timeout`` section: ``keep(value)`` on every exchange of a router."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from .feature import Feature

if TYPE_CHECKING:
    from .connection import HTTPConnection


class Timeout(Feature):
    """Abandon exchanges idle for ``value`` seconds (408 and close before the
    response started, else the connection is dropped)."""

    name: ClassVar[str] = "timeout"
    defaults: ClassVar[Mapping[str, Any]] = {"enabled": False, "value": 0}

    def validate(self, partial: Mapping[str, Any]) -> None:
        value = partial.get("value", 0)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"timeout value is seconds (a number >= 0), got {value!r}")

    async def attach(self, connection: HTTPConnection, state: Any) -> None:
        value = state["value"]
        if value:
            # In force from the start of the exchange: the handler waiting counts.
            connection.keep(value)


FEATURE = Timeout()

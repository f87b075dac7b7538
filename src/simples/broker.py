"""The ``broker`` section: what carries WebSocket broadcasts to other processes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from .feature import Feature


class BrokerSection(Feature):
    """``config(broker=simples.RedisBroker(url))``: a broker object (``None`` keeps
    broadcasts inside the process). It is checked when the first WebSocket
    needs it: a handshake then fails with 500 and a log line saying why."""

    name: ClassVar[str] = "broker"
    defaults: ClassVar[Mapping[str, Any]] = {"broker": None}
    switch: ClassVar[bool] = False

    def normalise(self, value: Any) -> Any:
        return value if isinstance(value, Mapping) else {"broker": value}


FEATURE = BrokerSection()

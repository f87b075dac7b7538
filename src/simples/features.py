"""The ordered registry of features (see ``feature.py`` for the interface).

Order matters where features meet: exchanges attach them in this order, so
start hooks run in it too (CORS headers, then compression, then the session
cookie, which is saved last so that nothing after it can fail), and answers to
requests no route took are tried in it.
"""

from __future__ import annotations

from typing import Final

from . import broker, compression, cors, files, hosts, limits, log, proxy, sessions, timeout
from .feature import Feature

FEATURES: Final[tuple[Feature, ...]] = (
    timeout.FEATURE,
    cors.FEATURE,
    compression.FEATURE,
    sessions.FEATURE,
    log.FEATURE,
    files.FEATURE,
    limits.FEATURE,
    proxy.FEATURE,
    hosts.FEATURE,
    broker.FEATURE,
)

REGISTRY: Final[dict[str, Feature]] = {feature.name: feature for feature in FEATURES}

__all__ = ["FEATURES", "REGISTRY"]

"""Router configuration: the sections of SPEC §4, their defaults and inheritance.

A router stores only what was configured on it; ``resolve`` lays that over its
parent's resolved settings, so configuring a child never changes its parent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .limits import LIMITS
from .log import DEFAULT_FORMAT

if TYPE_CHECKING:
    from .connection import HTTPConnection

DEFAULTS: dict[str, dict[str, Any]] = {
    "compression": {"enabled": False, "preferred": None, "level": None, "min_size": 1024},
    "cors": {
        "enabled": False,
        "origins": [],
        "credentials": False,
        "methods": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
        "headers": [],
        "expose": [],
        "max_age": None,
    },
    "logger": {"enabled": False, "format": DEFAULT_FORMAT, "tokens": None, "log": None},
    "session": {
        "enabled": False,
        "store": None,
        "timeout": 3600,
        "cookie": "_session",
        "http_only": True,
        "same_site": "lax",
        "path": "/",
        "domain": None,
        "secure": None,
    },
    "static": {
        "enabled": False,
        "location": "public",
        "index": ["index.html"],
        "dotfiles": False,
        "cache": None,
        "fallback": None,
    },
    "timeout": {"enabled": False, "value": 0},
    "limits": dict(LIMITS),
    "proxy": {"trusted": [], "hops": 0},
    "broker": {"broker": None},
}

# Sections without an on/off switch: they only carry values.
ALWAYS_ON = frozenset({"limits", "proxy", "broker"})

Enabled = bool | Callable[["HTTPConnection"], bool]

# Sections whose values a module checks when they are configured: its check_config().
_CHECKED = {
    "cors": ".cors",
    "proxy": ".proxy",
    "static": ".files",
    "compression": ".compression",
}


def normalise(section: str, value: Any) -> dict[str, Any]:
    """One configuration value to a partial section dict.

    ``True``/``False`` switch a section; a dict sets keys and, unless it says
    ``enabled``, switches the section on (configuring a thing means wanting it).
    """
    if section not in DEFAULTS:
        known = ", ".join(sorted(DEFAULTS))
        raise ValueError(f"unknown config section {section!r}; known sections: {known}")
    if section == "proxy" and isinstance(value, list | tuple):
        value = {"trusted": list(value)}
    if section == "broker" and not isinstance(value, Mapping):
        value = {"broker": value}
    if isinstance(value, bool) or callable(value):
        if section in ALWAYS_ON:
            raise ValueError(f"config section {section!r} takes a dict")
        return {"enabled": value}
    if not isinstance(value, Mapping):
        raise TypeError(f"config section {section!r} takes a dict or a bool, not {value!r}")
    unknown = set(value) - set(DEFAULTS[section])
    if unknown:
        raise ValueError(
            f"unknown key(s) {sorted(unknown)} in config section {section!r}; "
            f"known: {sorted(DEFAULTS[section])}"
        )
    partial = dict(value)
    if section in _CHECKED:
        # validated now, so that a typo fails at start-up, not on a request
        from importlib import import_module

        import_module(_CHECKED[section], __package__).check_config(partial)
    if section not in ALWAYS_ON:
        partial.setdefault("enabled", True)
    return partial


def merge(
    base: Mapping[str, dict[str, Any]], own: Mapping[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    merged = {name: dict(section) for name, section in base.items()}
    for name, partial in own.items():
        merged[name].update(partial)
    return merged


def is_on(section: Mapping[str, Any], connection: Any) -> bool:
    """Whether a section applies to this (HTTP or WebSocket) connection."""
    enabled = section["enabled"]
    return bool(enabled(connection)) if callable(enabled) else bool(enabled)


class Settings:
    """A router's resolved configuration plus what is derived from it once."""

    __slots__ = (
        "compression",
        "cors",
        "extensions",
        "limits",
        "logger",
        "proxy_hops",
        "sections",
        "session",
        "static",
        "timeout",
        "trusted",
    )

    def __init__(self, sections: dict[str, dict[str, Any]]) -> None:
        self.sections = sections
        self.limits: dict[str, int] = sections["limits"]
        logger = sections["logger"]
        self.logger = logger if logger["enabled"] else None
        timeout = sections["timeout"]
        self.timeout = timeout if timeout["enabled"] and timeout["value"] else None
        session = sections["session"]
        self.session = session if session["enabled"] else None
        compression = sections["compression"]
        self.compression = compression if compression["enabled"] else None
        cors = sections["cors"]
        self.cors = cors if cors["enabled"] else None
        static = sections["static"]
        self.static = static if static["enabled"] else None
        self.trusted: list[str] = list(sections["proxy"]["trusted"])
        self.proxy_hops: int = sections["proxy"]["hops"]
        # Other modules (files, cors, compression, sessions) cache their derived
        # objects here, keyed by module, so each is built once per resolution.
        self.extensions: dict[str, Any] = {}

    def __getitem__(self, section: str) -> dict[str, Any]:
        return self.sections[section]

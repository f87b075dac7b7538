"""Router configuration: the sections of the feature registry, their defaults
and inheritance.

A router stores only what was configured on it; its ``Settings`` lay that over
its parent's resolved sections, so configuring a child never changes its
parent. Every section belongs to one feature of ``features.FEATURES``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from .feature import Enabled, Feature
from .features import FEATURES, REGISTRY
from .hosts import AllowedHosts

if TYPE_CHECKING:
    from .router import Router

DEFAULTS: dict[str, dict[str, Any]] = {
    feature.name: dict(feature.defaults) for feature in FEATURES
}


def normalise(section: str, value: Any) -> dict[str, Any]:
    """One configuration value to a partial section dict.

    ``True``/``False`` (or a function of the connection) switch a section; a
    dict sets keys and, unless it says ``enabled``, switches the section on
    (configuring a thing means wanting it). The feature validates the keys now,
    so a typo fails at start-up, not on a request.
    """
    feature = REGISTRY.get(section)
    if feature is None:
        known = ", ".join(sorted(REGISTRY))
        raise ValueError(f"unknown config section {section!r}; known sections: {known}")
    value = feature.normalise(value)
    if isinstance(value, bool) or callable(value):
        if not feature.switch:
            raise ValueError(f"config section {section!r} takes a dict")
        return {"enabled": value}
    if not isinstance(value, Mapping):
        raise TypeError(f"config section {section!r} takes a dict or a bool, not {value!r}")
    unknown = set(value) - set(feature.defaults)
    if unknown:
        raise ValueError(
            f"unknown key(s) {sorted(unknown)} in config section {section!r}; "
            f"known: {sorted(feature.defaults)}"
        )
    partial = dict(value)
    feature.validate(partial)
    if feature.switch:
        partial.setdefault("enabled", True)
    return partial


def merge(
    base: Mapping[str, dict[str, Any]], own: Mapping[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    merged = {name: dict(section) for name, section in base.items()}
    for name, partial in own.items():
        merged[name].update(partial)
    return merged


#: The features of one phase in registry order, each with its ``enabled``
#: switch and its compiled state: what an exchange walks through.
Plan = tuple[tuple[Feature, Enabled, Any], ...]

# phase: (the attribute of its features, the attribute of its plan)
_PHASES: Final = {
    "attach": ("attaching", "attach_plan"),
    "attach_ws": ("ws_attaching", "ws_attach_plan"),
    "answer": ("answering", "answer_plan"),
    "finish": ("finishing", "finish_plan"),
}


class Settings:
    """A router's resolved configuration plus what is derived from it once: the
    features that take part in exchanges, and their compiled states."""

    __slots__ = (
        "_router",
        "_states",
        "allowed_hosts",
        "answer_plan",
        "answering",
        "attach_plan",
        "attaching",
        "finish_plan",
        "finishing",
        "limits",
        "proxy_hops",
        "sections",
        "trusted",
        "ws_attach_plan",
        "ws_attaching",
    )

    def __init__(self, sections: dict[str, dict[str, Any]], router: Router) -> None:
        self.sections = sections
        self._router = router
        self._states: dict[str, Any] = {}
        self.limits: dict[str, int] = sections["limits"]
        self.trusted: list[str] = list(sections["proxy"]["trusted"])
        self.proxy_hops: int = sections["proxy"]["hops"]
        # read by every request head (Server.locate): compiled here, not looked up
        hosts = sections["allowed_hosts"]["hosts"]
        self.allowed_hosts = AllowedHosts(hosts) if hosts else None
        on = [
            feature
            for feature in FEATURES
            if feature.switch and sections[feature.name]["enabled"] is not False
        ]
        #: Features that take part in every exchange / handshake / router answer /
        #: exchange end, in registry order.
        self.attaching = tuple(feature for feature in on if feature.takes("attach"))
        self.ws_attaching = tuple(feature for feature in on if feature.takes("attach_ws"))
        self.answering = tuple(feature for feature in on if feature.takes("answer"))
        self.finishing = tuple(feature for feature in on if feature.takes("finish"))
        #: The same as plans (``plan()``), made on first use: states compile
        #: lazily (a static folder is resolved when the server starts).
        self.attach_plan: Plan | None = None
        self.ws_attach_plan: Plan | None = None
        self.answer_plan: Plan | None = None
        self.finish_plan: Plan | None = None

    def __getitem__(self, section: str) -> dict[str, Any]:
        return self.sections[section]

    def __getattr__(self, name: str) -> dict[str, Any] | None:
        # settings.cors, settings.session...: the section when it is on, else None
        if name in REGISTRY:
            return self.section(name)
        raise AttributeError(f"'Settings' object has no attribute {name!r}")

    def section(self, name: str) -> dict[str, Any] | None:
        """The section ``name`` when it is switched on (or has no switch), else None."""
        section = self.sections[name]
        return section if section.get("enabled", True) is not False else None

    def plan(self, phase: str) -> Plan:
        """The plan of ``phase`` (``"attach"``, ``"attach_ws"``, ``"answer"``,
        ``"finish"``), compiling the states it needs; kept in ``<phase>_plan``.
        Walking it costs no call per feature for its switch and its state."""
        features, kept = _PHASES[phase]
        plan: Plan = tuple(
            (feature, self.sections[feature.name]["enabled"], self.state(feature))
            for feature in getattr(self, features)
        )
        setattr(self, kept, plan)
        return plan

    def state(self, feature: Feature) -> Any:
        """What ``feature`` compiled from this router's section (built once)."""
        states = self._states
        name = feature.name
        if name in states:
            return states[name]
        state = states[name] = feature.compile(self.sections[name], self._router)
        return state


__all__ = ["DEFAULTS", "Enabled", "Plan", "Settings", "merge", "normalise"]

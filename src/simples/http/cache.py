"""Cache-Control response values built from a small config mapping."""

from collections.abc import Mapping

# Output order, and each key's directive; the first group takes seconds, the
# second is present or absent.
_SECONDS = {
    "max_age": "max-age",
    "s_max_age": "s-maxage",
    "stale_while_revalidate": "stale-while-revalidate",
    "stale_if_error": "stale-if-error",
}
_FLAGS = {
    "no_cache": "no-cache",
    "no_store": "no-store",
    "must_revalidate": "must-revalidate",
    "immutable": "immutable",
}
_ORDER = (
    "no_cache",
    "no_store",
    "max_age",
    "s_max_age",
    "must_revalidate",
    "immutable",
    "stale_while_revalidate",
    "stale_if_error",
)
_KNOWN = frozenset({"type", *_ORDER})


def cache_control(config: Mapping[str, object]) -> str:
    """``{"type": "public", "max_age": 60}`` → ``public, max-age=60``.

    ``type`` is ``"private"`` unless given, so a config never makes a response
    shareable by accident. A key set to ``None`` is left out.
    """
    unknown = [key for key in config if key not in _KNOWN]
    if unknown:
        raise ValueError(f"unknown cache directive(s): {', '.join(map(repr, unknown))}")
    kind = config.get("type")
    if kind is None:
        kind = "private"
    if kind not in ("private", "public"):
        raise ValueError(f"cache type must be 'private' or 'public', got {kind!r}")
    parts = [str(kind)]
    for key in _ORDER:
        value = config.get(key)
        if value is None:
            continue
        flag = _FLAGS.get(key)
        if flag is not None:
            if not isinstance(value, bool):
                raise ValueError(f"{key} must be a bool, got {value!r}")
            if value:
                parts.append(flag)
            continue
        # bool is an int subclass, and max_age=True is surely a mistake.
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{key} must be a non-negative int, got {value!r}")
        parts.append(f"{_SECONDS[key]}={value}")
    return ", ".join(parts)

"""A read-mostly multi-dict: ``md[key]`` is the first value, ``getall`` all of them."""

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar, overload

from mypy_extensions import mypyc_attr

V = TypeVar("V")
D = TypeVar("D")
T = TypeVar("T")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def _boolean(value: object) -> bool:
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("not a boolean (true/false, 1/0, yes/no, on/off)")


@mypyc_attr(allow_interpreted_subclasses=True)
class MultiDict(Mapping[str, V], Generic[V]):
    """Keys keep their first-seen order; each key holds one or more values."""

    __slots__ = ("_items",)

    def __init__(self, pairs: Iterable[tuple[str, V]] = ()) -> None:
        items: dict[str, list[V]] = {}
        for key, value in pairs:
            values = items.get(key)
            if values is None:
                items[key] = [value]
            else:
                values.append(value)
        self._items = items

    def __getitem__(self, key: str) -> V:
        return self._items[key][0]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    @overload
    def get(self, key: str) -> V | None: ...
    @overload
    def get(self, key: str, default: V | D) -> V | D: ...
    @overload
    def get(self, key: str, default: D, type: Callable[[V], T]) -> T | D: ...
    @overload
    def get(self, key: str, *, type: Callable[[V], T]) -> T | None: ...
    def get(self, key: str, default: object = None, type: Any = None) -> object:
        """The first value of ``key`` (``default`` when absent), converted by
        ``type`` (``int``, ``float``, ``bool``, any callable) when given: a value
        it refuses (``ValueError``/``TypeError``) raises what ``invalid`` returns."""
        values = self._items.get(key)
        if type is None:
            return values[0] if values else default
        if not values:
            return default
        value = values[0]
        try:
            if type is bool:
                return _boolean(value)
            return type(value)
        except (ValueError, TypeError) as exc:
            raise self.invalid(key, value, exc) from None

    def invalid(self, key: str, value: V, exc: Exception) -> Exception:
        """The error ``get(key, type=...)`` raises for a value ``type`` refused
        (the request's query answers 400 instead)."""
        return ValueError(f"{key}={value!r}: {exc}")

    def getall(self, key: str) -> list[V]:
        """Every value of ``key`` in arrival order; ``[]`` when absent."""
        return list(self._items.get(key, ()))

    def add(self, key: str, value: V) -> None:
        self._items.setdefault(key, []).append(value)

    def multi_items(self) -> list[tuple[str, V]]:
        return [(key, value) for key, values in self._items.items() for value in values]

    def to_dict(self) -> dict[str, list[V]]:
        return {key: list(values) for key, values in self._items.items()}

    def __repr__(self) -> str:
        return f"MultiDict({self.multi_items()!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MultiDict):
            return self._items == other._items
        if isinstance(other, Mapping):
            return dict(self.items()) == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

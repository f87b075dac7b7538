"""A read-mostly multi-dict: ``md[key]`` is the first value, ``getall`` all of them."""

from collections.abc import Iterable, Iterator, Mapping
from typing import Generic, TypeVar, overload

V = TypeVar("V")
D = TypeVar("D")


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
    def get(self, key: str, default: object = None) -> object:
        values = self._items.get(key)
        return values[0] if values else default

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

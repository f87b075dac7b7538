"""Request headers as a lazy, case-insensitive mapping, and header validation."""

import re
from collections.abc import Iterator, Mapping
from operator import itemgetter
from typing import TypeVar, overload

from mypy_extensions import mypyc_attr

D = TypeVar("D")

# RFC 9110 §5.6.2 tchar, the one definition of a token (header and method names,
# cookie names, parameter names); an explicit class so that non-ASCII letters
# never pass.
TCHAR = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
TOKEN = re.compile(TCHAR + "+")
# The same set for str.strip, which checks a name in C faster than a regex call.
TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Everything a field value may not carry: C0 controls other than HTAB, DEL, and
# code points that latin-1 (the wire encoding of header values) cannot represent.
_BAD_VALUE = re.compile("[\x00-\x08\x0a-\x1f\x7f\u0100-\U0010ffff]")


# Caches keyed by the names applications use: few distinct values, bounded anyway.
_KEYS: dict[str, bytes] = {}
_NAME = itemgetter(0)
_ABSENT = object()
_VALID_NAMES: dict[str, str] = {}


def _key(name: str) -> bytes:
    """The raw (lowercase bytes) form of a header name, remembered (bounded)."""
    key = name.lower().encode("latin-1", "replace")
    if len(_KEYS) < 1024:
        _KEYS[name] = key
    return key


@mypyc_attr(allow_interpreted_subclasses=True)
class Headers(Mapping[str, str]):
    """Request headers from the ASGI ``scope["headers"]`` list.

    Nothing is decoded until the first lookup: many handlers never read a header,
    so building the index up front would be wasted work on every request.
    """

    __slots__ = ("_all_lower", "_index", "raw")

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.raw = raw
        self._index: dict[str, list[str]] | None = None
        self._all_lower: bool | None = None

    def _build(self) -> dict[str, list[str]]:
        index: dict[str, list[str]] = {}
        for name, value in self.raw:
            # ASGI promises lowercase names, but a misbehaving server must not
            # make a header unreachable, and lowering ASCII is cheap.
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            values = index.get(key)
            if values is None:
                index[key] = [text]
            else:
                values.append(text)
        self._index = index
        return index

    def _scan(self, name: str) -> list[str]:
        # A handler reads a few headers: comparing raw bytes (ASGI promises lowercase
        # names) is cheaper than decoding every header into an index first.
        key = _KEYS[name] if name in _KEYS else _key(name)
        values = [value.decode("latin-1") for found, value in self.raw if found == key]
        if not values and not self._lowercase():
            values = self._build().get(name.lower(), [])
        return values

    def _lowercase(self) -> bool:
        """Whether the server kept ASGI's promise of lowercase names (checked once)."""
        lowercase = self._all_lower
        if lowercase is None:
            # All names at once, in C (a generator would be a frame per header).
            names = b"".join(map(_NAME, self.raw))
            lowercase = self._all_lower = names == names.lower()
        return lowercase

    def __getitem__(self, name: str) -> str:
        index = self._index
        values = self._scan(name) if index is None else index.get(name.lower())
        if not values:
            raise KeyError(name)
        return values[0]

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str | D) -> str | D: ...
    def get(self, name: str, default: object = None) -> object:
        index = self._index
        if index is None:
            # _scan inlined for the first value only: the most common lookup
            key = _KEYS[name] if name in _KEYS else _key(name)
            for found, value in self.raw:
                if found == key:
                    return value.decode("latin-1")
            if self._lowercase():
                return default
            index = self._build()
        values = index.get(name.lower())
        return values[0] if values else default

    def getall(self, name: str) -> list[str]:
        """Every value of ``name`` in arrival order; ``[]`` when absent."""
        index = self._index
        if index is None:
            return self._scan(name)
        values = index.get(name.lower())
        return list(values) if values else []

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return self.get(name, _ABSENT) is not _ABSENT

    def __iter__(self) -> Iterator[str]:
        index = self._index
        if index is None:
            index = self._build()
        return iter(index)

    def __len__(self) -> int:
        index = self._index
        if index is None:
            index = self._build()
        return len(index)

    def __repr__(self) -> str:
        return f"Headers({self.raw!r})"


def validate_header_name(name: str) -> str:
    """Return ``name`` lowercased, or raise ``ValueError`` unless it is an RFC 9110
    token (a CR, LF or colon here would let a caller forge extra header lines)."""
    known = _VALID_NAMES.get(name) if isinstance(name, str) else None
    if known is not None:
        return known
    if not isinstance(name, str) or TOKEN.fullmatch(name) is None:
        raise ValueError(f"invalid header name: {name!r}")
    lowered = name.lower()
    if len(_VALID_NAMES) < 1024:  # applications use a few names; bound the rest
        _VALID_NAMES[name] = lowered
    return lowered


def validate_header_value(value: str) -> str:
    """Return ``value`` unchanged, or raise ``ValueError`` if it holds a control
    character (HTAB excepted) or cannot be encoded as latin-1."""
    if not isinstance(value, str) or _BAD_VALUE.search(value) is not None:
        raise ValueError(f"invalid header value: {value!r}")
    return value


def with_token(values: list[str] | None, token: str) -> list[str] | None:
    """The lines of a comma-separated list header (``Vary``) with ``token`` added
    as one line, or ``None`` when it is listed already (case-insensitively) or
    the header is ``*`` (RFC 9110 §12.5.5)."""
    if not values:
        return [token]
    wanted = token.lower()
    for value in values:
        for item in value.split(","):
            item = item.strip(" \t").lower()
            if item == "*" or item == wanted:
                return None
    return [f"{', '.join(values)}, {token}"]

"""Route patterns: converters, the lookup tree and ``url_for`` paths.

See docs/routing.md and docs/types.md.

A pattern such as ``/users/:id<int>/files/*`` is cut at its slashes. Every
segment up to the first one that can span slashes (``*`` or a ``path``
parameter) becomes an edge of a tree: a fixed segment is a dict key, a lone
parameter (``:id``, ``:id<int>``) a shared parameter edge, a segment mixing
text and parameters (``:name.:ext``) a per-segment regex. What is left of the
pattern (from the first spanning segment on) is matched as one regex against
the rest of the path, at the node where it starts.

A lookup walks the tree along the request's segments. Several routes may
match one path, and the earliest registered must win (docs/routing.md): every
node knows the lowest registration index below it, so the walk explores a
branch only while it can still beat the best match found, and stops as soon
as nothing can. With routes that differ in a fixed segment the walk follows
one dict lookup per segment whatever the number of routes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode

from mypy_extensions import mypyc_attr

_PARAM = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)(?:<([A-Za-z_][A-Za-z0-9_]*)>)?|\*")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NONE = 1 << 62  # "no match yet": above every registration index


@mypyc_attr(allow_interpreted_subclasses=True)
class Converter:
    """A parameter type: the text it accepts (``regex``, matched whole), how to
    turn that text into a value (``parse``; a ``ValueError`` or ``TypeError``
    means "no match") and back (``format``, for ``url_for``)."""

    __slots__ = ("format", "name", "parse", "pattern", "regex", "schema", "spans")

    def __init__(
        self,
        name: str,
        regex: str,
        parse: Callable[[str], Any],
        format: Callable[[Any], str] = str,
        schema: Mapping[str, Any] | None = None,
        *,
        spans: bool = False,
    ) -> None:
        if not _NAME.fullmatch(name):
            raise ValueError(f"a converter name is a Python identifier, got {name!r}")
        self.name = name
        self.pattern = regex
        self.regex = re.compile(regex)
        if self.regex.groups:
            # groups would shift the ones the route's regex numbers
            self.pattern = re.sub(r"\((?!\?)", "(?:", regex)
            self.regex = re.compile(self.pattern)
        self.parse = parse
        self.format = format
        #: The JSON Schema of the value, for ``server.openapi()``.
        self.schema: dict[str, Any] = dict(schema) if schema else {"type": "string"}
        #: Whether values hold slashes (``path``): then the rest of the
        #: pattern is matched against the rest of the path.
        self.spans = spans

    def __repr__(self) -> str:
        return f"Converter({self.name!r}, {self.pattern!r})"


_UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

#: The built-in converters (``server.converter()`` adds to a copy per server).
BUILTIN: dict[str, Converter] = {
    "int": Converter("int", "-?[0-9]+", int, str, {"type": "integer"}),
    "float": Converter(
        "float",
        r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?",
        float,
        repr,
        {"type": "number"},
    ),
    "uuid": Converter("uuid", _UUID, uuid.UUID, str, {"type": "string", "format": "uuid"}),
    "path": Converter("path", ".+", str, str, {"type": "string"}, spans=True),
}


@mypyc_attr(allow_interpreted_subclasses=True)
class Param:
    """``:name`` or ``:name<type>`` (``converter`` is ``None`` for plain text),
    or ``*`` (name ``"*"``)."""

    __slots__ = ("converter", "name")

    def __init__(self, name: str, converter: Converter | None) -> None:
        self.name = name
        self.converter = converter

    @property
    def spans(self) -> bool:
        converter = self.converter
        return self.name == "*" or (converter is not None and converter.spans)

    def regex(self) -> str:
        if self.name == "*":
            return ".*"
        return "[^/]+" if self.converter is None else self.converter.pattern


Piece = str | Param


def parse_pattern(path: str, converters: Mapping[str, Converter] | None = None) -> list[Piece]:
    """``/u/:id<int>/*`` to ``["/u/", Param("id", int), "/", Param("*", None)]``."""
    table = BUILTIN if converters is None else converters
    pieces: list[Piece] = []
    names: set[str] = set()
    last = 0
    for match in _PARAM.finditer(path):
        if match.start() > last:
            pieces.append(path[last : match.start()])
        name = match.group(1) or "*"
        if name in names:
            raise ValueError(f"route {path!r} names {name!r} twice")
        names.add(name)
        kind = match.group(2)
        converter = None
        if kind is not None:
            converter = table.get(kind)
            if converter is None:
                raise ValueError(
                    f"route {path!r}: unknown parameter type {kind!r} "
                    f"(known: {', '.join(sorted(table))}; add one with server.converter())"
                )
        pieces.append(Param(name, converter))
        last = match.end()
    if last < len(path):
        pieces.append(path[last:])
    return pieces


def pattern_regex(pieces: Iterable[Piece]) -> str:
    """The regex source of ``pieces``, one group per parameter."""
    return "".join(
        f"({piece.regex()})" if isinstance(piece, Param) else re.escape(piece) for piece in pieces
    )


# ---------------------------------------------------------------- the tree


class _Node:
    __slots__ = ("dynamic", "leaf", "low", "static", "tails")

    def __init__(self) -> None:
        #: Fixed segments: text to child.
        self.static: dict[str, _Node] = {}
        #: Parameter edges: (key, kind, test, converters, child); kind 0 plain
        #: text, 1 one converter (test is its regex), 2 a mixed segment (test is
        #: its regex, converters one per group, ``None`` for plain text).
        self.dynamic: list[tuple[Any, int, Any, Any, _Node]] = []
        #: Routes whose rest is matched in one go: (index, route, regex, converters).
        self.tails: list[tuple[int, Any, re.Pattern[str], tuple[Converter | None, ...]]] = []
        #: The first route registered that ends here: (index, route).
        self.leaf: tuple[int, Any] | None = None
        #: The lowest registration index in this subtree.
        self.low = _NONE


#: Up to this many routes (with built-in parameter types only) a tree is also
#: kept as a list of whole-path regexes, tried in order: for a handful of
#: routes one or two C regex calls beat a walk in Python.
LINEAR = 8


@mypyc_attr(allow_interpreted_subclasses=True)
class RouteTree:
    """The pattern routes of one method (in registration order) as a tree."""

    __slots__ = ("count", "linear", "root")

    def __init__(self) -> None:
        self.root = _Node()
        self.count = 0
        #: ``(regex, converters or None, route)`` per route while the tree is small.
        self.linear: list[tuple[re.Pattern[str], Any, Any]] | None = []

    def add(self, route: Any, pieces: list[Piece]) -> None:
        """Add ``route`` (its pattern as ``parse_pattern`` pieces, starting with
        ``/``) after every route added before."""
        index = self.count
        self.count += 1
        linear = self.linear
        if linear is not None:
            params = [piece for piece in pieces if isinstance(piece, Param)]
            if index >= LINEAR or any(
                p.converter is not None and BUILTIN.get(p.converter.name) is not p.converter
                for p in params
            ):
                # a custom regex might match "/" where the tree cuts segments first
                self.linear = None
            else:
                converters = tuple(p.converter for p in params)
                linear.append(
                    (
                        re.compile(pattern_regex(pieces)),
                        converters if any(converters) else None,
                        route,
                    )
                )
        segments = _segments(pieces)
        node = self.root
        node.low = min(node.low, index)
        for position, segment in enumerate(segments):
            if any(isinstance(piece, Param) and piece.spans for piece in segment):
                rest: list[Piece] = []
                for later in segments[position:]:
                    if rest:
                        rest.append("/")
                    rest.extend(later)
                converters = tuple(p.converter for p in rest if isinstance(p, Param))
                regex = re.compile(pattern_regex(rest))
                node.tails.append((index, route, regex, converters))
                return
            node = _child(node, segment)
            node.low = min(node.low, index)
        if node.leaf is None:
            node.leaf = (index, route)

    def find(self, path: str) -> tuple[Any, Sequence[Any]] | None:
        """The earliest registered route matching ``path`` and its values."""
        linear = self.linear
        if linear is not None:
            for regex, converters, route in linear:
                match = regex.fullmatch(path)
                if match is not None:
                    if converters is None:
                        return route, match.groups()
                    values = _convert(match.groups(), converters)
                    if values is not None:
                        return route, values
            return None
        if path[:1] != "/":
            return None
        found: list[Any] = [_NONE, None, None]
        segments = path[1:].split("/")
        _walk(self.root, segments, 0, len(segments), [], found)
        if found[1] is None:
            return None
        return found[1], found[2]


def _segments(pieces: list[Piece]) -> list[list[Piece]]:
    """Pieces cut at the slashes of their text (the leading one dropped)."""
    segments: list[list[Piece]] = [[]]
    for piece in pieces:
        if isinstance(piece, Param):
            segments[-1].append(piece)
            continue
        parts = piece.split("/")
        if parts[0]:
            segments[-1].append(parts[0])
        for part in parts[1:]:
            segments.append([part] if part else [])
    if segments[0] == []:  # the leading "/"
        segments.pop(0)
    else:  # pragma: no cover - route paths start with "/"
        raise ValueError("a route pattern starts with '/'")
    return segments


def _child(node: _Node, segment: list[Piece]) -> _Node:
    if not segment or (len(segment) == 1 and isinstance(segment[0], str)):
        text = segment[0] if segment else ""
        assert isinstance(text, str)
        child = node.static.get(text)
        if child is None:
            child = node.static[text] = _Node()
        return child
    if len(segment) == 1:
        param = segment[0]
        assert isinstance(param, Param)
        converter = param.converter
        if converter is None:
            key: Any = (0,)
            edge: tuple[int, Any, Any] = (0, None, None)
        else:
            key = (1, converter.name)
            edge = (1, converter.regex, converter)
    else:
        source = pattern_regex(segment)
        converters = tuple(p.converter for p in segment if isinstance(p, Param))
        key = (2, source, tuple(c and c.name for c in converters))
        edge = (2, re.compile(source), converters)
    for existing in node.dynamic:
        if existing[0] == key:
            return existing[4]
    child = _Node()
    node.dynamic.append((key, *edge, child))
    return child


def _walk(
    node: _Node, segments: list[str], i: int, n: int, values: list[Any], found: list[Any]
) -> None:
    """Depth first, pruned by registration index: ``found`` ends up holding
    ``[index, route, values]`` of the earliest route below ``node``."""
    # fixed segments only: follow them without recursion
    while not node.dynamic and not node.tails:
        if i == n:
            leaf = node.leaf
            if leaf is not None and leaf[0] < found[0]:
                found[0], found[1], found[2] = leaf[0], leaf[1], values.copy()
            return
        child = node.static.get(segments[i])
        if child is None or child.low >= found[0]:
            return
        node = child
        i += 1
    if i == n:
        leaf = node.leaf
        if leaf is not None and leaf[0] < found[0]:
            found[0], found[1], found[2] = leaf[0], leaf[1], values.copy()
        return
    if node.tails:
        rest = "/".join(segments[i:]) if i + 1 < n else segments[i]
        for index, route, regex, converters in node.tails:
            if index >= found[0]:
                break
            match = regex.fullmatch(rest)
            if match is not None:
                parsed = _convert(match.groups(), converters)
                if parsed is not None:
                    found[0], found[1], found[2] = index, route, values + parsed
                    break
    segment = segments[i]
    last = i + 1 == n
    child = node.static.get(segment)
    if child is not None and child.low < found[0]:
        if last and not child.tails:  # the common end: no call for the leaf
            leaf = child.leaf
            if leaf is not None and leaf[0] < found[0]:
                found[0], found[1], found[2] = leaf[0], leaf[1], values.copy()
        else:
            _walk(child, segments, i + 1, n, values, found)
    for _key, kind, test, converter, child in node.dynamic:
        if child.low >= found[0]:
            continue
        mark = len(values)
        if kind == 0:
            if not segment:
                continue
            values.append(segment)
        elif kind == 1:
            if test.fullmatch(segment) is None:
                continue
            try:
                values.append(converter.parse(segment))
            except (ValueError, TypeError):
                continue
        else:
            match = test.fullmatch(segment)
            if match is None:
                continue
            parsed = _convert(match.groups(), converter)
            if parsed is None:
                continue
            values.extend(parsed)
        if last and not child.tails:
            leaf = child.leaf
            if leaf is not None and leaf[0] < found[0]:
                found[0], found[1], found[2] = leaf[0], leaf[1], values.copy()
        else:
            _walk(child, segments, i + 1, n, values, found)
        del values[mark:]


def _convert(texts: tuple[Any, ...], converters: tuple[Converter | None, ...]) -> list[Any] | None:
    values: list[Any] = []
    for text, converter in zip(texts, converters, strict=True):
        if converter is None:
            values.append(text)
            continue
        try:
            values.append(converter.parse(text))
        except (ValueError, TypeError):
            return None
    return values


# ---------------------------------------------------------------- url_for


def build_path(pieces: list[Piece], params: Mapping[str, Any], name: str) -> str:
    """The path of a route with ``params`` filled in, percent-encoded
    (``/`` too, except in ``*`` and ``path`` values)."""
    parts: list[str] = []
    used = 0
    for piece in pieces:
        if not isinstance(piece, Param):
            parts.append(quote(piece, safe="/:@!$&'()*+,;=-._~"))
            continue
        if piece.name not in params:
            raise LookupError(f"url_for({name!r}) needs the parameter {piece.name!r}")
        used += 1
        value = params[piece.name]
        converter = piece.converter
        text = converter.format(value) if converter is not None else str(value)
        if (converter is not None and converter.regex.fullmatch(text) is None) or (
            converter is None and piece.name != "*" and not text
        ):
            raise ValueError(
                f"url_for({name!r}): {piece.name}={value!r} does not fit the route's "
                f"{converter.name if converter else 'text'} parameter"
            )
        parts.append(quote(text, safe="/" if piece.spans else ""))
    if used != len(params):
        known = {piece.name for piece in pieces if isinstance(piece, Param)}
        extra = ", ".join(sorted(set(params) - known))
        raise LookupError(f"url_for({name!r}) has no parameter {extra}")
    return "".join(parts)


def with_query(path: str, query: Mapping[str, Any] | Iterable[tuple[str, Any]] | None) -> str:
    if not query:
        return path
    items = query.items() if isinstance(query, Mapping) else query
    encoded = urlencode([(k, v) for k, v in items if v is not None], doseq=True)
    return f"{path}?{encoded}" if encoded else path


__all__ = [
    "BUILTIN",
    "Converter",
    "Param",
    "RouteTree",
    "build_path",
    "parse_pattern",
    "pattern_regex",
    "with_query",
]

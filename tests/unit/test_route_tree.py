"""The route lookup tree (paths.RouteTree): ordering rules, converters, url_for
paths, and lookup cost that does not grow with the number of routes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from simples import paths
from simples.paths import Converter, RouteTree, build_path, parse_pattern
from simples.router import Router

# Whether mypyc compiled simples.paths (hatch_build.py; ./dev test runs both).
COMPILED = not paths.__file__.endswith(".py")


async def handler(connection: Any) -> None:
    return None


def tree_of(*patterns: str, linear: bool = False) -> RouteTree:
    tree = RouteTree()
    for pattern in patterns:
        tree.add(pattern, parse_pattern(pattern))
    if not linear:
        tree.linear = None  # the tree walk, whatever the size
    return tree


@pytest.mark.parametrize("linear", [False, True])
def test_earlier_registered_pattern_wins_even_if_less_specific(linear: bool) -> None:
    tree = tree_of("/:x/b", "/a/:y", "/a/b/*", "/*", linear=linear)
    found = tree.find("/a/b")
    assert found is not None
    assert found[0] == "/:x/b"
    assert list(found[1]) == ["a"]
    found = tree.find("/a/c")
    assert found is not None
    assert found[0] == "/a/:y"
    found = tree.find("/a/b/c")
    assert found is not None
    assert found[0] == "/a/b/*"
    found = tree.find("/zz/yy/xx")
    assert found is not None
    assert found[0] == "/*"
    assert list(found[1]) == ["zz/yy/xx"]


@pytest.mark.parametrize("linear", [False, True])
def test_star_matches_empty_and_slashes_but_needs_its_slash(linear: bool) -> None:
    tree = tree_of("/f/*", linear=linear)
    assert tree.find("/f") is None
    found = tree.find("/f/")
    assert found is not None
    assert list(found[1]) == [""]
    found = tree.find("/f/a/b/")
    assert found is not None
    assert list(found[1]) == ["a/b/"]
    star = tree_of("/static*", linear=linear)
    found = star.find("/static/x.css")
    assert found is not None
    assert list(found[1]) == ["/x.css"]


@pytest.mark.parametrize("linear", [False, True])
def test_params_need_a_non_empty_segment(linear: bool) -> None:
    tree = tree_of("/u/:id", "/u/:id/", linear=linear)
    assert tree.find("/u/") is None
    found = tree.find("/u/1/")
    assert found is not None
    assert found[0] == "/u/:id/"
    assert tree.find("/u/1/2") is None
    assert tree.find("u/1") is None


@pytest.mark.parametrize("linear", [False, True])
def test_mixed_segments(linear: bool) -> None:
    tree = tree_of("/files/:name.:ext", "/v:major<int>/x", linear=linear)
    found = tree.find("/files/report.tar.gz")
    assert found is not None
    assert list(found[1]) == ["report.tar", "gz"]
    found = tree.find("/v2/x")
    assert found is not None
    assert list(found[1]) == [2]
    assert tree.find("/vx/x") is None


@pytest.mark.parametrize("linear", [False, True])
def test_converter_failure_falls_through_to_the_next_route(linear: bool) -> None:
    tree = tree_of("/n/:id<int>", "/n/:id<uuid>", "/n/:slug", linear=linear)
    found = tree.find("/n/-12")
    assert found is not None
    assert list(found[1]) == [-12]
    value = "A1B2C3D4-0000-4000-8000-00000000000F"
    found = tree.find(f"/n/{value}")
    assert found is not None
    assert found[0] == "/n/:id<uuid>"
    assert list(found[1]) == [uuid.UUID(value)]
    found = tree.find("/n/12a")
    assert found is not None
    assert found[0] == "/n/:slug"


def test_path_converter_takes_the_rest_with_slashes() -> None:
    tree = tree_of("/docs/:page<path>/edit", "/docs/:page<path>")
    found = tree.find("/docs/a/b/c/edit")
    assert found is not None
    assert found[0] == "/docs/:page<path>/edit"
    assert list(found[1]) == ["a/b/c"]
    found = tree.find("/docs/a/b")
    assert found is not None
    assert list(found[1]) == ["a/b"]
    assert tree.find("/docs/") is None


def test_custom_converter_parse_failure_is_no_match() -> None:
    def parse(text: str) -> int:
        value = int(text)
        if value > 10:
            raise ValueError("too big")
        return value

    small = Converter("small", "[0-9]+", parse)
    tree = RouteTree()
    tree.add("a", parse_pattern("/x/:n<small>", {"small": small}))
    tree.add("b", parse_pattern("/x/:n", {}))
    assert tree.linear is None  # custom types always use the tree
    assert tree.find("/x/3") == ("a", [3])
    assert tree.find("/x/30") == ("b", ["30"])


def test_unknown_type_and_bad_names_fail_at_registration() -> None:
    with pytest.raises(ValueError, match="unknown parameter type"):
        parse_pattern("/x/:id<nope>")
    with pytest.raises(ValueError, match="twice"):
        parse_pattern("/x/:id/:id")
    with pytest.raises(ValueError, match="identifier"):
        Converter("bad name", "x", str)


class Counting:
    """A converter regex that counts its calls."""

    def __init__(self, pattern: str) -> None:
        import re

        self.regex = re.compile(pattern)
        self.calls = 0

    def fullmatch(self, text: str) -> Any:
        self.calls += 1
        return self.regex.fullmatch(text)


@pytest.mark.parametrize("size", [10, 100, 1000])
def test_lookup_work_does_not_grow_with_the_number_of_routes(size: int) -> None:
    router = Router()
    router.converter("num", "[0-9]+", int)
    converter = router.converters["num"]
    counter = Counting("[0-9]+")
    converter.regex = counter  # type: ignore[assignment]
    for i in range(size):
        router.get(f"/items{i}/:id<num>", handler)
        router.get(f"/:id<num>/leaf{i}", handler)
        router.get(f"/v{i}/:a/:b", handler)
    calls = {"walks": 0}
    walk = paths._walk

    def counted(*args: Any) -> None:
        calls["walks"] += 1
        walk(*args)

    paths._walk = counted  # type: ignore[assignment]
    try:
        found = router.match("GET", f"/items{size - 1}/42")
        assert found is not None
        assert found[1] == {"id": 42}
        found = router.match("GET", f"/7/leaf{size - 1}")
        assert found is not None
        assert found[1] == {"id": 7}
        found = router.match("GET", f"/v{size - 1}/x/y")
        assert found is not None
        assert found[1] == {"a": "x", "b": "y"}
    finally:
        paths._walk = walk  # type: ignore[assignment]
    # the same few converter calls and tree steps for 10 or 1,000 routes
    assert counter.calls == 4  # one per segment a num edge meets
    # (the compiled build calls _walk inside its own module, past the patch:
    # there the converter calls above are what shows the work)
    assert calls["walks"] == (0 if COMPILED else 7)  # whatever the size


def test_router_match_order_through_the_tree() -> None:
    router = Router()
    router.all("/p/:a", handler)
    router.get("/p/*", handler)
    for i in range(20):  # enough routes for the tree (not the short list)
        router.get(f"/q{i}/:a", handler)
    router.get("/p/:a", handler)
    router.get("/users/:id", handler)
    router.get("/users/me", handler)
    assert router._trees["GET"].linear is None
    found = router.match("GET", "/p/1")
    assert found is not None
    assert found[0].path == "/p/*"
    found = router.match("HEAD", "/p/1")
    assert found is not None
    assert found[0].path == "/p/*"
    found = router.match("POST", "/p/1")
    assert found is not None
    assert (found[0].method, found[0].path) == ("*", "/p/:a")
    found = router.match("GET", "/users/me")
    assert found is not None
    assert found[0].path == "/users/me"
    assert found[1] == {}
    assert router.allowed("/q3/x") == ["GET", "HEAD", "OPTIONS"]
    assert router.allowed("/p/1")[:3] == ["GET", "HEAD", "POST"]


def test_build_path_encodes_and_checks() -> None:
    pieces = parse_pattern("/u/:id<int>/:name/f/:rest<path>")
    assert build_path(pieces, {"id": -3, "name": "a b/c", "rest": "x y/z"}, "n") == (
        "/u/-3/a%20b%2Fc/f/x%20y/z"
    )
    with pytest.raises(LookupError):
        build_path(pieces, {"id": 1, "name": "a"}, "n")
    with pytest.raises(LookupError):
        build_path(pieces, {"id": 1, "name": "a", "rest": "r", "extra": 1}, "n")
    with pytest.raises(ValueError, match="does not fit"):
        build_path(pieces, {"id": "x", "name": "a", "rest": "r"}, "n")

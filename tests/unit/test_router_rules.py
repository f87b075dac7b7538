"""Route compilation, matching order and config inheritance, without a server."""

from __future__ import annotations

from typing import Any

import pytest

from simples.config import DEFAULTS, merge, normalise
from simples.router import Router, compile_pattern


async def handler(connection: Any) -> None:
    return None


def test_compile_pattern_fixed_and_named() -> None:
    assert compile_pattern("/a/b") == (None, ())
    regex, names = compile_pattern("/u/:id/f/*")
    assert names == ("id", "*")
    assert regex is not None
    found = regex.fullmatch("/u/7/f/x/y")
    assert found is not None
    assert found.groups() == ("7", "x/y")
    assert regex.fullmatch("/u//f/x") is None


def test_literal_characters_are_escaped() -> None:
    regex, _ = compile_pattern("/a.b/:x(1)")
    assert regex is not None
    assert regex.fullmatch("/a.b/q(1)") is not None
    assert regex.fullmatch("/aXb/q(1)") is None


def test_param_names_stop_at_non_word_characters() -> None:
    regex, names = compile_pattern("/files/:name.json")
    assert names == ("name",)
    assert regex is not None
    found = regex.fullmatch("/files/report.json")
    assert found is not None
    assert found.group(1) == "report"


def test_match_order_and_head_fallback() -> None:
    router = Router()
    router.all("/x", handler).get("/x", handler).get("/p/:a", handler).all("/p/:a", handler)
    head = router.match("HEAD", "/x")
    assert head is not None
    assert head[0].method == "GET"
    post = router.match("POST", "/x")
    assert post is not None
    assert post[0].method == "*"
    route, params = router.match("GET", "/p/1") or (None, None)
    assert route is not None
    assert (route.method, params) == ("GET", {"a": "1"})
    assert router.match("GET", "/nothing") is None


def test_allowed_lists_methods_with_head_and_options() -> None:
    router = Router()
    router.get("/a", handler).post("/a", handler).put("/b/:id", handler)
    assert router.allowed("/a") == ["GET", "HEAD", "POST", "OPTIONS"]
    assert router.allowed("/b/1") == ["PUT", "OPTIONS"]
    assert router.allowed("/c") == []
    router.all("/d", handler)
    assert "DELETE" in router.allowed("/d")


def test_owner_is_the_longest_prefix_at_a_segment_boundary() -> None:
    root = Router()
    api = root.router("/api")
    v1 = api.router("/v1")
    assert root.owner("/api") is api
    assert root.owner("/api/v1/x") is v1
    assert root.owner("/api/v10") is api
    assert root.owner("/apix") is root
    assert root.router("/api/") is api  # same prefix, same router


def test_normalise_sections() -> None:
    assert normalise("compression", True) == {"enabled": True}
    assert normalise("static", {"location": "x"}) == {"location": "x", "enabled": True}
    assert normalise("static", {"enabled": False}) == {"enabled": False}
    assert normalise("proxy", ["127.0.0.1"]) == {"trusted": ["127.0.0.1"]}
    assert normalise("limits", {"body": 5}) == {"body": 5}
    with pytest.raises(ValueError, match="takes a dict"):
        normalise("limits", True)
    with pytest.raises(TypeError):
        normalise("static", 3)


def test_merge_never_mutates_the_base() -> None:
    base = merge(DEFAULTS, {})
    child = merge(base, {"limits": {"body": 1}})
    assert child["limits"]["body"] == 1
    assert base["limits"]["body"] == DEFAULTS["limits"]["body"]


def test_child_settings_follow_parent_changes() -> None:
    root = Router()
    child = root.router("/c")
    assert child.settings.limits["body"] == 1 << 20
    root.limits(body=10)
    assert child.settings.limits["body"] == 10
    child.limits(body=5)
    assert (root.settings.limits["body"], child.settings.limits["body"]) == (10, 5)


def test_middleware_chain_outer_first() -> None:
    async def first(connection: Any, next: Any) -> None:
        await next()

    async def second(connection: Any, next: Any) -> None:
        await next()

    root = Router()
    child = root.router("/c")
    child.use(second)
    assert len(child.chain) == 1
    root.use(first)
    assert child.chain == (first, second)


def test_ws_origins_are_checked_at_registration() -> None:
    router = Router()
    with pytest.raises(ValueError, match="is not an origin"):
        router.ws("/ws", handler, origins=["not an origin"])
    router.ws("/ok", handler, origins=["https://example.com"])
    found = router.match_ws("/ok")
    assert found is not None
    assert found[0].options["origins"] == ["https://example.com"]


def test_owner_looks_at_the_routers_sharing_the_first_segment() -> None:
    # owner() looks at the sub-routers sharing the path's first segment only
    root = Router()
    api = root.router("/api")
    v1 = root.router("/api/v1")
    apix = root.router("/apix")
    static = root.router("/static")
    assert root.owner("/api") is api
    assert root.owner("/api/x") is api
    assert root.owner("/api/v1/users") is v1
    assert root.owner("/api/v12") is api  # not at a boundary of /api/v1
    assert root.owner("/apix/1") is apix
    assert root.owner("/static") is static
    assert root.owner("/other") is root
    assert root.owner("/") is root
    everything = root.router("/")  # prefix "": owns what no longer prefix owns
    assert root.owner("/other") is everything
    assert root.owner("/api/v1") is v1


@pytest.mark.parametrize("filler", [0, 20], ids=["linear", "tree"])
def test_params_come_by_name_for_any_number_of_parameters(filler: int) -> None:
    # With 20 more pattern routes the method's routes are walked as a tree,
    # with none as a list of regexes: the same parameters either way.
    router = Router()
    for i in range(filler):
        router.get(f"/filler{i}/:x", handler)
    router.get("/one/:id", handler).get("/two/:a/:b<int>", handler)
    router.get("/three/:a/:b/*", handler).get("/plain/:name.json", handler)
    router.ws("/feed/:room", handler)
    expected = {
        "/one/7": {"id": "7"},
        "/two/x/42": {"a": "x", "b": 42},
        "/three/p/q/r/s": {"a": "p", "b": "q", "*": "r/s"},
        "/plain/report.json": {"name": "report"},
    }
    for path, params in expected.items():
        found = router.match("GET", path)
        assert found is not None
        assert found[1] == params
        assert found[0].params_of(list(params.values())) == params
    assert [router.match("GET", p)[0].single for p in expected] == ["id", None, None, "name"]  # type: ignore[index]
    feed = router.match_ws("/feed/lobby")
    assert feed is not None
    assert (feed[0].single, feed[1]) == ("room", {"room": "lobby"})

"""Routing rules (docs/routing.md): in process through simples.client; a real uvicorn
for what only the wire shows (HEAD on the wire, methods the HTTP parser refuses)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import simples
from simples import HTTPConnection
from tests.conftest import serve, serve_inprocess


def echo(tag: str) -> Any:
    async def handler(connection: HTTPConnection) -> dict[str, Any]:
        return {"tag": tag, "params": connection.params}

    return handler


def test_call_and_decorator_forms_are_chainable() -> None:
    app = simples.server()
    returned = app.get("/a", echo("a")).post("/a", echo("post-a"))
    assert returned is app

    @app.put("/b")
    async def put_b(connection: HTTPConnection) -> str:
        return "put-b"

    assert put_b.__name__ == "put_b"  # the decorator gives the function back
    app.route(["PATCH", "DELETE"], "/c", echo("c"))
    with serve_inprocess(app) as live:
        assert live.get("/a").json()["tag"] == "a"
        assert live.request("POST", "/a").json()["tag"] == "post-a"
        assert live.request("PUT", "/b").text == "put-b"
        assert live.request("PATCH", "/c").json()["tag"] == "c"
        assert live.request("DELETE", "/c").json()["tag"] == "c"


def test_named_params_are_decoded_and_star_takes_slashes() -> None:
    app = simples.server()
    app.get("/users/:id", echo("user"))
    app.get("/files/*", echo("files"))
    app.get("/a/:x/b/:y", echo("two"))
    with serve_inprocess(app) as live:
        assert live.get("/users/a%20b").json()["params"] == {"id": "a b"}
        assert live.get("/files/x/y/z.txt").json()["params"] == {"*": "x/y/z.txt"}
        assert live.get("/files/").json()["params"] == {"*": ""}
        assert live.get("/a/1/b/2").json()["params"] == {"x": "1", "y": "2"}
        # :name needs a non-empty segment
        assert live.get("/users/").status_code == 404
        assert live.get("/users/1/2").status_code == 404


def test_paths_are_case_sensitive_and_trailing_slash_matters() -> None:
    app = simples.server()
    app.get("/a", echo("a"))
    app.get("/b/", echo("b/"))
    with serve_inprocess(app) as live:
        assert live.get("/a").status_code == 200
        assert live.get("/A").status_code == 404
        assert live.get("/a/").status_code == 404
        assert live.get("/b/").status_code == 200
        assert live.get("/b").status_code == 404


def test_fixed_paths_beat_patterns_whatever_the_order() -> None:
    app = simples.server()
    app.get("/users/:id", echo("pattern"))
    app.get("/users/me", echo("fixed"))
    with serve_inprocess(app) as live:
        assert live.get("/users/me").json()["tag"] == "fixed"
        assert live.get("/users/42").json()["tag"] == "pattern"


def test_route_order_method_before_all_and_registration_order() -> None:
    app = simples.server()
    app.all("/x", echo("all-fixed"))
    app.get("/x", echo("get-fixed"))
    app.all("/p/:a", echo("all-pattern"))
    app.get("/p/*", echo("get-star"))
    app.get("/p/:a", echo("get-pattern"))  # after /p/* in registration order
    with serve_inprocess(app) as live:
        assert live.get("/x").json()["tag"] == "get-fixed"
        assert live.request("POST", "/x").json()["tag"] == "all-fixed"
        assert live.get("/p/1").json()["tag"] == "get-star"
        assert live.request("POST", "/p/1").json()["tag"] == "all-pattern"


def test_head_uses_get_routes_with_no_body_and_the_get_length() -> None:
    app = simples.server()
    app.get("/page", lambda connection: "x" * 123)
    with serve(app) as live:
        response = live.request("HEAD", "/page")
        assert response.status_code == 200
        assert response.headers["content-length"] == "123"
        assert response.content == b""
        raw = live.raw(b"HEAD /page HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert raw.endswith(b"\r\n\r\n")


def test_405_with_allow_and_options_204() -> None:
    app = simples.server()
    app.get("/thing", echo("get"))
    app.post("/thing", echo("post"))
    with serve_inprocess(app) as live:
        response = live.request("DELETE", "/thing")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, HEAD, POST, OPTIONS"
        assert response.text == "Method Not Allowed"
        options = live.request("OPTIONS", "/thing")
        assert options.status_code == 204
        assert options.headers["allow"] == "GET, HEAD, POST, OPTIONS"
        assert live.request("OPTIONS", "/nothing").status_code == 404


def test_unknown_methods_get_a_4xx() -> None:
    app = simples.server()
    app.get("/thing", echo("get"))
    with serve(app) as live:
        # a method no route has: 405 with Allow
        raw = live.raw(b"PROPFIND /thing HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert raw.startswith(b"HTTP/1.1 405")
        assert b"allow: GET, HEAD, OPTIONS" in raw
        # a token the HTTP parser does not know: the server refuses it before us
        raw = live.raw(b"FROB /thing HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert raw.startswith(b"HTTP/1.1 400")


def test_sub_routers_relative_routes_longest_prefix_and_boundaries() -> None:
    app = simples.server()
    api = app.router("/api")
    v1 = api.router("/v1")
    api.get("/who", echo("api"))
    v1.get("/who", echo("v1"))
    app.get("/apix", echo("apix"))
    api.get("", echo("api-root"))
    with serve_inprocess(app) as live:
        assert live.get("/api/who").json()["tag"] == "api"
        assert live.get("/api/v1/who").json()["tag"] == "v1"
        assert live.get("/apix").json()["tag"] == "apix"
        assert live.get("/api").json()["tag"] == "api-root"


def test_sub_router_owns_its_404_405_and_options() -> None:
    app = simples.server()
    api = app.router("/api")
    api.get("/x", echo("x"))
    seen: list[str] = []

    @api.use
    async def mark(connection: HTTPConnection, next: Any) -> None:
        seen.append(connection.path)
        connection.header("X-Api", "yes")
        await next()

    @api.error(404)
    async def api_404(connection: HTTPConnection) -> dict[str, str]:
        return {"error": "no such api"}

    with serve_inprocess(app) as live:
        missing = live.get("/api/nope")
        assert missing.status_code == 404
        assert missing.json() == {"error": "no such api"}
        assert missing.headers["x-api"] == "yes"
        assert live.request("POST", "/api/x").headers["x-api"] == "yes"
        outside = live.get("/elsewhere")
        assert outside.text == "Not Found"
        assert "x-api" not in outside.headers
        assert seen == ["/api/nope", "/api/x"]


def test_config_is_inherited_and_never_leaks_upward() -> None:
    app = simples.server()
    app.limits(query_pairs=3)
    api = app.router("/api")
    api.limits(query_pairs=1)
    inner = api.router("/inner")

    async def count(connection: HTTPConnection) -> int:
        return len(connection.query)

    app.get("/q", count)
    api.get("/q", count)
    inner.get("/q", count)
    with serve_inprocess(app) as live:
        assert live.get("/q?a=1&b=2").text == "2"
        assert live.get("/q?a=1&b=2&c=3&d=4").status_code == 400
        assert live.get("/api/q?a=1").text == "1"
        assert live.get("/api/q?a=1&b=2").status_code == 400
        assert live.get("/api/inner/q?a=1&b=2").status_code == 400  # inherited from /api
    assert app.settings.limits["query_pairs"] == 3


def test_virtual_hosts_exact_wildcard_case_and_port() -> None:
    app = simples.server()
    app.get("/", echo("main"))
    app.host("example.com").get("/", echo("example"))
    app.host("*.example.com").get("/", echo("wild"))
    with serve_inprocess(app) as live:

        def tag(host: str) -> str:
            return str(live.get("/", headers={"Host": host}).json()["tag"])

        assert tag("example.com") == "example"
        assert tag("EXAMPLE.com:8080") == "example"
        assert tag("api.example.com") == "wild"
        assert tag("a.b.example.com") == "main"  # * is one label
        assert tag("other.org") == "main"
        assert tag("127.0.0.1") == "main"


def test_hosts_are_separate_trees() -> None:
    app = simples.server()
    app.get("/only-main", echo("main"))
    site = app.host("site.test")
    with serve_inprocess(app) as live:
        assert live.get("/only-main").status_code == 200
        assert live.get("/only-main", headers={"Host": "site.test"}).status_code == 404
    assert site.find_error(404) is None


def test_middlewares_form_an_onion_host_then_outer_to_inner() -> None:
    app = simples.server()
    trace: list[str] = []

    def mw(name: str) -> Any:
        async def middleware(connection: HTTPConnection, next: Any) -> None:
            trace.append(f"{name}>")
            await next()
            trace.append(f"<{name}")

        return middleware

    app.use(mw("app1")).use(mw("app2"))
    api = app.router("/api")
    api.use(mw("api"))

    @api.get("/x")
    async def handler(connection: HTTPConnection) -> str:
        trace.append("handler")
        return "ok"

    with serve_inprocess(app) as live:
        assert live.get("/api/x").text == "ok"
    assert trace == ["app1>", "app2>", "api>", "handler", "<api", "<app2", "<app1"]


def test_middleware_that_does_not_call_next_stops_the_chain() -> None:
    app = simples.server()
    reached: list[str] = []

    @app.use
    async def guard(connection: HTTPConnection, next: Any) -> Any:
        if connection.headers.get("x-key") != "secret":
            return await connection.status(401).send({"error": "key"})
        await next()
        return None

    @app.get("/")
    async def home(connection: HTTPConnection) -> str:
        reached.append("home")
        return "home"

    with serve_inprocess(app) as live:
        denied = live.get("/")
        assert denied.status_code == 401
        assert denied.json() == {"error": "key"}
        assert reached == []
        assert live.get("/", headers={"X-Key": "secret"}).text == "home"
        assert reached == ["home"]


def test_error_routes_nearest_first_and_http_error() -> None:
    app = simples.server()
    api = app.router("/api")
    deep = api.router("/deep")

    @app.error(404)
    async def main_404(connection: HTTPConnection) -> str:
        return f"main 404 status={connection.status()}"

    @api.error(403)
    async def api_403(connection: HTTPConnection) -> str:
        return "api 403"

    @deep.get("/forbidden")
    async def forbidden(connection: HTTPConnection) -> None:
        raise simples.HTTPError(403)

    @deep.get("/gone")
    async def gone(connection: HTTPConnection) -> None:
        await connection.error(410)

    with serve_inprocess(app) as live:
        assert live.get("/nope").text == "main 404 status=404"
        assert live.get("/api/deep/nope").text == "main 404 status=404"
        response = live.get("/api/deep/forbidden")
        assert (response.status_code, response.text) == (403, "api 403")
        gone_response = live.get("/api/deep/gone")
        assert (gone_response.status_code, gone_response.text) == (410, "Gone")
        assert gone_response.headers["content-type"] == "text/plain; charset=utf-8"


def test_exception_runs_the_500_route_with_the_error(caplog: pytest.LogCaptureFixture) -> None:
    app = simples.server()

    @app.get("/boom")
    async def boom(connection: HTTPConnection) -> None:
        raise KeyError("missing thing")

    @app.error(500)
    async def failed(connection: HTTPConnection) -> dict[str, str]:
        return {"error": type(connection.data["error"]).__name__}

    with caplog.at_level(logging.ERROR, logger="simples"), serve_inprocess(app) as live:
        response = live.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"error": "KeyError"}
    assert "Traceback" not in response.text
    assert any("GET /boom" in record.getMessage() for record in caplog.records)


def test_default_500_body_has_no_traceback() -> None:
    app = simples.server()

    @app.get("/boom")
    async def boom(connection: HTTPConnection) -> None:
        raise RuntimeError("secret detail")

    with serve_inprocess(app) as live:
        response = live.get("/boom")
    assert response.status_code == 500
    assert response.text == "Internal Server Error"


def test_broken_500_route_still_answers_500() -> None:
    app = simples.server()
    app.get("/boom", lambda connection: 1 / 0)

    @app.error(500)
    async def broken(connection: HTTPConnection) -> None:
        raise ValueError("the error page is broken too")

    with serve_inprocess(app) as live:
        response = live.get("/boom")
    assert (response.status_code, response.text) == (500, "Internal Server Error")


def test_returned_values_are_sent_and_silence_is_warned_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = simples.server()
    app.get("/dict", lambda connection: {"a": 1})
    app.get("/bytes", lambda connection: b"\x00\x01")

    @app.get("/silent")
    async def silent(connection: HTTPConnection) -> None:
        connection.status(202)

    with caplog.at_level(logging.WARNING, logger="simples"), serve_inprocess(app) as live:
        assert live.get("/dict").json() == {"a": 1}
        binary = live.get("/bytes")
        assert binary.content == b"\x00\x01"
        assert binary.headers["content-type"] == "application/octet-stream"
        first = live.get("/silent")
        live.get("/silent")
    assert (first.status_code, first.content) == (202, b"")
    warnings = [r for r in caplog.records if "returned without responding" in r.getMessage()]
    assert len(warnings) == 1


class Upper:
    """A template engine by the contract: an object with render(source, imports)."""

    def render(self, source: str, imports: dict[str, Any]) -> str:
        values = {key: value for key, value in imports.items() if key != "connection"}
        return f"{source}:{sorted(values.items())}:{imports['connection'].path}"


def test_view_shorthand_with_dict_and_callable_imports() -> None:
    app = simples.server()
    app.engine(Upper())
    app.get("/", "index.html", {"title": "x"})
    app.get("/who/:name", "who.html", lambda connection: {"name": connection.params["name"]})
    app.error(404, "404.html")
    with serve_inprocess(app) as live:
        home = live.get("/")
        assert home.text == "index.html:[('title', 'x')]:/"
        assert home.headers["content-type"] == "text/html; charset=utf-8"
        assert live.get("/who/ann").text == "who.html:[('name', 'ann')]:/who/ann"
        missing = live.get("/missing")
        assert (missing.status_code, missing.text) == (404, "404.html:[]:/missing")


def test_render_without_engine_is_a_clear_500(caplog: pytest.LogCaptureFixture) -> None:
    app = simples.server()
    app.get("/", "index.html", {})
    with caplog.at_level(logging.ERROR, logger="simples"), serve_inprocess(app) as live:
        assert live.get("/").status_code == 500
    assert any("no template engine" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


def test_registration_rejects_bad_input() -> None:
    app = simples.server()
    with pytest.raises(ValueError, match="starts with '/'"):
        app.get("nope", echo("x"))
    with pytest.raises(ValueError, match="twice"):
        app.get("/:a/:a", echo("x"))
    with pytest.raises(ValueError, match="400-599"):
        app.error(302, echo("x"))
    with pytest.raises(ValueError, match="prefix"):
        app.router("api")
    with pytest.raises(ValueError, match="unknown config section"):
        app.config(colour="blue")
    with pytest.raises(ValueError, match="unknown key"):
        app.config(limits={"bodyy": 1})
    with pytest.raises(ValueError, match="host"):
        app.host("bad host")

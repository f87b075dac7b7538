"""CORS in process (simples.client): preflights, actual requests, rejected and odd origins."""

from __future__ import annotations

import httpx
import pytest

import simples
from simples import HTTPConnection
from tests.conftest import serve, serve_inprocess

APP = "https://app.example"
EVIL = "https://evil.example"


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {
        name: value for name, value in response.headers.items()
        if name.startswith("access-control-")
    }


def vary(response: httpx.Response) -> list[str]:
    return [token.strip().lower() for token in response.headers.get("vary", "").split(",") if token]


def api(**cors: object) -> simples.Server:
    app = simples.server()
    app.cors(**cors)

    @app.get("/items/:id")
    async def read(connection: HTTPConnection) -> dict[str, str]:
        connection.header("X-Total", "1")
        return {"id": connection.params["id"], "cookie": connection.cookies.get("sid", "")}

    @app.put("/items/:id")
    async def update(connection: HTTPConnection) -> dict[str, object]:
        connection.header("X-Total", "1")
        return {"updated": connection.params["id"], "body": await connection.body().json()}

    @app.delete("/items/:id")
    async def remove(connection: HTTPConnection) -> None:
        await connection.status(204).send(None)

    @app.get("/fail")
    async def fail(connection: HTTPConnection) -> None:
        raise RuntimeError("boom")

    @app.get("/vary")
    async def varies(connection: HTTPConnection) -> str:
        connection.header("vary", "Accept-Language")
        return "ok"

    return app


def listed() -> simples.Server:
    return api(
        origins=[APP, "http://localhost:3000"],
        credentials=True,
        headers=["X-Token"],
        expose=["X-Total"],
        max_age=600,
    )


def test_browser_preflight_then_the_actual_request() -> None:
    with serve_inprocess(listed()) as live:
        preflight = live.request(
            "OPTIONS",
            "/items/7",
            headers={
                "Origin": APP,
                "Access-Control-Request-Method": "PUT",
                "Access-Control-Request-Headers": "content-type,x-token",
            },
        )
        actual = live.request(
            "PUT",
            "/items/7",
            json={"name": "new"},
            headers={"Origin": APP, "X-Token": "t", "Cookie": "sid=abc"},
        )
    assert preflight.status_code == 204
    assert preflight.content == b""
    headers = cors_headers(preflight)
    assert headers["access-control-allow-origin"] == APP
    assert headers["access-control-allow-credentials"] == "true"
    assert headers["access-control-allow-methods"] == "GET, HEAD, PUT, DELETE"
    allowed_headers = headers["access-control-allow-headers"].split(", ")
    assert {"content-type", "x-token"} <= set(allowed_headers)
    assert headers["access-control-max-age"] == "600"
    assert "access-control-expose-headers" not in headers  # only for actual requests
    assert "origin" in vary(preflight)
    assert preflight.headers["allow"] == "GET, HEAD, PUT, DELETE, OPTIONS"

    assert actual.status_code == 200
    assert actual.json() == {"updated": "7", "body": {"name": "new"}}
    headers = cors_headers(actual)
    assert headers == {
        "access-control-allow-origin": APP,
        "access-control-allow-credentials": "true",
        "access-control-expose-headers": "X-Total",
    }
    assert "origin" in vary(actual)


def test_a_rejected_origin_gets_no_cors_headers_and_a_normal_answer() -> None:
    with serve_inprocess(listed()) as live:
        preflight = live.request(
            "OPTIONS",
            "/items/7",
            headers={"Origin": EVIL, "Access-Control-Request-Method": "DELETE"},
        )
        actual = live.get("/items/7", headers={"Origin": EVIL, "Cookie": "sid=abc"})
        same = live.get("/items/7", headers={"Cookie": "sid=abc"})
    # the preflight is answered as any OPTIONS: the browser then blocks the call
    assert preflight.status_code == 204
    assert preflight.headers["allow"] == "GET, HEAD, PUT, DELETE, OPTIONS"
    assert cors_headers(preflight) == {}
    assert actual.status_code == 200
    assert cors_headers(actual) == {}
    assert actual.content == same.content
    assert actual.headers["x-total"] == "1"


ORIGINS = [
    (APP, True),
    ("https://app.example:443", True),  # the default port is the same origin
    ("HTTPS://APP.EXAMPLE", True),  # scheme and host ignore case
    ("http://app.example", False),  # another scheme
    ("https://app.example:8443", False),  # another port
    ("https://sub.app.example", False),  # another host
    ("https://app.example.evil.example", False),
    ("http://localhost:3000", True),
    ("http://localhost:3001", False),
    ("http://localhost", False),
]


def test_origins_are_compared_whole() -> None:
    with serve_inprocess(listed()) as live:
        for origin, allowed in ORIGINS:
            response = live.get("/items/1", headers={"Origin": origin})
            assert response.status_code == 200
            if allowed:
                # reflected exactly as sent: browsers compare the value byte for byte
                assert response.headers["access-control-allow-origin"] == origin
            else:
                assert cors_headers(response) == {}, origin


def test_any_origin_without_credentials_is_a_star() -> None:
    with serve_inprocess(api(origins="*", expose="*")) as live:
        response = live.get("/items/1", headers={"Origin": EVIL})
        preflight = live.request(
            "OPTIONS", "/items/1",
            headers={"Origin": EVIL, "Access-Control-Request-Method": "PUT"},
        )
        plain = live.get("/items/1")
    assert cors_headers(response) == {
        "access-control-allow-origin": "*",
        "access-control-expose-headers": "*",
    }
    # the answer is the same for every origin: nothing to vary on
    assert "origin" not in vary(response)
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "vary" not in plain.headers


def test_star_with_credentials_is_refused_when_configured() -> None:
    # Issue #18: it used to be accepted and never reflect, so the app just failed
    # in the browser. Now the configuring call says what to write instead.
    for origins in ("*", ["*"]):
        with pytest.raises(ValueError, match=r"origins=\['https://app.example.com', '\*'\]"):
            api(origins=origins, credentials=True)
        with pytest.raises(ValueError, match="credentials=False"):
            simples.server().config(cors={"origins": origins, "credentials": True})


def test_star_with_credentials_split_over_two_routers_fails_loudly() -> None:
    # credentials on the parent, "*" on the child: caught when the rules are
    # compiled (the first request), a 500 rather than a silent failure.
    app = api(credentials=True)
    child = app.router("/child")
    child.cors(origins="*")
    child.get("/x", lambda connection: "x")
    with serve(app) as live:
        assert live.get("/child/x", headers={"Origin": EVIL}).status_code == 500


def test_listed_origins_get_credentials_and_star_serves_the_rest() -> None:
    with serve_inprocess(api(origins=[APP, "*"], credentials=True)) as live:
        trusted = live.get("/items/1", headers={"Origin": APP})
        other = live.get("/items/1", headers={"Origin": EVIL})
    assert trusted.headers["access-control-allow-origin"] == APP
    assert trusted.headers["access-control-allow-credentials"] == "true"
    assert other.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in other.headers
    assert "origin" in vary(other)


def test_a_callable_decides_on_the_normalised_origin() -> None:
    seen: list[str] = []

    def allow(origin: str) -> bool:
        seen.append(origin)
        return origin.endswith(".example.org") and origin.startswith("https://")

    with serve_inprocess(api(origins=allow, credentials=True)) as live:
        good = live.get("/items/1", headers={"Origin": "https://a.example.org:443"})
        bad = live.get("/items/1", headers={"Origin": "https://example.org.evil.com"})
        plain_http = live.get("/items/1", headers={"Origin": "http://a.example.org"})
    assert good.headers["access-control-allow-origin"] == "https://a.example.org:443"
    assert good.headers["access-control-allow-credentials"] == "true"
    assert cors_headers(bad) == {}
    assert cors_headers(plain_http) == {}
    assert seen[0] == "https://a.example.org"


def test_origin_null_is_handled() -> None:
    with serve_inprocess(listed()) as live:
        rejected = live.get("/items/1", headers={"Origin": "null"})
        preflight = live.request(
            "OPTIONS", "/items/1",
            headers={"Origin": "null", "Access-Control-Request-Method": "PUT"},
        )
    with serve_inprocess(api(origins=["null"])) as live:
        listed_null = live.get("/items/1", headers={"Origin": "null"})
    with serve_inprocess(api(origins="*")) as live:
        star = live.get("/items/1", headers={"Origin": "null"})
    assert rejected.status_code == 200
    assert cors_headers(rejected) == {}
    assert preflight.status_code == 204
    assert cors_headers(preflight) == {}
    assert listed_null.headers["access-control-allow-origin"] == "null"
    assert star.headers["access-control-allow-origin"] == "*"


MALFORMED = [
    "",
    "https://",
    "https:///",
    "app.example",
    "//app.example",
    "javascript:alert(1)",
    "https://app.example/",
    "https://app.example/path",
    "https://user@app.example",
    "https://app.example https://evil.example",
    "https://app.example:",
    "https://app.example:99999",
    "https://[::1",
    "https://app.%ZZ",
    "https://" + "a" * 3000,
    "\u00e9t\u00e9",
    "null null",
]


def test_malformed_origins_are_rejected_without_errors() -> None:
    with serve_inprocess(listed()) as live:
        for origin in MALFORMED:
            encoded = origin.encode("latin-1", "replace")
            response = live.get("/items/1", headers=[(b"Origin", encoded)])
            preflight = live.request(
                "OPTIONS", "/items/1",
                headers=[(b"Origin", encoded), (b"Access-Control-Request-Method", b"PUT")],
            )
            assert response.status_code == 200, origin
            assert cors_headers(response) == {}, origin
            assert preflight.status_code == 204, origin
            assert cors_headers(preflight) == {}, origin


def test_requests_without_origin_only_get_vary() -> None:
    with serve_inprocess(listed()) as live:
        response = live.get("/items/1")
    assert response.status_code == 200
    assert cors_headers(response) == {}
    # a shared cache must not hand this answer to a cross-origin page
    assert vary(response) == ["origin"]


def test_error_answers_carry_cors_headers_and_vary_is_merged() -> None:
    with serve_inprocess(listed()) as live:
        missing = live.get("/nothing", headers={"Origin": APP})
        failed = live.get("/fail", headers={"Origin": APP})
        merged = live.get("/vary", headers={"Origin": APP})
        no_route = live.request(
            "OPTIONS", "/nothing",
            headers={"Origin": APP, "Access-Control-Request-Method": "PUT"},
        )
    # a browser can read why a call failed
    assert missing.status_code == 404
    assert missing.headers["access-control-allow-origin"] == APP
    assert failed.status_code == 500
    assert failed.headers["access-control-allow-origin"] == APP
    assert merged.headers["vary"] == "Accept-Language, Origin"
    assert no_route.status_code == 404
    assert "access-control-allow-methods" not in no_route.headers


def test_wildcard_methods_and_headers_reflect_what_is_asked() -> None:
    with serve_inprocess(api(origins=[APP], methods="*", headers="*")) as live:
        preflight = live.request(
            "OPTIONS", "/items/1",
            headers={
                "Origin": APP,
                "Access-Control-Request-Method": "DELETE",
                "Access-Control-Request-Headers": "X-One, x-two,bad header,x-one",
            },
        )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-methods"] == "GET, HEAD, PUT, DELETE"
    assert preflight.headers["access-control-allow-headers"] == "x-one, x-two"
    assert "access-control-max-age" not in preflight.headers
    assert {"origin", "access-control-request-headers"} <= set(vary(preflight))


def test_methods_outside_the_config_are_not_offered() -> None:
    with serve_inprocess(api(origins=[APP], methods=["GET", "PUT"])) as live:
        preflight = live.request(
            "OPTIONS", "/items/1",
            headers={"Origin": APP, "Access-Control-Request-Method": "DELETE"},
        )
    # the browser sees DELETE missing and refuses the call
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-methods"] == "GET, PUT"


def test_options_routes_and_plain_options_keep_their_answer() -> None:
    app = listed()

    @app.route("OPTIONS", "/custom")
    async def custom(connection: HTTPConnection) -> str:
        return "my own options"

    with serve_inprocess(app) as live:
        own = live.request(
            "OPTIONS", "/custom",
            headers={"Origin": APP, "Access-Control-Request-Method": "PUT"},
        )
        plain = live.request("OPTIONS", "/items/1", headers={"Origin": APP})
    assert own.status_code == 200
    assert own.text == "my own options"
    assert own.headers["access-control-allow-origin"] == APP
    # not a preflight (no Access-Control-Request-Method): an ordinary OPTIONS
    assert plain.status_code == 204
    assert plain.headers["access-control-allow-origin"] == APP
    assert "access-control-allow-methods" not in plain.headers


def test_cors_on_a_sub_router_only() -> None:
    app = simples.server()
    app.get("/page", lambda connection: "page")
    api_router = app.router("/api")
    api_router.cors(origins=[APP])
    api_router.get("/data", lambda connection: {"data": 1})

    with serve_inprocess(app) as live:
        inside = live.get("/api/data", headers={"Origin": APP})
        outside = live.get("/page", headers={"Origin": APP})
    assert inside.headers["access-control-allow-origin"] == APP
    assert cors_headers(outside) == {}
    assert "vary" not in outside.headers


def test_bad_cors_config_fails_when_configured() -> None:
    app = simples.server()
    with pytest.raises(ValueError, match="not an origin"):
        app.cors(origins=["app.example"])
    with pytest.raises(ValueError, match="not an origin"):
        app.cors(origins=["https://app.example/path"])
    with pytest.raises(TypeError, match="origins"):
        app.cors(origins=5)
    with pytest.raises(ValueError, match="max_age"):
        app.cors(origins="*", max_age=-1)
    with pytest.raises(ValueError, match="not a header or method name"):
        app.cors(origins="*", headers=["bad header"])
    with pytest.raises(TypeError, match="credentials"):
        app.cors(origins="*", credentials="yes")
    # a trailing slash is a common way to write an origin: accepted
    app.cors(origins=["https://app.example/"])
    assert app.settings.cors is not None


def test_the_cors_example_runs() -> None:
    from examples.cors.app import ALLOWED, server

    origin = ALLOWED[0]
    with serve_inprocess(server) as live:
        preflight = live.request(
            "OPTIONS", "/api/counter",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "PUT",
                "Access-Control-Request-Headers": "content-type, x-client",
            },
        )
        put = live.request("PUT", "/api/counter", json={"step": 2}, headers={"Origin": origin})
        other = live.get("/api/counter", headers={"Origin": "http://127.0.0.1:8000"})
        page = live.get("/", headers={"Origin": origin})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-methods"] == "GET, PUT"
    assert "x-client" in preflight.headers["access-control-allow-headers"]
    assert put.status_code == 200
    assert put.headers["access-control-allow-origin"] == origin
    assert put.headers["access-control-expose-headers"] == "X-Request-Id"
    assert cors_headers(other) == {}
    assert cors_headers(page) == {}  # only the API router speaks CORS


def test_subdomain_patterns_over_the_wire() -> None:
    with serve(api(origins=["https://*.example.com", "http://*.localhost:3000"],
                   credentials=True)) as live:  # fmt: skip
        for origin in ("https://app.example.com", "https://a.b.example.com",
                       "https://APP.example.com:443", "http://dev.localhost:3000"):  # fmt: skip
            response = live.get("/items/1", headers={"Origin": origin})
            assert response.headers["access-control-allow-origin"] == origin
            assert response.headers["access-control-allow-credentials"] == "true"
            assert "origin" in vary(response)
        for origin in ("https://example.com", "http://app.example.com",
                       "https://app.example.com:8443", "https://evilexample.com",
                       "https://app.example.com.evil.com", "https://.example.com",
                       "http://localhost:3000", "http://dev.localhost", "null"):  # fmt: skip
            response = live.get("/items/1", headers={"Origin": origin})
            assert cors_headers(response) == {}, origin
            assert "origin" in vary(response)


@pytest.mark.parametrize(
    "origin",
    ["*.example.com", "https://*example.com", "https://a.*.example.com", "https://*",
     "https://*.com", "https://*.*.example.com", "http*://example.com", "https://ex*.com"],
)  # fmt: skip
def test_unsupported_wildcards_are_refused_when_configured(origin: str) -> None:
    with pytest.raises(ValueError, match=r"https://\*\."):
        api(origins=[origin])
    with pytest.raises(ValueError, match="subdomain pattern"):
        simples.server().ws("/ws", lambda ws: None, origins=[origin])

"""Every member of the connection: in process through simples.client, and through a real
server where the wire shows (streaming, aborted responses, raw request lines)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Any

import httpx
import pytest

import simples
from simples import HTTPConnection
from tests.conftest import head_of, raw_get, serve, serve_inprocess


def test_request_side_members() -> None:
    app = simples.server()

    @app.get("/r/:id")
    async def inspect(connection: HTTPConnection) -> dict[str, Any]:
        ip = connection.ip
        return {
            "cookies": connection.cookies,
            "host": connection.host,
            "hostname": connection.hostname,
            "ip": [str(ip), ip.address, ip.family, isinstance(ip.port, int)],
            "langs": connection.langs,
            "method": connection.method,
            "params": connection.params,
            "path": connection.path,
            "protocol": connection.protocol,
            "query": connection.query.to_dict(),
            "q_first": connection.query["a"],
            "q_all": connection.query.getall("a"),
            "q_missing": connection.query.getall("zz"),
            "q_default": connection.query.get("zz", "dflt"),
            "header": connection.headers["X-Thing"],
            "header_all": connection.headers.getall("x-multi"),
            "header_names": "x-thing" in list(connection.headers),
            "session": connection.session,
            "url": [
                connection.url.href,
                str(connection.url),
                connection.url.scheme,
                connection.url.host,
                connection.url.hostname,
                connection.url.port,
                connection.url.path,
                connection.url.query,
            ],
            "raw": [
                connection.request.scope["type"],
                callable(connection.request.receive),
                callable(connection.response.send),
            ],
            "data": connection.data,
        }

    with serve_inprocess(app) as live:
        response = live.client.get(
            "/r/a%20b?a=1&a=2&b=x+y&c[]=3&c[]=4",
            headers=[
                ("Cookie", "s=abc; name=J%C3%BCrgen; s=second; bad; =x"),
                ("Accept-Language", "fr-CH, fr;q=0.9, en; q=0.8, de;q=0, *;q=0.5"),
                ("X-Thing", "one"),
                ("X-Multi", "1"),
                ("X-Multi", "2"),
                ("Host", f"Example.COM:{live.port}"),
            ],
        )
        body = response.json()
    assert body["cookies"] == {"s": "abc", "name": "Jürgen"}
    assert body["host"] == f"example.com:{live.port}"
    assert body["hostname"] == "example.com"
    assert body["ip"] == ["127.0.0.1", "127.0.0.1", "IPv4", True]
    assert body["langs"] == ["fr-CH", "fr", "en", "*"]
    assert body["method"] == "GET"
    assert body["path"] == "/r/a b"
    assert body["params"] == {"id": "a b"}
    assert body["protocol"] == "http"
    assert body["query"] == {"a": ["1", "2"], "b": ["x y"], "c": ["3", "4"]}
    assert (body["q_first"], body["q_all"], body["q_missing"], body["q_default"]) == (
        "1",
        ["1", "2"],
        [],
        "dflt",
    )
    assert body["header"] == "one"
    assert body["header_all"] == ["1", "2"]
    assert body["header_names"] is True
    assert body["session"] is None
    assert body["url"][0] == body["url"][1]
    assert body["url"][2:] == [
        "http",
        f"example.com:{live.port}",
        "example.com",
        live.port,
        body["path"],
        "a=1&a=2&b=x+y&c[]=3&c[]=4",
    ]
    assert body["raw"] == ["http", True, True]
    assert body["data"] == {}


def test_ipv6_host_literal() -> None:
    app = simples.server()
    app.get("/", lambda c: [c.host, c.hostname, c.url.port])
    with serve_inprocess(app) as live:
        assert live.get("/", headers={"Host": "[::1]:8080"}).json() == ["[::1]:8080", "::1", 8080]
        assert live.get("/", headers={"Host": "[::1]"}).json() == ["[::1]", "::1", None]


def test_status_header_type_and_their_errors() -> None:
    app = simples.server()
    errors: list[str] = []

    @app.get("/")
    async def handler(connection: HTTPConnection) -> None:
        assert connection.status() == 200
        connection.status(201).header("X-One", "1").header("X-Num", 5).header("X-Flag", True)
        connection.header("X-List", ["a", "b"]).header("X-Gone", "x").header("X-Gone", None)
        assert connection.header("x-one") == "1"
        assert connection.header("X-List") == ["a", "b"]
        assert connection.header("X-Gone") is None
        for bad in ("a\r\nInjected: 1", "a\nb", "nul\x00"):
            try:
                connection.header("X-Bad", bad)
            except ValueError:
                errors.append("value")
        try:
            connection.header("Bad Name", "x")
        except ValueError:
            errors.append("name")
        for code in (99, 600, "200"):
            try:
                connection.status(code)  # type: ignore[arg-type]
            except ValueError:
                errors.append("status")
        connection.type("json")
        assert connection.type() == "application/json"
        await connection.send(b'{"ok": true}')

    with serve_inprocess(app) as live:
        response = live.get("/")
    assert response.status_code == 201
    assert response.headers["x-one"] == "1"
    assert response.headers["x-num"] == "5"
    assert response.headers["x-flag"] == "true"
    assert response.headers.get_list("x-list") == ["a", "b"]
    assert "x-gone" not in response.headers
    assert "x-bad" not in response.headers
    assert "injected" not in response.headers
    assert response.headers["content-type"] == "application/json"
    assert errors == ["value", "value", "value", "name", "status", "status", "status"]


@pytest.mark.parametrize(
    ("value", "override", "expected"),
    [
        ("json", False, "application/json"),
        (".html", False, "text/html; charset=utf-8"),
        ("png", False, "image/png"),
        ("text/csv", False, "text/csv; charset=utf-8"),
        ("nope-ext", False, "application/octet-stream"),
        ("text/x-thing", True, "text/x-thing"),
    ],
)
def test_type_lookup(value: str, override: bool, expected: str) -> None:
    app = simples.server()

    @app.get("/")
    async def handler(connection: HTTPConnection) -> None:
        await connection.type(value, override).send(b"x")

    with serve_inprocess(app) as live:
        assert live.get("/").headers["content-type"] == expected


def test_injected_header_in_unhandled_code_sends_nothing_of_it() -> None:
    app = simples.server()
    app.get("/", lambda c: c.header("X-A", "ok\r\nSet-Cookie: evil=1"))
    app.get("/cookie", lambda c: c.cookie("a", "b", path="/\r\nX: y"))
    with serve_inprocess(app) as live:
        response = live.get("/")
        assert response.status_code == 500
        assert "set-cookie" not in response.headers
        assert "x-a" not in response.headers
        cookie = live.get("/cookie")
        assert cookie.status_code == 500
        assert "set-cookie" not in cookie.headers


def test_cookie_round_trip_and_attributes() -> None:
    app = simples.server()
    value = 'a; b,c "d" %e é 🍪'

    @app.get("/set")
    async def set_cookie(connection: HTTPConnection) -> None:
        connection.cookie("v", value, http_only=True, path="/", same_site="lax", max_age=60)
        connection.cookie("gone", None)
        connection.cookie("d", "1", {"secure": True, "domain": "example.com"})
        await connection.send("ok")

    @app.get("/get")
    async def get_cookie(connection: HTTPConnection) -> str:
        return connection.cookies["v"]

    with serve_inprocess(app) as live:
        response = live.get("/set")
        lines = response.headers.get_list("set-cookie")
        assert len(lines) == 3
        v_line = next(line for line in lines if line.startswith("v="))
        assert {"HttpOnly", "Path=/", "SameSite=Lax"} <= set(v_line.split("; "))
        assert "Max-Age=60" in v_line
        gone = next(line for line in lines if line.startswith("gone="))
        assert "Max-Age=0" in gone
        raw_value = v_line.split(";", 1)[0].split("=", 1)[1]
        read_back = live.get("/get", headers={"Cookie": f"v={raw_value}"})
        assert read_back.text == value


def test_cookie_bad_names_raise_value_error() -> None:
    app = simples.server()
    results: list[str] = []

    @app.get("/")
    async def handler(connection: HTTPConnection) -> None:
        for name in ("a b", "a;b", "", "é"):
            try:
                connection.cookie(name, "x")
            except ValueError:
                results.append("refused")
        try:
            connection.cookie("a", "x", same_site="sometimes")
        except ValueError:
            results.append("refused")
        await connection.send(None)

    with serve_inprocess(app) as live:
        response = live.get("/")
    assert results == ["refused"] * 5
    assert "set-cookie" not in response.headers


def test_cookie_non_finite_lifetimes_raise_value_error_and_far_dates_are_clamped() -> None:
    # Issue #18: max_age=inf raised OverflowError; an expires before 1601 wrote a
    # date browsers ignore (so the cookie meant to expire lived on).
    app = simples.server()
    results: list[str] = []

    @app.get("/")
    async def handler(connection: HTTPConnection) -> None:
        for options in (
            {"max_age": float("inf")},
            {"max_age": float("-inf")},
            {"max_age": float("nan")},
            {"expires": float("inf")},
            {"expires": float("nan")},
        ):
            try:
                connection.cookie("a", "x", **options)
            except ValueError:
                results.append("refused")
        connection.cookie("old", "x", expires=-1e12)
        connection.cookie("far", "x", expires=1e13)
        await connection.send(None)

    with serve(app) as live:
        response = live.get("/")
    assert results == ["refused"] * 5
    assert response.headers.get_list("set-cookie") == [
        "old=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
        "far=x; Expires=Fri, 31 Dec 9999 23:59:59 GMT",
    ]


def test_cache_lang_links() -> None:
    app = simples.server()
    seen: dict[str, Any] = {}

    @app.get("/")
    async def handler(connection: HTTPConnection) -> None:
        connection.cache({"type": "public", "max_age": 60})
        seen["cache"] = connection.cache()
        connection.cache(max_age=5, no_cache=True)
        seen["kw"] = connection.cache()
        connection.cache("no-store")
        seen["str"] = connection.cache()
        connection.cache(None)
        seen["removed"] = connection.cache()
        connection.cache({"type": "public", "max_age": 31536000, "immutable": True})
        connection.lang("fr")
        seen["lang"] = connection.lang()
        connection.links({"next": "/2", "prev": "/0"})
        seen["links"] = connection.links()
        await connection.send("ok")

    with serve_inprocess(app) as live:
        response = live.get("/")
    assert seen == {
        "cache": "public, max-age=60",
        "kw": "private, no-cache, max-age=5",
        "str": "no-store",
        "removed": None,
        "lang": "fr",
        "links": '</2>; rel="next", </0>; rel="prev"',
    }
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["content-language"] == "fr"
    assert response.headers["link"] == '</2>; rel="next", </0>; rel="prev"'


@dataclasses.dataclass
class Point:
    x: int
    y: int


@pytest.mark.parametrize(
    ("data", "body", "content_type"),
    [
        ("héllo", "héllo".encode(), "text/plain; charset=utf-8"),
        (b"\xff\x00", b"\xff\x00", "application/octet-stream"),
        ({"a": [1, 2]}, b'{"a":[1,2]}', "application/json"),
        ([1, "x"], b'[1,"x"]', "application/json"),
        (42, b"42", "application/json"),
        (1.5, b"1.5", "application/json"),
        (True, b"true", "application/json"),
        (Point(1, 2), b'{"x":1,"y":2}', "application/json"),
        (None, b"", None),
    ],
)
def test_send_types(data: Any, body: bytes, content_type: str | None) -> None:
    app = simples.server()

    @app.get("/")
    async def handler(connection: HTTPConnection) -> None:
        await connection.send(data)

    with serve_inprocess(app) as live:
        response = live.get("/")
    assert response.content == body
    assert response.headers.get("content-type") == content_type
    assert response.headers["content-length"] == str(len(body))


def test_send_keeps_a_type_set_before_and_runs_callback() -> None:
    app = simples.server()
    called: list[str] = []

    @app.get("/")
    async def handler(connection: HTTPConnection) -> None:
        async def done() -> None:
            called.append("async")

        await connection.type("html").send("<b>x</b>", done)

    @app.get("/sync")
    async def sync_callback(connection: HTTPConnection) -> None:
        await connection.send("x", lambda: called.append("sync"))

    with serve_inprocess(app) as live:
        assert live.get("/").headers["content-type"] == "text/html; charset=utf-8"
        live.get("/sync")
    assert called == ["async", "sync"]


def test_after_start_changes_raise_runtime_error() -> None:
    app = simples.server()
    errors: list[str] = []

    @app.get("/")
    async def handler(connection: HTTPConnection) -> None:
        await connection.send("first")
        for attempt in (
            lambda: connection.header("X-Late", "1"),
            lambda: connection.status(404),
            lambda: connection.cookie("late", "1"),
        ):
            try:
                attempt()
            except RuntimeError as exc:
                errors.append(str(exc)[:30])
        try:
            await connection.send("second")
        except RuntimeError:
            errors.append("send")

    with serve_inprocess(app) as live:
        response = live.get("/")
    assert response.text == "first"
    assert len(errors) == 4


def test_write_and_end_stream_chunks() -> None:
    app = simples.server()

    @app.get("/events")
    async def events(connection: HTTPConnection) -> None:
        connection.type("text/event-stream")
        for index in range(3):
            await connection.write(f"data: {index}\n\n")
            await asyncio.sleep(0.01)
        await connection.end("data: end\n\n")

    @app.get("/unfinished")
    async def unfinished(connection: HTTPConnection) -> None:
        await connection.write(b"part")  # the exchange ends the stream

    with serve(app) as live:
        with live.client.stream("GET", "/events") as response:
            assert response.headers["transfer-encoding"] == "chunked"
            assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
            text = "".join(response.iter_text())
        assert text == "data: 0\n\ndata: 1\n\ndata: 2\n\ndata: end\n\n"
        assert live.get("/unfinished").text == "part"


def test_close_redirect() -> None:
    app = simples.server()
    called: list[int] = []

    @app.get("/close")
    async def close(connection: HTTPConnection) -> None:
        await connection.status(202).close(lambda: called.append(1))

    app.get("/r302", lambda c: c.redirect("/target"))
    app.get("/r301", lambda c: c.redirect("/target", True))
    app.get("/r303", lambda c: c.redirect("/target", 303))
    with serve_inprocess(app) as live:
        response = live.get("/close")
        assert (response.status_code, response.content) == (202, b"")
        for path, code in (("/r302", 302), ("/r301", 301), ("/r303", 303)):
            redirect = live.get(path)
            assert redirect.status_code == code
            assert redirect.headers["location"] == "/target"
            assert redirect.content == b""
    assert called == [1]


def test_error_method_and_custom_error_route() -> None:
    app = simples.server()
    app.get("/teapot", lambda c: c.error(418))
    with serve_inprocess(app) as live:
        response = live.get("/teapot")
    assert (response.status_code, response.text) == (418, "I'm a Teapot")


def test_keep_times_out_an_idle_exchange_with_408() -> None:
    app = simples.server()

    @app.get("/slow")
    async def slow(connection: HTTPConnection) -> str:
        connection.keep(0.3)
        await asyncio.sleep(5)
        return "too late"

    @app.get("/fine")
    async def fine(connection: HTTPConnection) -> str:
        connection.keep(0.3)
        assert connection.keep() == 0.3
        connection.keep(0)
        await asyncio.sleep(0.5)
        return "fine"

    with serve_inprocess(app) as live:
        started = time.monotonic()
        response = live.get("/slow")
        assert response.status_code == 408
        assert time.monotonic() - started < 3
        assert live.get("/fine").text == "fine"


def test_keep_after_start_closes_the_connection() -> None:
    app = simples.server()

    @app.get("/stall")
    async def stall(connection: HTTPConnection) -> None:
        connection.keep(0.3)
        await connection.write("begin")
        await asyncio.sleep(5)

    with serve(app) as live:
        started = time.monotonic()
        with pytest.raises(httpx.HTTPError):
            live.get("/stall")
        assert time.monotonic() - started < 3


def test_timeout_section_applies_keep_to_every_request() -> None:
    app = simples.server()
    app.timeout(0.3)

    @app.get("/slow")
    async def slow(connection: HTTPConnection) -> str:
        await asyncio.sleep(5)
        return "late"

    with serve_inprocess(app) as live:
        assert live.get("/slow").status_code == 408


def test_exception_after_start_aborts_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    app = simples.server()

    @app.get("/half")
    async def half(connection: HTTPConnection) -> None:
        await connection.write("partial")
        raise RuntimeError("midway")

    with caplog.at_level(logging.ERROR), serve(app) as live:
        with pytest.raises(httpx.HTTPError):
            live.get("/half")
        assert live.get("/half-not-there").status_code == 404  # the worker lives on
    reports = [r for r in caplog.records if r.exc_info or "midway" in r.getMessage()]
    assert len(reports) == 1
    assert reports[0].name == "simples"


def test_log_member_and_logger_section() -> None:
    app = simples.server()
    lines: list[str] = []
    app.logger(
        format="%method %path %status %req[User-Agent] %res[X-Out] %who",
        log=lines.append,
        tokens={"who": lambda c: "me"},
    )

    @app.get("/x")
    async def x(connection: HTTPConnection) -> None:
        connection.header("X-Out", "out")
        connection.log("%method %href %custom", {"custom": lambda c: "line\nbreak"}, lines.append)
        await connection.send("x")

    with serve(app) as live:
        # a tab in a header value is legal HTTP; the log line must escape it
        live.raw(
            b"GET /x?y=1 HTTP/1.1\r\nHost: t\r\nUser-Agent: ua\tfake\r\nConnection: close\r\n\r\n"
        )
        live.get("/missing")
    assert lines[0] == "GET http://t/x?y=1 line\\x0abreak"
    assert lines[1] == "GET /x 200 ua\\x09fake out me"
    assert lines[2] == "GET /missing 404 python-httpx/" + httpx.__version__ + " - me"
    assert len(lines) == 3


def test_default_log_format_goes_to_the_access_logger(caplog: pytest.LogCaptureFixture) -> None:
    app = simples.server()
    app.logger()
    app.get("/", lambda c: "x")
    with caplog.at_level(logging.INFO, logger="simples.access"), serve_inprocess(app) as live:
        live.get("/")
    lines = [r.getMessage() for r in caplog.records if r.name == "simples.access"]
    assert len(lines) == 1
    date, clock, protocol, method, href = lines[0].split(" ")
    assert (protocol, method, href) == ("http", "GET", f"{live.url}/")
    assert (len(date), len(clock)) == (10, 8)


def test_lifespan_start_and_stop_callbacks() -> None:
    app = simples.server()
    events: list[str] = []

    async def started() -> None:
        events.append("start")

    app.on("start", started).on("stop", lambda: events.append("stop"))
    app.get("/", lambda c: events[-1])
    with serve_inprocess(app) as live:
        assert live.get("/").text == "start"
    assert events == ["start", "stop"]
    with pytest.raises(ValueError, match="start"):
        app.on("begin", started)


def test_log_reads_the_content_length_that_was_sent() -> None:
    app = simples.server()
    lines: list[str] = []
    app.logger(format="%status %res[content-length]", log=lines.append)
    app.get("/", lambda connection: "hello")
    with serve_inprocess(app) as live:
        assert live.get("/").headers["content-length"] == "5"
    assert lines == ["200 5"]


def test_redirect_local_sends_only_paths_on_this_site() -> None:
    # Issue #18: `redirect(connection.query["next"])` is an open redirect;
    # redirect_local() falls back to the default for anything a browser could
    # read as another site.
    from tests.unit.test_http_url import BAD_TARGETS, GOOD_TARGETS, NOT_PATH_ABSOLUTE

    app = simples.server()

    @app.get("/login")
    async def login(connection: HTTPConnection) -> None:
        await connection.redirect_local(connection.query.get("next"), "/home", 303)

    @app.get("/plain")
    async def plain(connection: HTTPConnection) -> None:
        await connection.redirect_local(connection.query.get("next"))

    with serve(app) as live:
        for target in BAD_TARGETS + NOT_PATH_ABSOLUTE:
            response = live.get("/login", params={"next": target})
            assert response.status_code == 303, target
            assert response.headers["location"] == "/home", target
        for target, expected in GOOD_TARGETS:
            if "\ud800" in target:
                continue  # a lone surrogate: no client can send it
            response = live.get("/login", params={"next": target})
            assert response.headers["location"] == expected, target
        # Percent-encoded by hand, as the attacker wrote them.
        for query in (b"/%09/evil.com", b"%2F%0A%2Fevil.com", b"/%5Cevil.com", b"%00//evil.com",
                      b"https:evil.com", b"//evil.com", b"http://127.0.0.1%5C@evil.com"):
            raw = raw_get(live.port, b"/login?next=" + query)
            assert head_of(raw)["location"] == "/home", query
        missing = live.get("/plain")
        assert (missing.status_code, missing.headers["location"]) == (302, "/")
        assert live.get("/plain", params={"next": "/a b"}).headers["location"] == "/a%20b"

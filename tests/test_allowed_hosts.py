"""The allowed_hosts section over the wire: a Host (or trusted forwarded host)
that is not listed gets 400 before any handler; patterns for subdomains; a
one-time warning when absolute URLs are built without the setting."""

from __future__ import annotations

import asyncio
import logging

import pytest

import simples
from simples import HTTPConnection
from simples.hosts import AllowedHosts, check_patterns
from tests.conftest import body_of, raw_get, serve, status_of


def host_app(reached: list[str]) -> simples.Server:
    app = simples.server()
    app.allowed_hosts("example.com", "*.api.example.com", ".static.example.com", "127.0.0.1")

    @app.get("/")
    async def home(connection: HTTPConnection) -> str:
        reached.append(connection.host)
        return connection.url.href

    return app


def ask(port: int, host: bytes, *lines: bytes) -> bytes:
    return raw_get(port, b"/", *lines, host=host)


@pytest.mark.parametrize(
    ("host", "status"),
    [
        (b"example.com", 200),
        (b"EXAMPLE.com:8443", 200),
        (b"example.com.", 200),
        (b"evil.com", 400),
        (b"example.com.evil.com", 400),
        (b"notexample.com", 400),
        (b"a.api.example.com", 200),
        (b"a.b.api.example.com", 200),
        (b"api.example.com", 400),  # "*." never covers the apex
        (b"static.example.com", 200),  # "." covers the apex too
        (b"x.static.example.com", 200),
        (b"127.0.0.1:8000", 200),
        (b"10.0.0.1", 400),
    ],
)
def test_hosts_not_listed_get_400_before_any_handler(host: bytes, status: int) -> None:
    reached: list[str] = []
    with serve(host_app(reached)) as live:
        answer = ask(live.port, host)
    assert status_of(answer) == status
    if status == 400:
        assert reached == []
        assert body_of(answer) == b"Bad Request"
    else:
        assert reached == [host.decode().lower()]


def test_a_forwarded_host_from_a_trusted_proxy_is_checked_too() -> None:
    reached: list[str] = []
    app = host_app(reached)
    app.proxy(["127.0.0.1"])
    with serve(app) as live:
        good = ask(live.port, b"internal:8000", b"X-Forwarded-Host: example.com")
        bad = ask(live.port, b"example.com", b"X-Forwarded-Host: evil.com")
    assert status_of(good) == 200
    assert body_of(good) == b"http://example.com/"
    assert status_of(bad) == 400
    assert reached == ["example.com"]


def test_websocket_handshakes_are_checked_as_well() -> None:
    app = host_app([])

    @app.ws("/live")
    async def live_socket(ws: simples.WebSocketConnection) -> None:
        await ws.send("hi")

    with serve(app) as live:
        answer = ask(
            live.port,
            b"evil.com",
            b"Upgrade: websocket",
            b"Connection: Upgrade",
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            b"Sec-WebSocket-Version: 13",
        )
    assert status_of(answer) in (400, 403)


@pytest.mark.parametrize(
    "bad", ["https://example.com", "example.com:80", "exa mple.com", "*.*.example.com", "", "*x"]
)
def test_a_bad_pattern_fails_at_configuration_and_says_what_to_write(bad: str) -> None:
    with pytest.raises(ValueError, match="write a name"):
        simples.server().allowed_hosts(bad)


def test_a_bare_string_is_refused_with_the_list_form_shown() -> None:
    with pytest.raises(TypeError, match=r"allowed_hosts=\['example.com'"):
        simples.server().config(allowed_hosts={"hosts": "example.com"})


def test_star_allows_any_host_explicitly() -> None:
    assert AllowedHosts(check_patterns(["*"]))("anything.test:1")
    assert not AllowedHosts(check_patterns(["example.com"]))("[::1]")
    assert AllowedHosts(check_patterns(["[::1]"]))("[::1]:8080")


def test_absolute_urls_without_allowed_hosts_warn_once(caplog: pytest.LogCaptureFixture) -> None:
    app = simples.server()

    @app.get("/")
    async def home(connection: HTTPConnection) -> str:
        return connection.url.href

    async def go() -> list[str]:
        async with simples.client(app) as client:
            return [await (await client.get("/")).text() for _ in range(3)]

    import simples.request as request_module

    request_module._warned = False  # reset the once-per-process flag
    with caplog.at_level(logging.WARNING, logger="simples"):
        assert asyncio.run(go()) == ["http://testserver/"] * 3
    warnings = [r for r in caplog.records if "allowed_hosts" in r.getMessage()]
    assert len(warnings) == 1

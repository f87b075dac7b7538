"""Malformed and hostile requests: each gets a quick 4xx, never a 500 or a hang."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import simples
from simples import HTTPConnection
from tests.conftest import Live, serve, status_of


def make_app() -> simples.Server:
    app = simples.server()

    @app.get("/")
    async def home(connection: HTTPConnection) -> dict[str, object]:
        return {
            "host": connection.host,
            "cookies": len(connection.cookies),
            "query": len(connection.query),
            "path": connection.path,
        }

    @app.get("/slow")
    async def slow(connection: HTTPConnection) -> str:
        await asyncio.sleep(0.5)
        return "slow"

    return app


@pytest.fixture(scope="module")
def live() -> object:
    with serve(make_app()) as running:
        yield running



def request(live: Live, head: bytes) -> bytes:
    return live.raw(head + b"\r\nConnection: close\r\n\r\n")


@pytest.mark.parametrize(
    "host",
    [
        b"exa mple.com",
        b"a/b",
        b"user@host",
        b"[::1",
        b"[zz::1]:80",
        b"host:99999",
        b"host:abc",
        b"back\\slash",
        b"",
    ],
)
def test_invalid_host_is_400(live: Live, host: bytes) -> None:
    assert status_of(request(live, b"GET / HTTP/1.1\r\nHost: " + host)) == 400


def test_missing_host_is_400_on_http_1_1_but_fine_on_1_0(live: Live) -> None:
    assert status_of(request(live, b"GET / HTTP/1.1")) == 400
    response = request(live, b"GET / HTTP/1.0")
    assert status_of(response) == 200
    assert b'"host":"127.0.0.1:' in response


def test_ipv6_literal_host_is_accepted(live: Live) -> None:
    response = request(live, b"GET / HTTP/1.1\r\nHost: [2001:db8::1]:8443")
    assert status_of(response) == 200
    assert b'"host":"[2001:db8::1]:8443"' in response


def test_oversized_header_is_431(live: Live) -> None:
    assert status_of(request(live, b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 8193)) == 431
    # exactly at the limit is fine
    assert status_of(request(live, b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 8192)) == 200


def test_too_many_headers_is_431(live: Live) -> None:
    # Host + 98 + Connection = 100 headers: the default limit
    at_limit = b"".join(b"\r\nX-H%d: v" % index for index in range(98))
    assert status_of(request(live, b"GET / HTTP/1.1\r\nHost: t" + at_limit)) == 200
    over = b"".join(b"\r\nX-H%d: v" % index for index in range(99))
    assert status_of(request(live, b"GET / HTTP/1.1\r\nHost: t" + over)) == 431


def test_cookie_of_50_kb_is_refused_quickly(live: Live) -> None:
    started = time.monotonic()
    response = request(live, b"GET / HTTP/1.1\r\nHost: t\r\nCookie: " + b"a=" + b"x" * 50_000)
    assert status_of(response) == 431
    assert time.monotonic() - started < 1


def test_cookie_of_10000_pairs_parses_fast_when_the_limits_allow_it() -> None:
    app = make_app()
    app.limits(header_size=200_000, cookie_size=200_000)
    cookie = "; ".join(f"k{index}=v{index}" for index in range(10_000)).encode()
    with serve(app) as live:
        started = time.monotonic()
        response = request(live, b"GET / HTTP/1.1\r\nHost: t\r\nCookie: " + cookie)
        elapsed = time.monotonic() - started
    assert status_of(response) == 200
    assert b'"cookies":10000' in response
    assert elapsed < 1


def test_default_limits_refuse_10000_cookie_pairs(live: Live) -> None:
    cookie = "; ".join(f"k{index}=v{index}" for index in range(10_000)).encode()
    assert status_of(request(live, b"GET / HTTP/1.1\r\nHost: t\r\nCookie: " + cookie)) == 431


@pytest.mark.parametrize(
    "target",
    [b"/?a=%zz&b=%", b"/?%E0%A4%A=1", b"/?a=%ff%fe", b"/%zz", b"/%", b"/%C0%AF"],
)
def test_malformed_percent_escapes_are_tolerated(live: Live, target: bytes) -> None:
    response = request(live, b"GET " + target + b" HTTP/1.1\r\nHost: t")
    assert status_of(response) in (200, 404)


def test_malformed_cookie_escapes_are_tolerated(live: Live) -> None:
    response = request(live, b"GET / HTTP/1.1\r\nHost: t\r\nCookie: a=%zz; b=%; c=%ff; =; ;;")
    assert status_of(response) == 200
    assert b'"cookies":3' in response


def test_2000_query_pairs_is_400_and_1000_is_fine(live: Live) -> None:
    many = "&".join(f"k{index}=v" for index in range(2000)).encode()
    assert status_of(request(live, b"GET /?" + many + b" HTTP/1.1\r\nHost: t")) == 400
    enough = "&".join(f"k{index}=v" for index in range(1000)).encode()
    response = request(live, b"GET /?" + enough + b" HTTP/1.1\r\nHost: t")
    assert status_of(response) == 200
    assert b'"query":1000' in response


def test_protocol_garbage_is_refused_or_closed(live: Live) -> None:
    for garbage in (
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"NOT HTTP AT ALL\r\n\r\n",
        b"GET / HTTP/9.9\r\nHost: t\r\n\r\n",
        b"GET\r\n\r\n",
    ):
        response = live.raw(garbage, timeout=3)
        assert response == b"" or 400 <= status_of(response) < 500


def test_bad_requests_do_not_stall_others(live: Live) -> None:
    # a client that sends half a request and stops must not block a normal one
    import socket

    stalled = socket.create_connection(("127.0.0.1", live.port))
    stalled.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ")
    results: list[int] = []

    def normal() -> None:
        results.append(live.client.get("/slow").status_code)

    threads = [threading.Thread(target=normal) for _ in range(3)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    stalled.close()
    assert results == [200, 200, 200]
    assert time.monotonic() - started < 3

"""The client's pieces on their own: the cookie jar (RFC 6265), request bodies."""

from __future__ import annotations

import asyncio
import time

import pytest

from simples.clients.base import CookieJar, Timeout, drain_payload, form_payload, qs_payload


def test_jar_domain_and_host_only() -> None:
    jar = CookieJar()
    jar.store("http://a.example.com/", ["host=1", "wide=2; Domain=example.com",
                                         "foreign=3; Domain=other.org"])
    assert jar.header("http://a.example.com/") == "host=1; wide=2"
    assert jar.header("http://b.example.com/") == "wide=2"
    assert jar.header("http://example.org/") is None
    assert "foreign" not in jar


def test_jar_paths_longest_first_and_default_path() -> None:
    jar = CookieJar()
    jar.store("http://h/app/page", ["implicit=1", "root=2; Path=/", "deep=3; Path=/app/x"])
    assert jar.header("http://h/app/x/y") == "deep=3; implicit=1; root=2"
    assert jar.header("http://h/app") == "implicit=1; root=2"
    assert jar.header("http://h/application") == "root=2"


def test_jar_expiry_max_age_wins_and_secure() -> None:
    jar = CookieJar()
    past = "Thu, 01 Jan 1970 00:00:00 GMT"
    set_now = jar.store("https://h/", [f"a=1; Max-Age=60; Expires={past}",
                                       f"b=2; Expires={past}", "c=3; Secure"])
    assert set_now == {"a": "1", "c": "3"}
    assert jar.header("https://h/") == "a=1; c=3"
    assert jar.header("http://h/") == "a=1"
    jar.store("https://h/", ["a=; Max-Age=0"])
    assert jar.header("http://h/") is None
    jar.store("http://h/", ["insecure=1; Secure"])  # only a secure origin sets Secure
    assert "insecure" not in jar
    jar.store("http://h/", ["soon=1; Max-Age=1"])
    for cookie in jar:
        if cookie.name == "soon":
            assert cookie.expires is not None
            assert cookie.expires <= time.time() + 1


def test_jar_decodes_values_and_ignores_garbage() -> None:
    jar = CookieJar()
    fresh = jar.store("http://h/", ["v=a%20b", "=nameless", "novalue", 'q="quoted"'])
    assert fresh == {"v": "a b", "q": "quoted"}
    assert jar["v"] == "a b"
    assert jar.header("http://h/") == "v=a%20b; q=quoted"  # sent back as it came
    jar.set("manual", "1")
    assert "manual=1" in (jar.header("http://elsewhere/") or "")


def test_qs_and_form_bodies() -> None:
    payload = qs_payload({"a": "x y", "b": ["1", 2]})
    assert payload.content == b"a=x+y&b=1&b=2"
    assert payload.type == "application/x-www-form-urlencoded"
    form = form_payload({"t": "v", "f": {"data": b"DATA", "filename": 'a"b.txt'}})
    assert form.type is not None
    boundary = form.type.split("boundary=")[1]

    async def collect() -> bytes:
        assert not isinstance(form.content, bytes)
        return b"".join([chunk async for chunk in form.content])

    body = asyncio.run(collect())
    assert form.length == len(body)
    assert body.endswith(f"--{boundary}--\r\n".encode())
    assert b'filename="a%22b.txt"' in body
    assert b"Content-Type: text/plain; charset=utf-8\r\n\r\nDATA\r\n" in body
    with pytest.raises(ValueError, match="file field"):
        form_payload({"f": {"path": "x", "data": b""}})
    with pytest.raises(TypeError):
        drain_payload(42)


def test_timeout_values() -> None:
    assert Timeout.of(5) == Timeout(5, 5, None)
    assert Timeout.of(None) == Timeout(None, None, None)
    with pytest.raises(ValueError, match="timeout"):
        Timeout.of(0)

"""Trusted proxies, in process: the peer the app sees is 127.0.0.1 (loopback), as the
in-process client says by default."""

from __future__ import annotations

from typing import Any

import pytest

import simples
from simples import HTTPConnection
from tests.conftest import serve_inprocess


def who_app(*trusted: str, hops: int = 0) -> simples.Server:
    app = simples.server()
    if trusted or hops:
        app.proxy(trusted, hops=hops)

    @app.get("/who")
    async def who(connection: HTTPConnection) -> dict[str, Any]:
        ip = connection.ip
        return {
            "ip": str(ip),
            "port": ip.port,
            "family": ip.family,
            "protocol": connection.protocol,
            "host": connection.host,
            "hostname": connection.hostname,
            "href": connection.url.href,
        }

    return app


SPOOF = {
    "X-Forwarded-For": "203.0.113.66",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "bank.example",
}


def test_a_trusted_proxy_sets_ip_protocol_host_and_url() -> None:
    with serve_inprocess(who_app("127.0.0.1")) as live:
        seen = live.get("/who?q=1", headers={
            "X-Forwarded-For": "203.0.113.7",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "Shop.Example:8443",
        }).json()
    assert seen == {
        "ip": "203.0.113.7",
        "port": None,
        "family": "IPv4",
        "protocol": "https",
        "host": "shop.example:8443",
        "hostname": "shop.example",
        "href": "https://shop.example:8443/who?q=1",
    }


def test_spoofed_headers_from_an_untrusted_peer_are_ignored() -> None:
    # the proxy is somewhere else: loopback is an ordinary client
    with serve_inprocess(who_app("10.0.0.0/8", "::1")) as live:
        spoofed = live.get("/who", headers={
            **SPOOF, "Forwarded": "for=198.51.100.1;proto=https;host=bank.example",
        }).json()
        port = live.port
    assert spoofed["ip"] == "127.0.0.1"
    assert isinstance(spoofed["port"], int)
    assert spoofed["protocol"] == "http"
    assert spoofed["host"] == f"127.0.0.1:{port}"
    assert spoofed["href"] == f"http://127.0.0.1:{port}/who"


def test_without_a_proxy_section_forwarding_headers_mean_nothing() -> None:
    with serve_inprocess(who_app()) as live:
        seen = live.get("/who", headers=SPOOF).json()
    assert seen["ip"] == "127.0.0.1"
    assert seen["protocol"] == "http"


def test_the_chain_is_walked_from_the_right_to_the_first_untrusted_hop() -> None:
    with serve_inprocess(who_app("127.0.0.1", "10.0.0.0/8")) as live:
        # the client prepended a fake address; our proxies appended the rest
        walked = live.get("/who", headers={
            "X-Forwarded-For": "6.6.6.6, 203.0.113.7, 10.1.2.3",
        }).json()
        # several header lines are one list, in order
        lines = live.get("/who", headers=[
            ("X-Forwarded-For", "6.6.6.6"),
            ("X-Forwarded-For", "203.0.113.8, 10.0.0.9"),
        ]).json()
        # every hop trusted: the left-most address is the best we know
        all_trusted = live.get("/who", headers={"X-Forwarded-For": "10.0.0.5, 10.0.0.6"}).json()
    assert walked["ip"] == "203.0.113.7"
    assert lines["ip"] == "203.0.113.8"
    assert all_trusted["ip"] == "10.0.0.5"


def test_proto_and_host_come_from_the_hop_that_saw_the_client() -> None:
    with serve_inprocess(who_app("127.0.0.1", "10.0.0.0/8")) as live:
        seen = live.get("/who", headers={
            "X-Forwarded-For": "6.6.6.6, 203.0.113.7, 10.1.2.3",
            "X-Forwarded-Proto": "http, https, http",
            "X-Forwarded-Host": "fake.example, shop.example, internal.lan",
        }).json()
    # 203.0.113.7 was seen by the outer proxy (10.1.2.3), which wrote the middle entries
    assert seen["ip"] == "203.0.113.7"
    assert seen["protocol"] == "https"
    assert seen["host"] == "shop.example"


def test_forwarded_header_rfc_7239() -> None:
    with serve_inprocess(who_app("127.0.0.1", "10.0.0.0/8")) as live:
        simple = live.get("/who", headers={
            "Forwarded": 'for=203.0.113.9;proto=https;host="shop.example"',
        }).json()
        ipv6 = live.get("/who", headers={
            "Forwarded": 'for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.2',
        }).json()
        # Forwarded wins over the X- headers when both are sent
        both = live.get("/who", headers={
            "Forwarded": "for=203.0.113.10",
            "X-Forwarded-For": "203.0.113.11",
        }).json()
    assert simple["ip"] == "203.0.113.9"
    assert simple["protocol"] == "https"
    assert simple["href"] == "https://shop.example/who"
    assert ipv6["ip"] == "2001:db8:cafe::17"
    assert ipv6["port"] == 4711
    assert ipv6["family"] == "IPv6"
    assert ipv6["protocol"] == "https"
    assert both["ip"] == "203.0.113.10"


def test_garbage_entries_are_ignored_never_an_error() -> None:
    cases: list[tuple[dict[str, str], dict[str, Any]]] = [
        ({"X-Forwarded-For": "not-an-ip"}, {"ip": "127.0.0.1"}),
        ({"X-Forwarded-For": "6.6.6.6, garbage"}, {"ip": "127.0.0.1"}),
        ({"X-Forwarded-For": "203.0.113.7:51234"}, {"ip": "203.0.113.7", "port": 51234}),
        ({"X-Forwarded-For": ",,203.0.113.7,"}, {"ip": "203.0.113.7"}),
        ({"X-Forwarded-For": "999.1.1.1"}, {"ip": "127.0.0.1"}),
        ({"X-Forwarded-For": "[::1"}, {"ip": "127.0.0.1"}),
        ({"X-Forwarded-Proto": "gopher"}, {"protocol": "http"}),
        ({"X-Forwarded-Proto": "HTTPS"}, {"protocol": "https"}),
        ({"X-Forwarded-Host": "bad host/x"}, {"hostname": "127.0.0.1"}),
        ({"Forwarded": "for=unknown;proto=https"}, {"ip": "127.0.0.1", "protocol": "https"}),
        ({"Forwarded": "for=_hidden"}, {"ip": "127.0.0.1"}),
        ({"Forwarded": 'for="[::1"'}, {"ip": "127.0.0.1"}),
        ({"Forwarded": "total garbage;;;==="}, {"ip": "127.0.0.1", "protocol": "http"}),
        ({"Forwarded": "for=1.1.1.1;for=2.2.2.2"}, {"ip": "127.0.0.1"}),
        # an unbalanced quote from the client cannot swallow what the proxy appended
        ({"Forwarded": 'for=6.6.6.6;x="a, for=203.0.113.5'}, {"ip": "203.0.113.5"}),
    ]
    with serve_inprocess(who_app("127.0.0.1")) as live:
        for headers, expected in cases:
            response = live.get("/who", headers=headers)
            assert response.status_code == 200, headers
            seen = response.json()
            assert {key: seen[key] for key in expected} == expected, headers


def test_forwarded_host_picks_the_virtual_host() -> None:
    app = who_app("127.0.0.1")
    shop = app.host("shop.example")
    shop.get("/who", lambda connection: f"shop sees {connection.host} over {connection.protocol}")

    with serve_inprocess(app) as live:
        routed = live.get("/who", headers={
            "X-Forwarded-Host": "shop.example", "X-Forwarded-Proto": "https",
        })
        main = live.get("/who")
    assert routed.text == "shop sees shop.example over https"
    assert main.json()["ip"] == "127.0.0.1"


def test_hops_trust_the_nearest_proxies_whatever_their_address() -> None:
    with serve_inprocess(who_app(hops=1)) as live:
        one = live.get("/who", headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.7"}).json()
    with serve_inprocess(who_app(hops=2)) as live:
        two = live.get("/who", headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.7"}).json()
    # hops=1: the peer is the proxy, the client is the entry it appended
    assert one["ip"] == "203.0.113.7"
    # hops=2: two proxies in front, the client is one more to the left
    assert two["ip"] == "6.6.6.6"


def test_bad_proxy_config_fails_when_configured() -> None:
    app = simples.server()
    with pytest.raises(ValueError, match="not an IP address or network"):
        app.proxy(["localhost"])
    with pytest.raises(ValueError, match="not an IP address or network"):
        app.config(proxy=["10.0.0.0/33"])
    with pytest.raises(ValueError, match="hops"):
        app.proxy(["127.0.0.1"], hops=-1)
    with pytest.raises(TypeError, match="list"):
        app.config(proxy={"trusted": "127.0.0.1"})
    # the list shorthand and host bits in a network are fine
    app.config(proxy=["127.0.0.1", "10.1.2.3/8"])
    assert app.settings.trusted == ["127.0.0.1", "10.1.2.3/8"]

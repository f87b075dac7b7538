"""The pure proxy rules: nodes, Forwarded parsing, trust and the walk."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from simples.proxy import (
    Trust,
    check_config,
    parse_forwarded,
    parse_network,
    parse_node,
    resolve_forwarded,
    trust_of,
)


def scope(headers: list[tuple[str, str]], client: tuple[str, int] | None = ("10.0.0.1", 5000),
          kind: str = "http") -> dict[str, Any]:
    return {
        "type": kind,
        "client": client,
        "headers": [(name.lower().encode(), value.encode("latin-1")) for name, value in headers],
    }


@pytest.mark.parametrize(
    ("text", "address", "port"),
    [
        ("192.0.2.1", "192.0.2.1", None),
        (" 192.0.2.1 ", "192.0.2.1", None),
        ("192.0.2.1:8080", "192.0.2.1", 8080),
        ("192.0.2.1:_abc", "192.0.2.1", None),
        ("2001:db8::1", "2001:db8::1", None),
        ("[2001:db8::1]", "2001:db8::1", None),
        ("[2001:DB8:0::1]:443", "2001:db8::1", 443),
        ("[2001:db8::1]:_p", "2001:db8::1", None),
        ("::ffff:192.0.2.1", "::ffff:192.0.2.1", None),
        ("::ffff:c000:201", "::ffff:192.0.2.1", None),
    ],
)
def test_nodes(text: str, address: str, port: int | None) -> None:
    node = parse_node(text)
    assert node is not None
    ip, parsed = node
    assert (ip.address, ip.port) == (address, port)
    assert parsed == ipaddress.ip_address(address)
    assert ip.family == ("IPv6" if ":" in address else "IPv4")


@pytest.mark.parametrize(
    "text",
    [
        "", "unknown", "_hidden", "host.example", "192.0.2.1:", "192.0.2.1:99999", "192.0.2.1:x",
        "[192.0.2.1]", "[2001:db8::1", "[2001:db8::1]443", "[2001:db8::1]:", "256.0.0.1",
        "192.0.2.1:_", "1" * 100, "192.0.2.1:_a b",
    ],
)
def test_not_nodes(text: str) -> None:
    assert parse_node(text) is None


def test_parse_forwarded() -> None:
    assert parse_forwarded('for=192.0.2.60;proto=http;by=203.0.113.43') == [
        {"for": "192.0.2.60", "proto": "http", "by": "203.0.113.43"}
    ]
    assert parse_forwarded('For="[2001:db8:cafe::17]:4711", for=192.0.2.43') == [
        {"for": "[2001:db8:cafe::17]:4711"}, {"for": "192.0.2.43"}
    ]
    assert parse_forwarded('for="a\\"b";host="x,y"') == [{"for": 'a"b', "host": "x,y"}]
    # empty list elements are nothing; malformed ones are None
    assert parse_forwarded(" , for=a ,, ") == [{"for": "a"}]
    assert parse_forwarded("") == []
    assert parse_forwarded("for") == [None]
    assert parse_forwarded("for=a b, for=c") == [None, {"for": "c"}]
    assert parse_forwarded("for=a;for=b, for=c") == [None, {"for": "c"}]
    assert parse_forwarded('for="unterminated, for=c') == [None, {"for": "c"}]
    assert parse_forwarded("for=a;;proto=http") == [None]


def test_networks_and_trust() -> None:
    assert parse_network("10.1.2.3/8") == ipaddress.ip_network("10.0.0.0/8")
    assert parse_network(" ::1 ") == ipaddress.ip_network("::1/128")
    for bad in ("localhost", "10.0.0.0/33", "", "1.2.3"):
        with pytest.raises(ValueError, match="not an IP address"):
            parse_network(bad)
    trust = Trust(["127.0.0.1", "10.0.0.0/8", "fd00::/8"])
    assert trust.peer("127.0.0.1")
    assert trust.peer("10.200.0.1")
    assert trust.peer("fd12::1")
    assert trust.peer("::ffff:10.0.0.1")  # an IPv4 peer seen on a dual-stack socket
    assert not trust.peer("127.0.0.2")
    assert not trust.peer("not an address")
    assert not trust.peer("")
    assert trust.peers["127.0.0.1"] is True
    assert trust.hop(ipaddress.ip_address("10.9.9.9"), 5)
    assert not trust.hop(ipaddress.ip_address("8.8.8.8"), 2)
    counted = Trust([], hops=2)
    assert counted.peer("8.8.8.8")
    assert counted.hop(ipaddress.ip_address("8.8.8.8"), 2)
    assert not counted.hop(ipaddress.ip_address("8.8.8.8"), 3)


def test_trust_is_compiled_once_per_list() -> None:
    trusted = ["10.0.0.0/8"]
    first = trust_of(trusted)
    assert trust_of(trusted) is first
    assert trust_of(list(trusted)) is first  # same value, another list
    assert trust_of(trusted, 1) is not first


def test_resolve_x_forwarded() -> None:
    trusted = ["10.0.0.0/8"]
    result = resolve_forwarded(scope([
        ("X-Forwarded-For", "6.6.6.6, 198.51.100.7, 10.0.0.2"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "Example.COM"),
    ]), trusted)
    assert result is not None
    ip, protocol, host = result
    assert ip is not None
    assert ip.address == "198.51.100.7"
    assert (protocol, host) == ("https", "example.com")
    # untrusted peer: nothing changes
    spoof = [("X-Forwarded-For", "1.2.3.4")]
    assert resolve_forwarded(scope(spoof, ("8.8.8.8", 1)), trusted) is None
    assert resolve_forwarded(scope(spoof, None), trusted) is None
    # trusted peer that says nothing, or only garbage
    assert resolve_forwarded(scope([]), trusted) is None
    assert resolve_forwarded(scope([("X-Forwarded-For", "junk")]), trusted) is None
    assert resolve_forwarded(scope([("X-Forwarded-Proto", "ftp")]), trusted) is None


def test_resolve_on_websockets_gives_ws_protocols() -> None:
    trusted = ["10.0.0.0/8"]
    secure = resolve_forwarded(scope([("X-Forwarded-Proto", "https")], kind="websocket"), trusted)
    assert secure is not None
    assert secure[1] == "wss"
    plain = resolve_forwarded(scope([("Forwarded", "proto=ws")], kind="websocket"), trusted)
    assert plain is not None
    assert plain[1] == "ws"
    http = resolve_forwarded(scope([("Forwarded", "proto=wss")]), trusted)
    assert http is not None
    assert http[1] == "https"


def test_resolve_forwarded_header() -> None:
    trusted = ["10.0.0.0/8"]
    result = resolve_forwarded(scope([
        ("Forwarded", 'for=6.6.6.6;proto=http, for=198.51.100.7;proto=https;host=shop.example'),
        ("Forwarded", "for=10.0.0.3;proto=http;host=internal"),
    ]), trusted)
    assert result is not None
    ip, protocol, host = result
    assert ip is not None
    assert ip.address == "198.51.100.7"
    # proto and host of the element whose "for" is the client: the hop that saw it
    assert (protocol, host) == ("https", "shop.example")
    hidden = resolve_forwarded(scope([("Forwarded", "for=_proxy1;proto=https")]), trusted)
    assert hidden is not None
    assert hidden == (None, "https", None)


def test_hops_count_from_the_server() -> None:
    header = [("X-Forwarded-For", "1.1.1.1, 2.2.2.2, 3.3.3.3")]
    for hops, expected in ((1, "3.3.3.3"), (2, "2.2.2.2"), (3, "1.1.1.1"), (9, "1.1.1.1")):
        result = resolve_forwarded(scope(header, ("8.8.8.8", 1)), [], hops)
        assert result is not None
        assert result[0] is not None
        assert result[0].address == expected


@pytest.mark.parametrize(
    ("partial", "error"),
    [
        ({"trusted": "10.0.0.1"}, TypeError),
        ({"trusted": 5}, TypeError),
        ({"trusted": ["nope"]}, ValueError),
        ({"trusted": [10]}, TypeError),
        ({"hops": -1}, ValueError),
        ({"hops": "2"}, ValueError),
    ],
)
def test_check_config_rejects(partial: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        check_config(partial)


def test_check_config_accepts() -> None:
    check_config({"trusted": ["127.0.0.1", "::1", "10.0.0.0/8"], "hops": 0})
    check_config({"trusted": (), "hops": 3})
    assert parse_network("192.168.0.0/16").num_addresses == 65536

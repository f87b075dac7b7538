"""Trusted proxies: the ``proxy`` section (docs/proxies.md).

Forwarding headers are plain request headers: anyone can send them. They are
believed only when the direct peer is a trusted proxy, and then only as far
as the chain of trusted proxies goes: the list is walked from the right (the
entry the nearest proxy added) and the walk stops at the first address that
is not trusted: that one is the client. An entry that is not an address
(``unknown``, an obfuscated name, garbage) also ends the walk, and the last
trusted hop stands as the client: anything to its left was written by
someone we do not trust.

``Forwarded`` (RFC 7239), when present, is used alone; otherwise
``X-Forwarded-For``, ``-Proto`` and ``-Host``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Final

from .feature import Feature
from .http.headers import TCHAR
from .http.url import is_valid_host
from .request import IP
from .types import Scope

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Forwarded = tuple[IP | None, str | None, str | None]

# one forwarded-pair (RFC 7239 §4): token "=" ( token / quoted-string )
_QUOTED = r'"((?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[\t\x20-\x7e\x80-\xff])*)"'
_PAIR = re.compile(rf"[ \t]*({TCHAR}+)=(?:({TCHAR}+)|{_QUOTED})[ \t]*")
_ESCAPE = re.compile(r"\\(.)")
_PROTOCOLS: Final = {"http": "http", "https": "https", "ws": "http", "wss": "https"}
_WS_PROTOCOLS: Final = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
_MAX_PEERS_CACHED = 1024


class Trust:
    """The compiled ``proxy`` section: which hops to believe."""

    __slots__ = ("hops", "networks", "peers")

    def __init__(self, trusted: Iterable[str], hops: int = 0) -> None:
        self.networks: tuple[Network, ...] = tuple(parse_network(entry) for entry in trusted)
        self.hops = hops
        # peer address -> trusted; a proxied server sees few peers, so this
        # saves parsing the same address on every request
        self.peers: dict[str, bool] = {}

    def peer(self, address: str) -> bool:
        """Whether the direct peer (hop 1) is trusted."""
        if self.hops >= 1:
            return True
        known = self.peers.get(address)
        if known is None:
            parsed = _address(address)
            known = parsed is not None and self.contains(parsed)
            if len(self.peers) < _MAX_PEERS_CACHED:
                self.peers[address] = known
        return known

    def hop(self, address: Address, position: int) -> bool:
        """Whether the hop ``position`` places from the server (the peer is 1) is trusted."""
        return position <= self.hops or self.contains(address)

    def contains(self, address: Address) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


def parse_network(entry: str) -> Network:
    """``"10.0.0.0/8"``, ``"192.168.1.7"``, ``"::1"``, ``"fd00::/8"`` → a network."""
    if not isinstance(entry, str):
        raise TypeError(f"proxy trusted entries are strings, got {entry!r}")
    try:
        # strict=False: "10.1.2.3/8" means the network 10.0.0.0/8
        return ipaddress.ip_network(entry.strip(), strict=False)
    except ValueError:
        raise ValueError(
            f"proxy trusted entry {entry!r} is not an IP address or network "
            "(e.g. '127.0.0.1', '10.0.0.0/8', '::1')"
        ) from None


def check_config(partial: Mapping[str, Any]) -> None:
    """Validate a ``proxy`` section as it is configured (fail at start-up, not per request)."""
    trusted = partial.get("trusted", [])
    if isinstance(trusted, str) or not isinstance(trusted, Iterable):
        raise TypeError(f"proxy trusted is a list of addresses and networks, not {trusted!r}")
    for entry in trusted:
        parse_network(entry)
    hops = partial.get("hops", 0)
    if type(hops) is not int or hops < 0:
        raise ValueError(f"proxy hops is an int >= 0, got {hops!r}")


class Proxy(Feature):
    """``config(proxy={"trusted": [...], "hops": 0})``; a bare list is the trusted list."""

    name: ClassVar[str] = "proxy"
    defaults: ClassVar[Mapping[str, Any]] = {"trusted": [], "hops": 0}
    switch: ClassVar[bool] = False

    def normalise(self, value: Any) -> Any:
        return {"trusted": list(value)} if isinstance(value, list | tuple) else value

    def validate(self, partial: Mapping[str, Any]) -> None:
        check_config(partial)


FEATURE = Proxy()


_BY_IDENTITY: dict[int, tuple[Sequence[str], int, Trust]] = {}
_BY_VALUE: dict[tuple[tuple[str, ...], int], Trust] = {}


def trust_of(trusted: Sequence[str], hops: int = 0) -> Trust:
    """The compiled ``Trust`` for a list, parsed once.

    Looked up by the list's identity first (router settings keep one list), then
    by value; the list is kept referenced so that its id cannot be reused."""
    found = _BY_IDENTITY.get(id(trusted))
    if found is not None and found[0] is trusted and found[1] == hops:
        return found[2]
    key = (tuple(trusted), hops)
    trust = _BY_VALUE.get(key)
    if trust is None:
        if len(_BY_VALUE) >= 64:
            _BY_VALUE.clear()
        trust = _BY_VALUE[key] = Trust(key[0], hops)
    if len(_BY_IDENTITY) >= 64:
        _BY_IDENTITY.clear()
    _BY_IDENTITY[id(trusted)] = (trusted, hops, trust)
    return trust


def resolve_forwarded(scope: Scope, trusted: Sequence[str], hops: int = 0) -> Forwarded | None:
    """What trusted proxies say about the client: (ip, protocol, host), each
    ``None`` when unchanged; ``None`` when the peer is not trusted or said nothing."""
    client = scope.get("client")
    if not client:
        return None
    trust = trust_of(trusted, hops)
    if not trust.peer(client[0]):
        return None
    forwarded: list[str] = []
    xff: list[str] = []
    xfp: list[str] = []
    xfh: list[str] = []
    for name, value in scope["headers"]:
        if name == b"forwarded":
            forwarded.append(value.decode("latin-1"))
        elif name == b"x-forwarded-for":
            xff.append(value.decode("latin-1"))
        elif name == b"x-forwarded-proto":
            xfp.append(value.decode("latin-1"))
        elif name == b"x-forwarded-host":
            xfh.append(value.decode("latin-1"))
    if forwarded:
        ip, protocol, host = walk_forwarded(parse_forwarded(", ".join(forwarded)), trust)
    elif xff or xfp or xfh:
        ip, protocol, host = walk_x_forwarded(_list(xff), _list(xfp), _list(xfh), trust)
    else:
        return None
    protocols = _WS_PROTOCOLS if scope.get("type") == "websocket" else _PROTOCOLS
    protocol = protocols.get(protocol.lower()) if protocol is not None else None
    if host is not None:
        host = host.lower()
        if not is_valid_host(host):
            host = None
    if ip is None and protocol is None and host is None:
        return None
    return ip, protocol, host


def walk_x_forwarded(
    chain: list[str], protos: list[str], hosts: list[str], trust: Trust
) -> tuple[IP | None, str | None, str | None]:
    """Walk ``X-Forwarded-For`` from the right. Each proxy appends the address it
    saw, and its scheme and host to the other two lists, so the proto and host
    of the hop that reported the client sit at the same place from the right."""
    client: IP | None = None
    reporter = 1  # the hop that wrote the client's entry; the peer is hop 1
    position = 1
    for entry in reversed(chain):
        node = parse_node(entry)
        if node is None:
            break
        client, address = node
        reporter = position
        position += 1
        if not trust.hop(address, position):
            break
    return client, _reported(protos, reporter), _reported(hosts, reporter)


def walk_forwarded(
    elements: list[dict[str, str] | None], trust: Trust
) -> tuple[IP | None, str | None, str | None]:
    """Walk ``Forwarded`` elements from the right; proto and host come from the
    element of the hop that reported the client."""
    client: IP | None = None
    chosen: dict[str, str] | None = None
    position = 1
    for element in reversed(elements):
        if element is None:
            break
        chosen = element
        node = parse_node(element["for"]) if "for" in element else None
        if node is None:
            break
        client, address = node
        position += 1
        if not trust.hop(address, position):
            break
    if chosen is None:
        return None, None, None
    return client, chosen.get("proto"), chosen.get("host")


def _reported(values: list[str], reporter: int) -> str | None:
    if not values:
        return None
    # A proxy that overwrites instead of appending leaves fewer entries: the
    # left-most is then the outermost one we have.
    return values[max(len(values) - reporter, 0)]


def _list(lines: list[str]) -> list[str]:
    """Header lines of a comma list → its non-empty entries (empty ones are
    allowed by the list syntax and mean nothing)."""
    return [entry for line in lines for item in line.split(",") if (entry := item.strip())]


def parse_forwarded(value: str) -> list[dict[str, str] | None]:
    """``Forwarded`` → one dict per element (names lowercased, quotes removed);
    ``None`` for a malformed element. A parse error skips to the next comma, so
    an unbalanced quote sent by a client cannot swallow what proxies appended."""
    elements: list[dict[str, str] | None] = []
    position = 0
    while position <= len(value):
        element, position = _element(value, position)
        if element is not _EMPTY:
            elements.append(element)
    return elements


_EMPTY: Final[dict[str, str]] = {}


def _element(value: str, position: int) -> tuple[dict[str, str] | None, int]:
    """Parse the element at ``position``: (pairs or None or _EMPTY, where the next starts)."""
    end = len(value)
    start = position
    pairs: dict[str, str] = {}
    valid = True
    while True:
        match = _PAIR.match(value, position)
        if match is None:
            break
        name = match.group(1).lower()
        token, quoted = match.group(2), match.group(3)
        if name in pairs:
            valid = False  # a parameter given twice is ambiguous (RFC 7239 §4)
        pairs[name] = token if token is not None else _ESCAPE.sub(r"\1", quoted)
        position = match.end()
        if position == end:
            return (pairs if valid else None), end + 1
        if value[position] == ",":
            return (pairs if valid else None), position + 1
        if value[position] != ";":
            break
        position += 1
    comma = value.find(",", position)
    stop = end if comma == -1 else comma
    if not pairs and not value[start:stop].strip(" \t"):
        return _EMPTY, stop + 1  # an empty list element means nothing
    return None, stop + 1


def _text(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """The address as text, the same on every Python: an IPv4-mapped IPv6 address
    in the mixed notation of RFC 5952 §5 (``::ffff:192.0.2.1``), which Python
    3.13 prints and earlier versions print as hex (``::ffff:c000:201``)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"::ffff:{address.ipv4_mapped}"
    return str(address)


def parse_node(text: str) -> tuple[IP, Address] | None:
    """A node (RFC 7239 §6; also ``X-Forwarded-For`` entries): ``192.0.2.1``,
    ``192.0.2.1:8080``, ``[2001:db8::1]:443``, a bare IPv6 address. ``unknown``,
    obfuscated names and anything else give ``None``."""
    text = text.strip()
    port: int | None = None
    if text.startswith("["):
        close = text.find("]")
        if close == -1:
            return None
        host, rest = text[1:close], text[close + 1 :]
        if rest:
            if not rest.startswith(":"):
                return None
            port, ok = _node_port(rest[1:])
            if not ok:
                return None
        address = _address(host)
        if not isinstance(address, ipaddress.IPv6Address):
            return None
    else:
        if text.count(":") == 1:
            text, _, port_text = text.partition(":")
            port, ok = _node_port(port_text)
            if not ok:
                return None
        address = _address(text)
        if address is None:
            return None
    return IP(_text(address), port), address


def _node_port(text: str) -> tuple[int | None, bool]:
    """(port, valid): an obfuscated port (``_abc``) is valid but unknown."""
    if text.startswith("_") and len(text) > 1:
        return None, all(c.isalnum() or c in "._-" for c in text[1:]) and text.isascii()
    if 0 < len(text) <= 5 and text.isascii() and text.isdigit() and int(text) <= 65535:
        return int(text), True
    return None, False


def _address(text: str) -> Address | None:
    if not text or len(text) > 64:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


__all__ = [
    "Trust",
    "check_config",
    "parse_forwarded",
    "parse_network",
    "parse_node",
    "resolve_forwarded",
    "trust_of",
    "walk_forwarded",
    "walk_x_forwarded",
]

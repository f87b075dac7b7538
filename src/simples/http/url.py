"""Host header helpers and the request URL."""

import ipaddress
import re
from urllib.parse import quote

# RFC 3986 reg-name characters (unreserved, sub-delims) plus "%" for pct-encoded,
# whose shape is checked separately: folding it into one alternation per character
# would make the common case several times slower.
_HOST = re.compile(
    r"(?:([A-Za-z0-9\-._~!$&'()*+,;=%]+)|\[([0-9A-Fa-f:.]{2,45})\])(?::([0-9]{1,5}))?"
)
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
# Paths made only of these need no quoting, which is nearly every path.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9/:@!$&'()*+,;=\-._~]*")


def split_host(host: str) -> tuple[str, int | None]:
    """``"example.com:8080"`` → ``("example.com", 8080)``, ``"[::1]"`` → ``("::1", None)``.

    Never raises: a port that is not 1-5 ASCII digits up to 65535 is reported as
    ``None`` and dropped from the hostname.
    """
    if host.startswith("["):
        end = host.find("]")
        if end != -1:
            rest = host[end + 1 :]
            port = _port(rest[1:]) if rest.startswith(":") else None
            return host[1:end], port
        return host, None
    colon = host.rfind(":")
    if colon == -1:
        return host, None
    if host.find(":") != colon:
        # Several colons without brackets: a bare IPv6 address, not host:port.
        return host, None
    return host[:colon], _port(host[colon + 1 :])


def _port(text: str) -> int | None:
    if not 0 < len(text) <= 5 or not text.isascii() or not text.isdigit():
        return None
    port = int(text)
    return port if port <= 65535 else None


def is_valid_host(host: str) -> bool:
    """Whether ``host`` is an RFC 3986 authority without userinfo: reg-name, IPv4
    or ``[IPv6]``, with an optional ``:port`` of 1-5 digits up to 65535."""
    if not isinstance(host, str):
        return False
    match = _HOST.fullmatch(host)
    if match is None:
        return False
    name, literal, port = match.groups()
    if port is not None and int(port) > 65535:
        return False
    if name is not None:
        return "%" not in name or _BAD_ESCAPE.search(name) is None
    try:
        ipaddress.IPv6Address(literal)
    except ValueError:
        return False
    return True


class URL:
    """The URL a request was made to; ``path`` is decoded, ``query`` is raw.

    Read-only, so that the lazily computed ``href`` can never go stale.
    """

    __slots__ = ("_host", "_hostname", "_href", "_path", "_port", "_query", "_scheme")

    def __init__(self, scheme: str, host: str, path: str, query: str) -> None:
        self._scheme = scheme
        self._host = host
        self._path = path
        self._query = query
        self._href: str | None = None
        self._hostname: str | None = None
        self._port: int | None = None

    @property
    def scheme(self) -> str:
        return self._scheme

    @property
    def host(self) -> str:
        """Host as given, port included."""
        return self._host

    @property
    def path(self) -> str:
        return self._path

    @property
    def query(self) -> str:
        """The raw query string, without ``?``."""
        return self._query

    @property
    def href(self) -> str:
        href = self._href
        if href is None:
            path = self._path
            if _PLAIN_PATH.fullmatch(path) is None:
                # surrogatepass: a path decoded with replacement or escapes must
                # still produce a URL rather than an exception.
                path = quote(path, safe=_PATH_SAFE, errors="surrogatepass")
            href = f"{self._scheme}://{self._host}{path}"
            if self._query:
                href = f"{href}?{self._query}"
            self._href = href
        return href

    def _split(self) -> str:
        hostname, self._port = split_host(self._host)
        self._hostname = hostname
        return hostname

    @property
    def hostname(self) -> str:
        hostname = self._hostname
        return hostname if hostname is not None else self._split()

    @property
    def port(self) -> int | None:
        if self._hostname is None:
            self._split()
        return self._port

    def __str__(self) -> str:
        return self.href

    def __repr__(self) -> str:
        return f"URL({self.href!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, URL):
            return self.href == other.href
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.href)


# WHATWG URL standard, basic URL parser: leading and trailing C0 controls and
# spaces are stripped, then every ASCII tab and newline is removed anywhere.
_C0_AND_SPACE = "".join(map(chr, range(0x21)))
_TAB_OR_NEWLINE = str.maketrans("", "", "\t\n\r")
# Left in place after the two steps above, these make the Location header
# invalid (a C0 control or DEL) or are meaningless in a path: refused.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Printable ASCII stays as it is ("%" included, so escapes are not encoded twice);
# spaces and non-ASCII are percent-encoded as a browser would.
_LOCATION_SAFE = "".join(map(chr, range(0x21, 0x7F)))


def local_target(value: object) -> str | None:
    """``value`` as a same-origin, path-absolute URL (``/notes?page=2``), or
    ``None`` when a browser could read it as another site or a script.

    Read the way browsers parse URLs (WHATWG URL standard): leading and trailing
    C0 controls and spaces are stripped, tabs and newlines removed anywhere,
    and a backslash is a slash. What is left must start with exactly one "/"
    followed by anything but "/" or "\\": no scheme (``https:evil.com``,
    ``javascript:``), no scheme-relative ``//evil.com`` or ``/\\evil.com``, no
    userinfo (which needs an authority), no relative path (``view/``), nothing
    empty. Control characters left inside, which no browser would send and a
    header cannot hold, are refused too.

    The result is the normalised target (what the browser would follow), with
    spaces and non-ASCII percent-encoded, ready for a ``Location`` header.
    """
    if not isinstance(value, str):
        return None
    target = value.strip(_C0_AND_SPACE).translate(_TAB_OR_NEWLINE)
    # Starting with "/" rules out any scheme (a scheme starts with a letter).
    if (
        not target.startswith("/")
        or target[1:2] in ("/", "\\")
        or _CONTROL.search(target) is not None
    ):
        return None
    if not target.isascii() or " " in target:
        target = quote(target, safe=_LOCATION_SAFE, errors="surrogatepass")
    return target

import pytest

from simples.http.url import URL, is_valid_host, split_host

# --- split_host ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("example.com", ("example.com", None)),
        ("example.com:8080", ("example.com", 8080)),
        ("example.com:0", ("example.com", 0)),
        ("example.com:65535", ("example.com", 65535)),
        ("127.0.0.1:80", ("127.0.0.1", 80)),
        ("[::1]:8000", ("::1", 8000)),
        ("[::1]", ("::1", None)),
        ("[2001:db8::1]:443", ("2001:db8::1", 443)),
        ("localhost", ("localhost", None)),
        ("", ("", None)),
    ],
)
def test_split_host(host: str, expected: tuple[str, int | None]) -> None:
    assert split_host(host) == expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("example.com:", ("example.com", None)),
        ("example.com:abc", ("example.com", None)),
        ("example.com:65536", ("example.com", None)),
        ("example.com:123456", ("example.com", None)),
        ("example.com:٨٠", ("example.com", None)),
        ("example.com:-1", ("example.com", None)),
        ("example.com:+80", ("example.com", None)),
        ("example.com:" + "9" * 10_000, ("example.com", None)),
        ("[::1]:", ("::1", None)),
        ("[::1]x", ("::1", None)),
        ("[::1", ("[::1", None)),
        ("::1", ("::1", None)),
        ("fe80::1:8080", ("fe80::1:8080", None)),
    ],
)
def test_split_host_bad_ports_never_raise(host: str, expected: tuple[str, int | None]) -> None:
    assert split_host(host) == expected


# --- is_valid_host ---------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "EXAMPLE.com",
        "example.com:8080",
        "example.com:0",
        "example.com:65535",
        "localhost",
        "a",
        "xn--nxasmq6b.com",
        "my_host-1.internal",
        "127.0.0.1",
        "127.0.0.1:8000",
        "[::1]",
        "[::1]:8000",
        "[2001:db8::ff00:42:8329]",
        "[::ffff:192.168.0.1]:443",
        "ex%41mple.com",
        "sub!$&'()*+,;=.example",
        "host~name",
        "999.999.999.999",
    ],
)
def test_valid_hosts(host: str) -> None:
    assert is_valid_host(host) is True


@pytest.mark.parametrize(
    "host",
    [
        "",
        ":80",
        "example.com:",
        "example.com:65536",
        "example.com:99999",
        "example.com:123456",
        "example.com:abc",
        "example.com:٨٠",
        "example.com:80:80",
        "exa mple.com",
        " example.com",
        "example.com ",
        "example.com/",
        "example.com/path",
        "user@example.com",
        "exa\\mple.com",
        "example.com\r\n",
        "example.com\n",
        "example.com\x00",
        "example.com\t",
        "exam\x7fple.com",
        "exämple.com",
        "例え.jp",
        "ex%4mple.com",
        "ex%zzmple.com",
        "example%",
        "example.com?",
        "example.com#",
        "[::1",
        "::1",
        "[::1]x",
        "[::1]:",
        "[::1]:99999",
        "[not-ipv6]",
        "[1.2.3.4]",
        "[:::1]",
        "[]",
        "[v1.fe]",
        "[fe80::1%25eth0]",
        "[::1][::2]",
        "a" * 100_000 + "/",
    ],
)
def test_invalid_hosts(host: str) -> None:
    assert is_valid_host(host) is False


def test_invalid_host_non_string() -> None:
    assert is_valid_host(None) is False  # type: ignore[arg-type]
    assert is_valid_host(b"example.com") is False  # type: ignore[arg-type]


def test_huge_valid_host_linear() -> None:
    assert is_valid_host("a" * 100_000 + ".com:80") is True
    assert is_valid_host("%41" * 100_000) is True
    assert is_valid_host("%41" * 100_000 + "%4") is False


# --- URL -------------------------------------------------------------------------


def test_url_attributes() -> None:
    url = URL("https", "example.com:8443", "/a/b", "x=1&y=2")
    assert url.scheme == "https"
    assert url.host == "example.com:8443"
    assert url.hostname == "example.com"
    assert url.port == 8443
    assert url.path == "/a/b"
    assert url.query == "x=1&y=2"
    assert url.href == "https://example.com:8443/a/b?x=1&y=2"


def test_url_port_before_hostname() -> None:
    url = URL("http", "[::1]:8000", "/", "")
    assert url.port == 8000
    assert url.hostname == "::1"


def test_url_without_port() -> None:
    url = URL("http", "example.com", "/", "")
    assert url.port is None
    assert url.hostname == "example.com"


def test_url_without_query_has_no_question_mark() -> None:
    assert URL("http", "h", "/p", "").href == "http://h/p"


def test_url_str_is_href() -> None:
    url = URL("http", "h", "/p", "q=1")
    assert str(url) == url.href == "http://h/p?q=1"


def test_url_repr() -> None:
    assert repr(URL("http", "h", "/p", "")) == "URL('http://h/p')"


@pytest.mark.parametrize(
    ("path", "encoded"),
    [
        ("/a b", "/a%20b"),
        ("/café", "/caf%C3%A9"),
        ("/☃/😀", "/%E2%98%83/%F0%9F%98%80"),
        ("/100%", "/100%25"),
        ("/a?b#c", "/a%3Fb%23c"),
        ('/"<>', "/%22%3C%3E"),
        ("/a\\b", "/a%5Cb"),
        ("/%2F", "/%252F"),
        ("/\r\n", "/%0D%0A"),
        ("/:@!$&'()*+,;=-._~", "/:@!$&'()*+,;=-._~"),
        ("/AZaz09", "/AZaz09"),
    ],
)
def test_url_href_encodes_decoded_path(path: str, encoded: str) -> None:
    assert URL("http", "h", path, "").href == f"http://h{encoded}"


def test_url_href_with_surrogate_never_raises() -> None:
    href = URL("http", "h", "/\udcff", "").href
    assert href.startswith("http://h/%")
    assert href.isascii()


def test_url_query_is_kept_raw() -> None:
    assert URL("http", "h", "/", "a=%20+b").href == "http://h/?a=%20+b"


def test_url_equality_by_href() -> None:
    assert URL("http", "h", "/a b", "") == URL("http", "h", "/a%20b".replace("%20", " "), "")
    assert URL("http", "h", "/a", "") != URL("http", "h", "/b", "")
    assert URL("http", "h", "/a", "") != URL("https", "h", "/a", "")
    assert URL("http", "h", "/a", "") != "http://h/a"


def test_url_hashable_consistent_with_equality() -> None:
    first = URL("http", "h", "/a", "x=1")
    second = URL("http", "h", "/a", "x=1")
    assert hash(first) == hash(second)
    assert len({first, second}) == 1


def test_url_is_read_only() -> None:
    url = URL("http", "h", "/a", "")
    assert url.href == "http://h/a"
    with pytest.raises(AttributeError):
        url.path = "/b"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        url.extra = 1  # type: ignore[attr-defined]
    assert url.href == "http://h/a"


def test_url_href_is_cached() -> None:
    url = URL("http", "h", "/é", "")
    assert url.href is url.href


def test_url_long_path_linear() -> None:
    path = "/é" * 100_000
    assert URL("http", "h", path, "").href == "http://h" + "/%C3%A9" * 100_000

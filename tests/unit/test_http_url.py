import pytest

from simples.http.url import URL, is_valid_host, local_target, split_host

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


# --- local_target (issue #18: open redirect) ----------------------------------------

# Django's url_has_allowed_host_and_scheme bad URLs (tests/utils_tests/test_http.py),
# then what browsers make of tabs, newlines, controls and backslashes (WHATWG URL).
BAD_TARGETS = [
    "http://example.com",
    "http:///example.com",
    "https://example.com",
    "ftp://example.com",
    r"\\example.com",
    r"\\\example.com",
    r"/\\/example.com",
    r"\\//example.com",
    r"/\/example.com",
    r"\/example.com",
    r"/\example.com",
    r"http:/\//example.com",
    r"http:\/example.com",
    r"http:/\example.com",
    'javascript:alert("XSS")',
    "\njavascript:alert(x)",
    "\x08//example.com",
    r"http://otherserver\@example.com",
    r"http:\\testserver\@example.com",
    r"http://testserver\me:pass@example.com",
    r"http://testserver\@example.com",
    r"http:\\testserver\confirm\me@example.com",
    "http:999999999",
    "ftp:9999999999",
    "\n",
    "http://[2001:cdba:0000:0000:0000:0000:3257:9652/",
    "http://2001:cdba:0000:0000:0000:0000:3257:9652]/",
    # Issue #18's own list.
    "//evil.com",
    "https:evil.com",
    "/\\evil.com",
    "http://127.0.0.1\\@evil.com",
    "/\t/evil.com",  # ?next=/%09/evil.com, once the query parser decoded it
    "/\n/evil.com",
    "/\r/evil.com",
    "/\t\\evil.com",
    "\t//evil.com",
    " //evil.com",
    "\x00//evil.com",
    "\x1f/\x1f/evil.com",
    "///evil.com",
    "////evil.com",
    "data:text/html,<script>alert(1)</script>",
    "JaVaScRiPt:alert(1)",
    "java\tscript:alert(1)",
    "evil.com",
    "evil.com/path",
    "@evil.com",
    "\\t\\tevil.com",
    "/a\x00b",  # a control left inside: no header can hold it
    "/a\x7fb",
    "",
    "   ",
    "\t\n",
]
# Django's good URLs that are same-origin and path-absolute, and a few more.
GOOD_TARGETS = [
    ("/view/?param=http://example.com", "/view/?param=http://example.com"),
    ("/view/?param=https://example.com", "/view/?param=https://example.com"),
    ("/view?param=ftp://example.com", "/view?param=ftp://example.com"),
    ("/url%20with%20spaces/", "/url%20with%20spaces/"),
    ("/", "/"),
    ("/notes?page=2#top", "/notes?page=2#top"),
    ("/@evil.com", "/@evil.com"),  # a path on this site
    ("/%09/evil.com", "/%09/evil.com"),  # still encoded: a path segment "%09"
    ("/%2F/evil.com", "/%2F/evil.com"),
    ("/a\\b", "/a\\b"),  # a backslash after the first segment stays in the path
    ("/a//b", "/a//b"),
    ("/login?next=//evil.com", "/login?next=//evil.com"),
    ("  /notes\t\n ", "/notes"),  # what a browser would follow
    ("/caf\u00e9 menu", "/caf%C3%A9%20menu"),
    ("/\ud800", "/%ED%A0%80"),
]
# Django's other good URLs are relative or absolute: never a local target.
NOT_PATH_ABSOLUTE = [
    "view/?param=//example.com",
    "https://testserver/",
    "HTTPS://testserver/",
    "//testserver/",
    "http://testserver/confirm?email=me@example.com",
    "path/http:2222222222",
]


@pytest.mark.parametrize("target", BAD_TARGETS + NOT_PATH_ABSOLUTE)
def test_local_target_refuses_what_a_browser_could_read_as_another_site(target: str) -> None:
    assert local_target(target) is None


@pytest.mark.parametrize(("target", "expected"), GOOD_TARGETS)
def test_local_target_keeps_paths_on_this_site(target: str, expected: str) -> None:
    assert local_target(target) == expected


@pytest.mark.parametrize("value", [None, 1, b"/path", ["/path"]])
def test_local_target_of_a_non_string_is_none(value: object) -> None:
    assert local_target(value) is None


def test_local_target_every_control_character_around_the_slashes() -> None:
    for code in range(0x20 + 1):
        char = chr(code)
        assert local_target(f"{char}//evil.com") is None
        # Inside, a space is part of the path (a browser sends "/%20/evil.com").
        assert local_target(f"/{char}/evil.com") == (None if code < 0x20 else "/%20/evil.com")
        assert local_target(f"//evil.com{char}") is None
    # One megabyte of tabs is still linear work.
    assert local_target("/" + "\t" * 1_000_000 + "/evil.com") is None

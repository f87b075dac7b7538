"""The pure CORS rules: origin normalisation, origin_allowed, compiled sections."""

from __future__ import annotations

from typing import Any

import pytest

from simples.config import DEFAULTS
from simples.cors import CorsRules, check_config, compile_origins, normalise_origin, origin_allowed


@pytest.mark.parametrize(
    ("origin", "normalised"),
    [
        ("https://example.com", "https://example.com"),
        ("HTTPS://Example.COM", "https://example.com"),
        ("https://example.com:443", "https://example.com"),
        ("http://example.com:80", "http://example.com"),
        ("http://example.com:443", "http://example.com:443"),
        ("https://example.com:80", "https://example.com:80"),
        ("wss://example.com:443", "wss://example.com"),
        ("ws://example.com:80", "ws://example.com"),
        ("http://localhost:3000", "http://localhost:3000"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("http://[::1]", "http://[::1]"),
        ("http://[::1]:80", "http://[::1]"),
        ("https://example.com:0443", "https://example.com"),
        ("app://bundle", "app://bundle"),
        ("null", "null"),
    ],
)
def test_normalise_origin(origin: str, normalised: str) -> None:
    assert normalise_origin(origin) == normalised


@pytest.mark.parametrize(
    "origin",
    [
        "", "NULL", "null ", "example.com", "//example.com", "https://", "https://example.com/",
        "https://example.com/a", "https://example.com?q", "https://example.com#f",
        "https://u@example.com", "https://u:p@example.com", "https://example.com:",
        "https://example.com:65536", "https://example.com:abc", "https://[::1", "https://[zz]",
        "https://exa mple.com", "https://a.com https://b.com", "javascript:alert(1)",
        "https://" + "a" * 3000, "1https://example.com", "https://ex\x00ample.com",
    ],
)
def test_not_origins(origin: str) -> None:
    assert normalise_origin(origin) is None


def test_origin_allowed_with_lists_star_none_and_callables() -> None:
    origins = ["https://app.example", "http://localhost:3000"]
    assert origin_allowed("https://app.example", origins)
    assert origin_allowed("https://APP.example:443", origins)
    assert not origin_allowed("http://app.example", origins)
    assert not origin_allowed("https://app.example:8443", origins)
    assert not origin_allowed("null", origins)
    assert not origin_allowed("garbage", origins)
    assert origin_allowed("null", ["null"])
    assert origin_allowed("https://app.example", "https://app.example")
    assert origin_allowed("https://anything.example", "*")
    assert origin_allowed("https://anything.example", ["https://app.example", "*"])
    # None is "no restriction" (router.ws(origins=None))
    assert origin_allowed("https://anything.example", None)
    assert origin_allowed("garbage", None)
    assert not origin_allowed("https://x.example", [])
    asked: list[str] = []

    def check(origin: str) -> bool:
        asked.append(origin)
        return origin == "https://ok.example"

    assert origin_allowed("HTTPS://OK.example:443", check)
    assert not origin_allowed("https://no.example", check)
    assert not origin_allowed("not an origin", check)  # never reaches the callable
    assert asked == ["https://ok.example", "https://no.example"]


def test_configured_origins_must_be_origins() -> None:
    assert compile_origins(("https://a.example/", "*")) == (True, frozenset({"https://a.example"}))
    with pytest.raises(ValueError, match="not an origin"):
        compile_origins(("a.example",))
    with pytest.raises(ValueError, match="not an origin"):
        origin_allowed("https://a.example", ["https://a.example/path"])
    with pytest.raises(TypeError):
        compile_origins((5,))  # type: ignore[arg-type]


def rules(**section: Any) -> CorsRules:
    return CorsRules({**DEFAULTS["cors"], "enabled": True, **section})


def test_allow_origin_and_credentials() -> None:
    listed = rules(origins=["https://a.example"], credentials=True)
    assert listed.allow_origin("https://a.example") == ("https://a.example", True)
    assert listed.allow_origin("https://a.example:443") == ("https://a.example:443", True)
    assert listed.allow_origin("https://b.example") is None
    assert listed.allow_origin("null") is None
    assert listed.varies
    with pytest.raises(ValueError, match="credentials"):
        rules(origins="*", credentials=True)  # issue #18: refused, not silently useless
    star = rules(origins="*")
    # a star never lends credentials, and never reflects
    assert star.allow_origin("https://b.example") == ("*", False)
    assert star.allow_origin("null") == ("*", False)
    assert not star.varies
    mixed = rules(origins=["https://a.example", "*"], credentials=True)
    assert mixed.allow_origin("https://a.example") == ("https://a.example", True)
    assert mixed.allow_origin("https://b.example") == ("*", False)
    assert mixed.varies
    called = rules(origins=lambda origin: origin.endswith(".a.example"), credentials=True)
    assert called.allow_origin("https://x.a.example") == ("https://x.a.example", True)
    assert called.allow_origin("https://a.example") is None
    assert called.varies
    nobody = rules(origins=[])
    assert nobody.allow_origin("https://a.example") is None
    assert not nobody.varies


def test_compiled_lists() -> None:
    compiled = rules(origins="*", headers=["X-Token", "Content-Type"], expose=["X-A", "X-B"],
                     methods=["get", "put"], max_age=0)
    assert compiled.headers == "accept, accept-language, content-language, content-type, x-token"
    assert compiled.expose == "X-A, X-B"
    assert compiled.methods == frozenset({"GET", "PUT"})
    assert compiled.max_age == "0"
    wild = rules(origins="*", headers="*", methods=["*"], expose="*")
    assert wild.reflect_headers
    assert wild.reflect_methods
    assert wild.expose == "*"
    assert rules(origins="*").expose is None


@pytest.mark.parametrize(
    ("partial", "error"),
    [
        ({"origins": 5}, TypeError),
        ({"origins": ["nope"]}, ValueError),
        ({"methods": "GET"}, TypeError),
        ({"methods": ["G T"]}, ValueError),
        ({"headers": [5]}, ValueError),
        ({"expose": ["x\r\ny"]}, ValueError),
        ({"max_age": -1}, ValueError),
        ({"max_age": 1.5}, ValueError),
        ({"max_age": True}, ValueError),
        ({"credentials": 1}, TypeError),
    ],
)
def test_check_config_rejects(partial: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        check_config(partial)


def test_check_config_accepts() -> None:
    check_config({"origins": "*", "methods": "*", "headers": [], "max_age": None})
    check_config({"origins": lambda origin: True, "credentials": True, "expose": ["X-Id"]})
    check_config({"origins": ("https://a.example", "null")})
    assert compile_origins(("https://a.example", "null"))[1] == {"https://a.example", "null"}


# --- issue #18: wildcards and "*" with credentials ---------------------------------


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://app.example.com", True),
        ("https://a.b.c.example.com", True),
        ("HTTPS://App.Example.COM:443", True),
        ("https://example.com", False),
        ("https://.example.com", False),
        ("http://app.example.com", False),
        ("https://app.example.com:8443", False),
        ("https://evilexample.com", False),
        ("https://app.example.com.evil.com", False),
        ("https://app.example.com/", False),
        ("https://user@app.example.com", False),
        ("null", False),
        ("", False),
    ],
)
def test_subdomain_pattern(origin: str, allowed: bool) -> None:
    assert origin_allowed(origin, ["https://*.example.com"]) is allowed
    assert (rules(origins=["https://*.example.com"]).allow_origin(origin) is not None) is allowed


def test_subdomain_pattern_with_a_port() -> None:
    pattern = ["https://*.example.com:8443"]
    assert origin_allowed("https://a.example.com:8443", pattern)
    assert not origin_allowed("https://a.example.com", pattern)
    assert origin_allowed("https://a.example.com", ["https://*.example.com:443/"])
    assert origin_allowed("http://x.localhost:3000", ["http://*.localhost:3000"])


@pytest.mark.parametrize(
    "entry",
    ["*.example.com", "https://*example.com", "https://a.*.example.com", "https://*",
     "https://*.", "https://*.com", "https://*.*.example.com", "http*://example.com",
     "https://example.*", "*://example.com", "https://*.example.com/path", " *"],
)  # fmt: skip
def test_unsupported_wildcards_are_value_errors(entry: str) -> None:
    with pytest.raises(ValueError, match="subdomain pattern"):
        compile_origins((entry,))
    with pytest.raises(ValueError, match="subdomain pattern"):
        check_config({"origins": [entry]})


@pytest.mark.parametrize("origins", ["*", ["*"], ("*",), ["*", "*"]])
def test_star_alone_with_credentials_is_a_value_error(origins: Any) -> None:
    with pytest.raises(ValueError, match="List the origins that need credentials"):
        check_config({"origins": origins, "credentials": True})
    with pytest.raises(ValueError, match="credentials"):
        rules(origins=origins, credentials=True)


def test_star_with_listed_origins_and_credentials_stays_valid() -> None:
    check_config({"origins": ["https://a.example", "*"], "credentials": True})
    check_config({"origins": ["https://*.a.example", "*"], "credentials": True})
    check_config({"origins": "*", "credentials": False})
    check_config({"origins": lambda origin: True, "credentials": True})
    mixed = rules(origins=["https://*.a.example", "*"], credentials=True)
    assert mixed.allow_origin("https://x.a.example") == ("https://x.a.example", True)
    assert mixed.allow_origin("https://a.example") == ("*", False)

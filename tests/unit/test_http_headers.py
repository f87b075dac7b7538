from collections.abc import Mapping

import pytest

from simples.http.headers import Headers, validate_header_name, validate_header_value

RAW = [
    (b"host", b"example.com"),
    (b"accept", b"text/html"),
    (b"x-many", b"one"),
    (b"x-many", b"two"),
    (b"x-latin", "caf\xe9".encode("latin-1")),
]


def test_is_a_mapping() -> None:
    assert isinstance(Headers([]), Mapping)


def test_lookup_is_case_insensitive() -> None:
    headers = Headers(RAW)
    assert headers["Host"] == "example.com"
    assert headers["HOST"] == "example.com"
    assert headers["host"] == "example.com"


def test_getitem_gives_first_value() -> None:
    assert Headers(RAW)["X-Many"] == "one"


def test_getitem_missing_raises_key_error() -> None:
    with pytest.raises(KeyError):
        Headers(RAW)["x-missing"]


def test_get_with_and_without_default() -> None:
    headers = Headers(RAW)
    assert headers.get("Accept") == "text/html"
    assert headers.get("x-missing") is None
    assert headers.get("x-missing", "fallback") == "fallback"
    assert headers.get("X-MANY", "fallback") == "one"


def test_getall() -> None:
    headers = Headers(RAW)
    assert headers.getall("x-many") == ["one", "two"]
    assert headers.getall("X-Many") == ["one", "two"]
    assert headers.getall("host") == ["example.com"]
    assert headers.getall("x-missing") == []


def test_getall_returns_a_copy() -> None:
    headers = Headers(RAW)
    headers.getall("x-many").append("three")
    assert headers.getall("x-many") == ["one", "two"]


def test_iteration_yields_unique_lowercase_names_in_order() -> None:
    assert list(Headers(RAW)) == ["host", "accept", "x-many", "x-latin"]


def test_len_counts_unique_names() -> None:
    assert len(Headers(RAW)) == 4
    assert len(Headers([])) == 0


def test_contains() -> None:
    headers = Headers(RAW)
    assert "Host" in headers
    assert "x-many" in headers
    assert "x-missing" not in headers
    assert 42 not in headers
    assert b"host" not in headers


def test_values_are_latin1_decoded() -> None:
    assert Headers(RAW)["x-latin"] == "café"


def test_raw_is_kept() -> None:
    headers = Headers(RAW)
    assert headers.raw is RAW


def test_uppercase_raw_names_are_still_found() -> None:
    headers = Headers([(b"Content-Type", b"text/plain")])
    assert headers["content-type"] == "text/plain"
    assert list(headers) == ["content-type"]


def test_empty_value() -> None:
    headers = Headers([(b"x-empty", b"")])
    assert headers["x-empty"] == ""
    assert headers.get("x-empty", "default") == ""


def test_mapping_methods() -> None:
    headers = Headers(RAW)
    assert dict(headers.items())["x-many"] == "one"
    assert list(headers.keys()) == ["host", "accept", "x-many", "x-latin"]
    assert headers == {
        "host": "example.com",
        "accept": "text/html",
        "x-many": "one",
        "x-latin": "café",
    }


def test_repr_shows_raw() -> None:
    assert "example.com" in repr(Headers(RAW))


def test_many_headers() -> None:
    raw = [(f"x-h{i}".encode(), str(i).encode()) for i in range(100_000)]
    raw.append((b"x-h0", b"again"))
    headers = Headers(raw)
    assert len(headers) == 100_000
    assert headers["X-H99999"] == "99999"
    assert headers.getall("x-h0") == ["0", "again"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Content-Type", "content-type"),
        ("X-Custom-Header", "x-custom-header"),
        ("a", "a"),
        ("!#$%&'*+-.^_`|~", "!#$%&'*+-.^_`|~"),
        ("X123", "x123"),
    ],
)
def test_validate_header_name_accepts_tokens(name: str, expected: str) -> None:
    assert validate_header_name(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "",
        "X-Bad\r\nInjected: yes",
        "X-Bad\n",
        "X-Bad\r",
        "X\x00",
        "X Space",
        "X:Colon",
        "Caf\xe9",
        "Ünï",
        "X-Tab\t",
        'X"Quote',
        "X(paren)",
        "X/slash",
        "X@at",
        "X[1]",
        "X{1}",
        "X=1",
        "X;1",
        "X,1",
        "X\\1",
        "X\x7f",
        "ＡＢＣ",
    ],
)
def test_validate_header_name_rejects_non_tokens(name: str) -> None:
    with pytest.raises(ValueError, match="header name"):
        validate_header_name(name)


def test_validate_header_name_rejects_trailing_newline() -> None:
    # "$" in a regex would let this through; a full match must not.
    with pytest.raises(ValueError, match="header name"):
        validate_header_name("X-Name\n")


@pytest.mark.parametrize(
    "value",
    ["", "text/html", "a\tb", " spaced ", "café", "\xff", "!#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"],
)
def test_validate_header_value_accepts(value: str) -> None:
    assert validate_header_value(value) is value


@pytest.mark.parametrize(
    "value",
    [
        "a\r\nSet-Cookie: evil=1",
        "a\nb",
        "a\rb",
        "a\x00b",
        "\x01",
        "\x08",
        "\x0b",
        "\x0c",
        "\x1f",
        "\x7f",
        "snow ☃",
        "emoji 😀",
        "\u0100",
    ],
)
def test_validate_header_value_rejects(value: str) -> None:
    with pytest.raises(ValueError, match="header value"):
        validate_header_value(value)


def test_validate_header_value_rejects_trailing_newline() -> None:
    with pytest.raises(ValueError, match="header value"):
        validate_header_value("value\n")


def test_validate_header_value_huge_input() -> None:
    value = "a" * 100_000
    assert validate_header_value(value) is value
    with pytest.raises(ValueError, match="header value"):
        validate_header_value(value + "\n")

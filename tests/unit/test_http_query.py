import random
from urllib.parse import unquote_to_bytes

import pytest

from simples.http.multidict import MultiDict
from simples.http.query import QueryLimitError, parse_query, percent_decode


def test_returns_multidict() -> None:
    assert isinstance(parse_query(b"a=1"), MultiDict)


@pytest.mark.parametrize("query", [b"a=1&b=2", "a=1&b=2"])
def test_bytes_and_str(query: bytes | str) -> None:
    result = parse_query(query)
    assert result["a"] == "1"
    assert result["b"] == "2"
    assert list(result) == ["a", "b"]


@pytest.mark.parametrize("query", [b"", ""])
def test_empty(query: bytes | str) -> None:
    result = parse_query(query)
    assert len(result) == 0
    assert result.getall("a") == []


def test_repeated_keys() -> None:
    result = parse_query(b"a=1&b=x&a=2&a=3")
    assert result["a"] == "1"
    assert result.get("a") == "1"
    assert result.getall("a") == ["1", "2", "3"]
    assert result.getall("b") == ["x"]


def test_brackets_are_stripped() -> None:
    result = parse_query(b"a[]=1&a[]=2&a=3")
    assert result.getall("a") == ["1", "2", "3"]
    assert "a[]" not in result


def test_encoded_brackets_are_stripped_too() -> None:
    assert parse_query(b"a%5B%5D=1&a%5b%5d=2").getall("a") == ["1", "2"]


def test_only_trailing_empty_brackets_are_stripped() -> None:
    result = parse_query(b"a[b]=1&c[]d=2&e[][]=3&[]=4")
    assert result["a[b]"] == "1"
    assert result["c[]d"] == "2"
    assert result["e[]"] == "3"
    assert result[""] == "4"


def test_plus_is_space() -> None:
    result = parse_query(b"q=hello+world&k+ey=v")
    assert result["q"] == "hello world"
    assert result["k ey"] == "v"


def test_encoded_plus_is_plus() -> None:
    assert parse_query(b"q=1%2B1")["q"] == "1+1"


def test_percent_decoding_utf8() -> None:
    result = parse_query(b"name=%C3%A9t%C3%A9&snow=%E2%98%83&emoji=%F0%9F%98%80")
    assert result["name"] == "été"
    assert result["snow"] == "☃"
    assert result["emoji"] == "😀"


def test_encoded_separators_are_data() -> None:
    result = parse_query(b"a=1%262%3D3&b%3Dc=d")
    assert result["a"] == "1&2=3"
    assert result["b=c"] == "d"


def test_pair_without_equals_is_empty_value() -> None:
    result = parse_query(b"flag&x=1&other")
    assert result["flag"] == ""
    assert result["other"] == ""
    assert result["x"] == "1"


def test_empty_value() -> None:
    assert parse_query(b"a=&b=")["a"] == ""


def test_value_with_equals() -> None:
    assert parse_query(b"a=b=c")["a"] == "b=c"


def test_empty_pieces_tolerated() -> None:
    result = parse_query(b"&&a=1&&&b=2&")
    assert dict(result) == {"a": "1", "b": "2"}


def test_semicolon_is_not_a_separator() -> None:
    assert parse_query(b"a=1;b=2")["a"] == "1;b=2"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"a=%", "%"),
        (b"a=%2", "%2"),
        (b"a=%zz", "%zz"),
        (b"a=%%41", "%A"),
        (b"a=100%", "100%"),
        (b"a=%G1", "%G1"),
        (b"a=%+1", "% 1"),
    ],
)
def test_malformed_escapes_left_literally(raw: bytes, expected: str) -> None:
    assert parse_query(raw)["a"] == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"a=%FF", "\ufffd"),
        (b"a=%C3", "\ufffd"),
        (b"a=%C3%28", "\ufffd("),
        (b"a=\xff\xfe", "\ufffd\ufffd"),
        (b"a=\xc3\xa9", "é"),
        (b"\xff=1", None),
    ],
)
def test_invalid_utf8_is_replaced(raw: bytes, expected: str | None) -> None:
    result = parse_query(raw)
    if expected is None:
        assert result["\ufffd"] == "1"
    else:
        assert result["a"] == expected


def test_str_with_unicode_is_utf8_text() -> None:
    assert parse_query("q=café&r=%C3%A9")["q"] == "café"
    assert parse_query("q=café&r=%C3%A9")["r"] == "é"


def test_str_with_lone_surrogate_never_raises() -> None:
    result = parse_query("a=%41\ud800&b=\ud800")
    assert result["a"].startswith("A\ufffd")
    assert "\ud800" not in result["a"]
    assert result["b"] == "\ud800"


def test_keys_keep_order_of_first_appearance() -> None:
    assert list(parse_query(b"z=1&a=2&z=3&m=4")) == ["z", "a", "m"]


def test_limit_exceeded_raises() -> None:
    query = "&".join(f"k{i}=v" for i in range(1001)).encode()
    with pytest.raises(QueryLimitError):
        parse_query(query)


def test_limit_error_is_value_error() -> None:
    assert issubclass(QueryLimitError, ValueError)


def test_limit_exact_is_allowed() -> None:
    query = "&".join(f"k{i}=v" for i in range(1000)).encode()
    assert len(parse_query(query)) == 1000


def test_limit_counts_only_non_empty_pairs() -> None:
    query = b"&".join([b"a=1"] * 10) + b"&" * 5000
    assert parse_query(query, max_pairs=10).getall("a") == ["1"] * 10
    with pytest.raises(QueryLimitError):
        parse_query(query + b"b=2", max_pairs=10)


def test_custom_limit() -> None:
    with pytest.raises(QueryLimitError):
        parse_query(b"a=1&b=2&c=3", max_pairs=2)
    assert len(parse_query(b"a=1&b=2", max_pairs=2)) == 2


def test_zero_means_no_limit() -> None:
    query = "&".join(f"k{i}={i}" for i in range(100_000)).encode()
    result = parse_query(query, max_pairs=0)
    assert len(result) == 100_000
    assert result["k99999"] == "99999"


def test_2000_pairs_with_raised_limit() -> None:
    query = "&".join(f"k{i % 500}=v%20{i}" for i in range(2000)).encode()
    result = parse_query(query, max_pairs=2000)
    assert len(result) == 500
    assert result.getall("k0") == ["v 0", "v 500", "v 1000", "v 1500"]


def test_2000_pairs_over_default_limit() -> None:
    query = "&".join(f"k{i}=v" for i in range(2000)).encode()
    with pytest.raises(QueryLimitError):
        parse_query(query)


def test_huge_value_linear() -> None:
    value = b"%41+" * 100_000
    assert parse_query(b"a=" + value)["a"] == "A " * 100_000


def test_huge_malformed_value_linear() -> None:
    assert parse_query(b"a=" + b"%" * 100_000)["a"] == "%" * 100_000


def test_huge_separator_run_linear() -> None:
    assert dict(parse_query(b"&" * 100_000 + b"a=1", max_pairs=1)) == {"a": "1"}


# --- percent_decode --------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", b""),
        (b"plain", b"plain"),
        (b"%41%42", b"AB"),
        (b"%e2%98%83", "☃".encode()),
        (b"%", b"%"),
        (b"%4", b"%4"),
        (b"%%41", b"%A"),
        (b"%zz%41", b"%zzA"),
        (b"\\x41", b"\\x41"),
        (b"\\%41", b"\\A"),
        (b"%5Cx41", b"\\x41"),
        (b"\\n\\", b"\\n\\"),
        (b"%00%0a\xff", b"\x00\n\xff"),
    ],
)
def test_percent_decode(raw: bytes, expected: bytes) -> None:
    assert percent_decode(raw) == expected


def test_percent_decode_agrees_with_urllib_on_random_input() -> None:
    rng = random.Random(1234)
    alphabet = b"%%%%0123456789abcdefABCDEFgxz\\\\ +=&\x00\xff\xc3"
    for _ in range(3000):
        raw = bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 24)))
        assert percent_decode(raw) == unquote_to_bytes(raw), raw


def test_percent_decode_huge_inputs_linear() -> None:
    assert percent_decode(b"%41" * 100_000) == b"A" * 100_000
    assert percent_decode(b"%" * 100_000) == b"%" * 100_000
    assert percent_decode(b"%41%" * 50_000) == b"A%" * 50_000
    assert percent_decode(b"\\" * 100_000 + b"%41") == b"\\" * 100_000 + b"A"

import pytest

from simples.http.links import format_links


def test_two_links() -> None:
    assert format_links({"next": "/2", "prev": "/0"}) == '</2>; rel="next", </0>; rel="prev"'


def test_single_link() -> None:
    assert format_links({"canonical": "https://example.com/a?b=1&c=2"}) == (
        '<https://example.com/a?b=1&c=2>; rel="canonical"'
    )


def test_empty_mapping() -> None:
    assert format_links({}) == ""


def test_empty_url_is_the_current_document() -> None:
    assert format_links({"self": ""}) == '<>; rel="self"'


def test_rel_with_spaces_and_uri_relation() -> None:
    assert format_links({"preload prefetch": "/a.js"}) == '</a.js>; rel="preload prefetch"'
    assert format_links({"https://example.com/rel": "/x"}) == (
        '</x>; rel="https://example.com/rel"'
    )


def test_existing_escapes_are_kept() -> None:
    assert format_links({"next": "/a%20b?q=%E2%98%83"}) == '</a%20b?q=%E2%98%83>; rel="next"'


def test_non_ascii_and_spaces_are_percent_encoded() -> None:
    assert format_links({"next": "/café page"}) == '</caf%C3%A9%20page>; rel="next"'
    assert format_links({"next": "/☃?q=😀"}) == '</%E2%98%83?q=%F0%9F%98%80>; rel="next"'


def test_output_is_a_safe_header_value() -> None:
    value = format_links({"a": "/é", "b": "/ü ü"})
    assert value.isascii()
    assert "\r" not in value
    assert "\n" not in value


@pytest.mark.parametrize(
    "url",
    ["/a>b", "/a\r\nSet-Cookie: x=1", "/a\n", "/a\r", "/a\x00", "/a\x01", "/a\x7f", "/a\tb"],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(ValueError, match="URL"):
        format_links({"next": url})


@pytest.mark.parametrize(
    "rel", ["", 'ne"xt', "ne\\xt", "next\r\n", "next\x00", "ne\txt", "nèxt", "next\x7f"]
)
def test_bad_rels(rel: str) -> None:
    with pytest.raises(ValueError, match="relation"):
        format_links({rel: "/2"})


def test_non_string_values() -> None:
    with pytest.raises(ValueError, match="URL"):
        format_links({"next": 2})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="relation"):
        format_links({2: "/2"})  # type: ignore[dict-item]


def test_lone_surrogate_url() -> None:
    with pytest.raises(ValueError, match="URL"):
        format_links({"next": "/\ud800"})


def test_many_links() -> None:
    links = {f"r{i}": f"/{i}" for i in range(100_000)}
    value = format_links(links)
    assert value.count(", ") == 99_999
    assert value.endswith('</99999>; rel="r99999"')

import pytest

from simples.http.cache import cache_control


def test_public_max_age() -> None:
    assert cache_control({"type": "public", "max_age": 60}) == "public, max-age=60"


def test_default_type_is_private() -> None:
    assert cache_control({}) == "private"
    assert cache_control({"max_age": 0}) == "private, max-age=0"
    assert cache_control({"type": None, "max_age": 5}) == "private, max-age=5"


def test_no_store_alone() -> None:
    assert cache_control({"no_store": True}) == "private, no-store"


def test_full_order() -> None:
    config = {
        "stale_if_error": 6,
        "stale_while_revalidate": 5,
        "immutable": True,
        "must_revalidate": True,
        "s_max_age": 4,
        "max_age": 3,
        "no_store": True,
        "no_cache": True,
        "type": "public",
    }
    assert cache_control(config) == (
        "public, no-cache, no-store, max-age=3, s-maxage=4, must-revalidate, immutable, "
        "stale-while-revalidate=5, stale-if-error=6"
    )


def test_false_flags_are_left_out() -> None:
    assert cache_control({"no_cache": False, "immutable": False, "max_age": 10}) == (
        "private, max-age=10"
    )


def test_none_values_are_left_out() -> None:
    assert cache_control({"max_age": None, "no_cache": None}) == "private"


def test_immutable_asset() -> None:
    assert cache_control({"type": "public", "max_age": 31536000, "immutable": True}) == (
        "public, max-age=31536000, immutable"
    )


@pytest.mark.parametrize("kind", ["shared", "Public", "", 1, True, "public, max-age=1"])
def test_invalid_type(kind: object) -> None:
    with pytest.raises(ValueError, match="type"):
        cache_control({"type": kind})


@pytest.mark.parametrize(
    "key", ["max_age", "s_max_age", "stale_while_revalidate", "stale_if_error"]
)
@pytest.mark.parametrize("bad", [-1, True, False, 1.5, "60", [60]])
def test_invalid_seconds(key: str, bad: object) -> None:
    with pytest.raises(ValueError, match=key):
        cache_control({key: bad})


@pytest.mark.parametrize("key", ["no_cache", "no_store", "must_revalidate", "immutable"])
@pytest.mark.parametrize("bad", [1, 0, "yes", "true"])
def test_invalid_flags(key: str, bad: object) -> None:
    with pytest.raises(ValueError, match=key):
        cache_control({key: bad})


@pytest.mark.parametrize("key", ["maxage", "max-age", "private", "public", "no-cache", ""])
def test_unknown_keys(key: str) -> None:
    with pytest.raises(ValueError, match="unknown"):
        cache_control({key: 1})


def test_zero_seconds_allowed() -> None:
    assert cache_control({"s_max_age": 0, "stale_if_error": 0}) == (
        "private, s-maxage=0, stale-if-error=0"
    )

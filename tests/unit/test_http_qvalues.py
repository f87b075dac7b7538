import pytest

from simples.http.qvalues import accept_languages, choose_encoding, parse_qlist

# --- parse_qlist -----------------------------------------------------------------


def test_parse_default_quality_is_one() -> None:
    assert parse_qlist("gzip, br") == [("gzip", 1.0), ("br", 1.0)]


def test_parse_sorts_by_quality() -> None:
    assert parse_qlist("a;q=0.1, b;q=0.9, c") == [("c", 1.0), ("b", 0.9), ("a", 0.1)]


def test_parse_is_stable_for_ties() -> None:
    header = "z;q=0.5, y, x;q=0.5, w, v;q=0.5"
    assert [item for item, _ in parse_qlist(header)] == ["y", "w", "z", "x", "v"]


def test_parse_keeps_zero_quality() -> None:
    assert parse_qlist("gzip;q=0, br") == [("br", 1.0), ("gzip", 0.0)]


@pytest.mark.parametrize(
    "header",
    ["en;q=0.5", "en; q=0.5", "en ;q=0.5", "en; q =0.5", "en;q= 0.5", " en ; q = 0.5 ", "en;Q=0.5"],
)
def test_parse_tolerates_spaces_and_case(header: str) -> None:
    assert parse_qlist(header) == [("en", 0.5)]


@pytest.mark.parametrize(
    ("header", "quality"),
    [
        ("a;q=1", 1.0),
        ("a;q=1.000", 1.0),
        ("a;q=0.001", 0.001),
        ("a;q=.5", 0.5),
        ("a;q=0.", 0.0),
        ("a;q=1.5", 1.0),
        ("a;q=7", 1.0),
        ("a;q=-1", 0.0),
        ("a;q=+0.3", 0.3),
    ],
)
def test_parse_quality_values_and_clamping(header: str, quality: float) -> None:
    assert parse_qlist(header) == [("a", quality)]


@pytest.mark.parametrize(
    "bad_q",
    ["", "abc", "0.5x", "nan", "inf", "1e0", "٠.٥", "１", "0x1", "--1", ".", "0..5"],
)
def test_parse_invalid_quality_skips_item(bad_q: str) -> None:
    assert parse_qlist(f"bad;q={bad_q}, good") == [("good", 1.0)]


def test_parse_skips_empty_items() -> None:
    assert parse_qlist(" , ,gzip,, ;q=0.5 ,") == [("gzip", 1.0)]
    assert parse_qlist("") == []
    assert parse_qlist(",,,") == []


def test_parse_keeps_case() -> None:
    assert parse_qlist("en-US, FR") == [("en-US", 1.0), ("FR", 1.0)]


def test_parse_keeps_parameters_before_q() -> None:
    assert parse_qlist("text/html; level=1; q=0.5, text/plain; format=flowed") == [
        ("text/plain;format=flowed", 1.0),
        ("text/html;level=1", 0.5),
    ]


def test_parse_drops_accept_extensions_after_q() -> None:
    assert parse_qlist("text/html;q=0.5;ext=1") == [("text/html", 0.5)]


def test_parse_first_q_counts() -> None:
    assert parse_qlist("a;q=0.2;q=0.9") == [("a", 0.2)]


def test_parse_considers_only_100_items() -> None:
    header = ", ".join(f"i{n}" for n in range(150))
    result = parse_qlist(header)
    assert len(result) == 100
    assert result[-1] == ("i99", 1.0)


def test_parse_item_101_does_not_leak_in_even_with_higher_quality() -> None:
    header = ", ".join(["a;q=0.1"] * 100 + ["winner;q=1"])
    assert ("winner", 1.0) not in parse_qlist(header)


def test_parse_huge_header_linear() -> None:
    header = "x;q=0.5, " * 100_000
    result = parse_qlist(header)
    assert len(result) == 100
    assert all(item == ("x", 0.5) for item in result)


def test_parse_huge_single_item() -> None:
    header = "a" * 100_000 + ";q=0.5"
    assert parse_qlist(header) == [("a" * 100_000, 0.5)]


def test_parse_huge_parameter_list() -> None:
    header = "a" + ";p=1" * 100_000 + ";q=0.25"
    result = parse_qlist(header)
    assert len(result) == 1
    assert result[0][1] == 0.25


# --- accept_languages ------------------------------------------------------------


def test_languages_by_quality() -> None:
    assert accept_languages("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5") == [
        "fr-CH",
        "fr",
        "en",
        "de",
        "*",
    ]


def test_languages_drop_refused() -> None:
    assert accept_languages("en;q=0, de, fr;q=0.0") == ["de"]


def test_languages_stable_and_case_kept() -> None:
    assert accept_languages("pt-BR;q=0.5, EN-gb, es;q=0.5") == ["EN-gb", "pt-BR", "es"]


def test_languages_spaces() -> None:
    assert accept_languages("en; q=0.5, de ; q=0.8") == ["de", "en"]


def test_languages_empty() -> None:
    assert accept_languages("") == []


# --- choose_encoding -------------------------------------------------------------

ALL = ["br", "zstd", "gzip", "deflate"]


@pytest.mark.parametrize("header", [None, "", "  "])
def test_choose_no_header_is_identity(header: str | None) -> None:
    assert choose_encoding(header, ALL) == "identity"


def test_choose_first_available_on_tie() -> None:
    assert choose_encoding("gzip, deflate, br, zstd", ALL) == "br"


def test_choose_preferred_breaks_ties() -> None:
    assert choose_encoding("gzip, deflate, br, zstd", ALL, preferred="gzip") == "gzip"
    assert choose_encoding("gzip, deflate, br, zstd", ALL, preferred="ZSTD") == "zstd"


def test_choose_client_quality_beats_preferred() -> None:
    assert choose_encoding("gzip;q=1, br;q=0.5", ALL, preferred="br") == "gzip"


def test_choose_preferred_not_offered_by_client_is_ignored() -> None:
    assert choose_encoding("gzip, deflate", ALL, preferred="br") == "gzip"


def test_choose_preferred_not_available_is_ignored() -> None:
    assert choose_encoding("gzip, br", ["gzip", "br"], preferred="zstd") == "gzip"


def test_choose_highest_quality() -> None:
    assert choose_encoding("br;q=0.5, gzip;q=0.8, deflate;q=0.1", ALL) == "gzip"


def test_choose_honours_refusal() -> None:
    assert choose_encoding("br;q=0, gzip", ALL) == "gzip"


def test_choose_star_covers_unlisted() -> None:
    assert choose_encoding("*", ALL) == "br"
    assert choose_encoding("*", ALL, preferred="gzip") == "gzip"


def test_choose_explicit_beats_star() -> None:
    assert choose_encoding("br;q=0, *;q=0.5", ALL) == "zstd"
    assert choose_encoding("gzip;q=0.9, *;q=0.5", ALL) == "gzip"


def test_choose_star_zero_refuses_unlisted() -> None:
    assert choose_encoding("gzip;q=0.5, *;q=0", ALL) == "gzip"


def test_choose_unsupported_only_is_identity() -> None:
    assert choose_encoding("compress, sdch", ALL) == "identity"


def test_choose_explicit_identity_only() -> None:
    assert choose_encoding("identity", ALL) == "identity"


def test_choose_identity_refused_and_nothing_available_is_none() -> None:
    assert choose_encoding("identity;q=0", ALL) is None
    assert choose_encoding("compress, identity;q=0", ALL) is None


def test_choose_star_zero_refuses_identity() -> None:
    assert choose_encoding("*;q=0", ALL) is None


def test_choose_star_zero_with_explicit_identity() -> None:
    assert choose_encoding("*;q=0, identity", ALL) == "identity"
    assert choose_encoding("*;q=0, identity;q=0.5", ALL) == "identity"


def test_choose_all_refused_but_identity_implicit() -> None:
    assert choose_encoding("br;q=0, gzip;q=0, zstd;q=0, deflate;q=0", ALL) == "identity"


def test_choose_identity_rated_above_every_coding() -> None:
    assert choose_encoding("gzip;q=0.5, identity;q=1", ALL) == "identity"
    assert choose_encoding("gzip;q=0.5, *;q=0.8", ["gzip"]) == "identity"


def test_choose_coding_equal_to_identity_wins() -> None:
    assert choose_encoding("gzip, identity", ALL) == "gzip"


def test_choose_x_gzip_is_gzip() -> None:
    assert choose_encoding("x-gzip", ALL) == "gzip"
    assert choose_encoding("x-gzip;q=0, br", ["gzip"]) == "identity"


def test_choose_case_insensitive() -> None:
    assert choose_encoding("GZIP, Br;Q=0.5", ALL) == "gzip"


def test_choose_returns_available_spelling() -> None:
    assert choose_encoding("gzip", ["GZip"]) == "GZip"


def test_choose_empty_available() -> None:
    assert choose_encoding("gzip, br", []) == "identity"
    assert choose_encoding("gzip, identity;q=0", []) is None


def test_choose_duplicate_keeps_best_quality() -> None:
    assert choose_encoding("gzip;q=0.1, br;q=0.5, gzip;q=0.9", ALL) == "gzip"


def test_choose_invalid_quality_item_ignored() -> None:
    assert choose_encoding("br;q=high, gzip", ALL) == "gzip"


def test_choose_hostile_header() -> None:
    header = "gzip;q=0.1, " * 100_000 + "br"
    assert choose_encoding(header, ALL) == "gzip"

"""GSM-7 / UCS-2 detection and part counting, against GSM 03.38 (3GPP TS 23.038)."""

from __future__ import annotations

import pytest

from convo.sms.segments import (
    GSM_BASIC,
    GSM_EXTENSION,
    analyze,
    counted_differently,
    encoding_of,
    non_gsm_chars,
    split,
)

# Written from the GSM 03.38 default alphabet table, not from the code under test.
# Latin letters with diacritics used in Dutch, French and German, upper and lower case.
GSM_LETTERS = "éèùìòÇØøÅåÆæßÉÄÖÑÜäöñüà"
NON_GSM_LETTERS = (
    "êëâçîïôûÿœáíóú"  # lower case: only é è ù ì ò à ä ö ü among the accented ones are GSM
    "ÀÂÈÊËÎÏÔŒÙÛŸÁÍÓÚ"  # capitals: only Ç É Ä Ö Ü (and Ñ Ø Å Æ) are GSM
    "ĳĲẞ"  # Dutch ij ligature, German capital sharp s
)


def test_tables_have_the_standard_size() -> None:
    assert len(GSM_BASIC) == 127  # 128 codes, one of them ESC
    assert len(GSM_EXTENSION) == 10


@pytest.mark.parametrize("char", GSM_LETTERS)
def test_letter_is_gsm(char: str) -> None:
    assert encoding_of(char) == "GSM-7"
    assert analyze(char).units == 1


@pytest.mark.parametrize("char", NON_GSM_LETTERS)
def test_letter_forces_ucs2(char: str) -> None:
    assert encoding_of(f"Bonjour {char}") == "UCS-2"
    assert non_gsm_chars(f"Bonjour {char}") == [char]


def test_every_plain_letter_and_digit_is_gsm() -> None:
    text = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    assert analyze(text).encoding == "GSM-7"
    assert analyze(text).units == len(text)


def test_french_sentence_with_e_circumflex_is_ucs2() -> None:
    assert non_gsm_chars("Ça va? Vous êtes prêt, ça ê!") == ["ê", "ç"]
    assert encoding_of("Ça va? Très bien, à bientôt") == "UCS-2"  # ô
    assert encoding_of("Ça va? Très bien, à demain") == "GSM-7"


@pytest.mark.parametrize(
    ("length", "parts", "remaining"),
    [(0, 1, 160), (1, 1, 159), (160, 1, 0), (161, 2, 145), (306, 2, 0), (307, 3, 152)],
)
def test_gsm_boundaries(length: int, parts: int, remaining: int) -> None:
    info = analyze("a" * length)
    assert (info.encoding, info.units, info.parts, info.remaining) == (
        "GSM-7",
        length,
        parts,
        remaining,
    )
    assert info.per_part == (160 if parts == 1 else 153)
    assert len(split("a" * length)) == parts


@pytest.mark.parametrize(
    ("length", "parts", "remaining"), [(70, 1, 0), (71, 2, 63), (134, 2, 0), (135, 3, 66)]
)
def test_ucs2_boundaries(length: int, parts: int, remaining: int) -> None:
    info = analyze("ê" * length)
    assert (info.encoding, info.units, info.parts, info.remaining) == (
        "UCS-2",
        length,
        parts,
        remaining,
    )
    assert info.per_part == (70 if parts == 1 else 67)


def test_extension_chars_count_two_septets() -> None:
    info = analyze("€[]{}|^~\\\x0c")
    assert (info.encoding, info.characters, info.units) == ("GSM-7", 10, 20)
    assert analyze("a" * 158 + "€").parts == 1  # 160 septets
    assert analyze("a" * 159 + "€").parts == 2  # 161 septets


def test_extension_char_is_never_split_across_parts() -> None:
    text = "a" * 152 + "€" + "a" * 152  # 306 septets, but € cannot straddle 153
    parts = split(text)
    assert parts == ["a" * 152, "€" + "a" * 151, "a"]
    info = analyze(text)
    assert (info.units, info.parts, info.remaining) == (306, 3, 3 * 153 - 306)


def test_emoji_counts_two_utf16_units() -> None:
    info = analyze("😀")
    assert (info.encoding, info.characters, info.units) == ("UCS-2", 1, 2)
    assert analyze("😀" * 35).parts == 1
    assert analyze("😀" * 36).parts == 2


def test_surrogate_pair_is_never_split() -> None:
    text = "ê" * 66 + "😀" + "ê" * 3  # 71 units; the emoji would straddle unit 67
    assert split(text) == ["ê" * 66, "😀" + "ê" * 3]


@pytest.mark.parametrize("text", ["", "hi", "a" * 400, "é€" * 200, "😀ê" * 90, "x€" * 77])
def test_split_parts_rejoin_to_the_text(text: str) -> None:
    parts = split(text)
    assert "".join(parts) == text
    assert len(parts) == analyze(text).parts


def test_forced_encoding() -> None:
    assert analyze("hello", "UCS-2").encoding == "UCS-2"
    assert len(split("a" * 71, "UCS-2")) == 2
    with pytest.raises(ValueError, match="GSM-7"):
        split("ê", "GSM-7")


def test_to_json_has_exactly_the_design_keys() -> None:
    assert analyze("a" * 161).to_json() == {
        "encoding": "GSM-7",
        "characters": 161,
        "units": 161,
        "parts": 2,
        "per_part": 153,
        "remaining": 145,
    }


def test_non_gsm_chars_unique_in_order() -> None:
    assert non_gsm_chars("ça ê ça 😀 ê €") == ["ç", "ê", "😀"]
    assert non_gsm_chars("plain [text] €") == []


@pytest.mark.parametrize(
    ("text", "differs"),
    [
        ("plain GSM text {}", True),  # extension characters: 2 septets here, 1 for some
        ("price: 5€", True),
        ("plain GSM text", False),
        ("héllo wörld", False),  # basic-table accents
        ("Привет", False),  # UCS-2 inside the BMP: every count agrees
        ("ok 👍", True),  # a surrogate pair
    ],
)
def test_counted_differently(text: str, differs: bool) -> None:
    assert counted_differently(text) is differs

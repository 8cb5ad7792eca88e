"""Reading answers: every expect kind in nl, en, fr and de, polite extras, DTMF, garbage."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import pytest

from convo.exceptions import FlowRuntimeError
from convo.flow.expect import Answer, match_option, match_words, normalize, parse_answer
from convo.flow.spec import Choice, Expect, ExpectKind, Option, Pos

TODAY = dt.date(2026, 11, 28)  # a Saturday
POS = Pos("flows/test.yaml", 7, 5)
LANGS = ("nl", "en", "fr", "de")


def expect(kind: ExpectKind, **fields: Any) -> Expect:
    return Expect(kind=kind, pos=POS, **fields)


def read(kind: ExpectKind, text: str, lang: str = "nl", **fields: Any) -> Answer:
    return parse_answer(expect(kind, **fields), text, lang, today=TODAY)


def assert_understood(answer: Answer, value: Any) -> None:
    assert answer == Answer(True, value)
    assert type(answer.value) is type(value)
    assert json.loads(json.dumps(answer.value)) == value  # stored as JSON


# -- normalize -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Oui!", "oui"),
        ("  JA  ", "ja"),
        ("Übermorgen", "ubermorgen"),
        ("après-demain", "apres-demain"),
        ("d\u2019accord", "d'accord"),
        ("Straße", "strasse"),
        ("  yes,   please!!! ", "yes, please"),
        ("👍 yes 🎉", "yes"),
        ("14:30", "14:30"),
        ("\uff21\uff22\uff23", "abc"),  # full-width letters
        ("", ""),
        ("👍🎉", ""),
    ],
)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


# -- yes / no --------------------------------------------------------------------------

YES_NO = [
    # (contact language, reply, value)
    ("en", "yes", True), ("en", "Y", True), ("en", "yeah", True), ("en", "yep", True),
    ("en", "sure", True), ("en", "OK", True), ("en", "no", False), ("en", "n", False),
    ("en", "nope", False), ("en", "Yes!", True), ("en", "yes please", True),
    ("en", "no thanks", False), ("en", "of course", True), ("en", "of course not", False),
    ("en", "no problem", True), ("en", "not really", False),
    ("nl", "ja", True), ("nl", "J", True), ("nl", "jawel", True), ("nl", "ok", True),
    ("nl", "nee", False), ("nl", "N", False), ("nl", "neen", False), ("nl", " JA ", True),
    ("nl", "ja graag", True), ("nl", "Ja hoor!", True), ("nl", "nee, bedankt", False),
    ("nl", "ja ja", True), ("nl", "zeker niet", False),
    ("fr", "oui", True), ("fr", "o", True), ("fr", "ouais", True), ("fr", "d'accord", True),
    ("fr", "D\u2019accord", True), ("fr", "non", False), ("fr", "n", False),
    ("fr", "oui merci", True), ("fr", "Non merci.", False), ("fr", "oui s'il vous plaît", True),
    ("fr", "pas du tout", False),
    ("de", "ja", True), ("de", "j", True), ("de", "jawohl", True), ("de", "ok", True),
    ("de", "nein", False), ("de", "N", False), ("de", "nein danke", False),
    ("de", "ja bitte", True), ("de", "Ja, gerne!", True), ("de", "auf keinen Fall", False),
    # any language, whatever the contact's: people answer "yes" to a Dutch bot
    ("nl", "yes", True), ("nl", "oui", True), ("fr", "ja", True), ("de", "no", False),
    ("en", "nee", False), ("fr", "nein", False), ("de", "oui", True), ("en", "ja graag", True),
    ("xx", "yes", True), ("fr-BE", "non", False),
]  # fmt: skip


@pytest.mark.parametrize(("lang", "text", "value"), YES_NO)
def test_yes_no(lang: str, text: str, value: bool) -> None:
    assert_understood(read("yes_no", text, lang), value)


@pytest.mark.parametrize(
    "text",
    ["ja nee", "yes no", "yes but not on monday", "maybe", "misschien", "peut-être", "vielleicht",
     "not sure", "yesterday", "1", "2", "да", "はい", "ja да"],
)  # fmt: skip
@pytest.mark.parametrize("lang", LANGS)
def test_yes_no_not_understood(text: str, lang: str) -> None:
    assert read("yes_no", text, lang) == Answer(False)


@pytest.mark.parametrize(("digits", "value"), [("1", True), ("2", False), ("1#", True)])
def test_yes_no_dtmf_on_a_call(digits: str, value: bool) -> None:
    answer = parse_answer(expect("yes_no"), digits, "nl", channel="voice")
    assert_understood(answer, value)
    # the same keys on SMS mean nothing: "1" is not a yes there
    assert parse_answer(expect("yes_no"), digits, "nl", channel="sms") == Answer(False)


def test_yes_no_on_a_call_understands_speech_and_not_other_keys() -> None:
    assert parse_answer(expect("yes_no"), "Ja.", "nl", channel="voice") == Answer(True, True)
    assert parse_answer(expect("yes_no"), "3", "nl", channel="voice") == Answer(False)


# -- numbers ---------------------------------------------------------------------------

NUMBERS = [
    ("en", "0", 0), ("en", "42", 42), ("en", " 7 ", 7), ("en", "zero", 0), ("en", "one", 1),
    ("en", "Twelve", 12), ("en", "twenty", 20), ("en", "twenty-one", 21),
    ("en", "twenty one", 21), ("en", "ninety-nine", 99), ("en", "a hundred", 100),
    ("en", "one hundred", 100), ("en", "3.5", 3.5), ("en", "1,000", 1000),
    ("en", "1.000", 1.0), ("en", "5 please", 5),
    ("nl", "nul", 0), ("nl", "een", 1), ("nl", "één", 1), ("nl", "elf", 11),
    ("nl", "twintig", 20), ("nl", "eenentwintig", 21), ("nl", "tweeëntwintig", 22),
    ("nl", "zevenenveertig", 47), ("nl", "negenennegentig", 99), ("nl", "honderd", 100),
    ("nl", "3,5", 3.5), ("nl", "3.5", 3.5), ("nl", "1.000", 1000), ("nl", "1,000", 1.0),
    ("nl", "1.234,5", 1234.5),
    ("fr", "zéro", 0), ("fr", "un", 1), ("fr", "une", 1), ("fr", "seize", 16),
    ("fr", "dix-sept", 17), ("fr", "vingt et un", 21), ("fr", "vingt-et-un", 21),
    ("fr", "vingt-deux", 22), ("fr", "soixante-dix", 70), ("fr", "soixante et onze", 71),
    ("fr", "quatre-vingts", 80), ("fr", "quatre-vingt-un", 81), ("fr", "quatre-vingt-dix", 90),
    ("fr", "quatre-vingt-dix-neuf", 99), ("fr", "septante", 70), ("fr", "nonante-cinq", 95),
    ("fr", "cent", 100), ("fr", "3,5", 3.5), ("fr", "1 000", 1000),
    ("de", "null", 0), ("de", "eins", 1), ("de", "ein", 1), ("de", "zwölf", 12),
    ("de", "zwanzig", 20), ("de", "einundzwanzig", 21), ("de", "dreißig", 30),
    ("de", "siebenundvierzig", 47), ("de", "fünfundfünfzig", 55), ("de", "neunundneunzig", 99),
    ("de", "hundert", 100), ("de", "3,5", 3.5), ("de", "1.000", 1000),
    # words of another language than the contact's
    ("nl", "three", 3), ("en", "drie", 3), ("de", "vingt", 20), ("fr", "zwanzig", 20),
]  # fmt: skip


@pytest.mark.parametrize(("lang", "text", "value"), NUMBERS)
def test_number(lang: str, text: str, value: float) -> None:
    assert_understood(read("number", text, lang), value)


@pytest.mark.parametrize(
    ("text", "ok"),
    [("1", True), ("10", True), ("tien", True), ("0", False), ("11", False), ("elf", False),
     ("-3", False), ("10.5", False), ("5,5", True)],
)  # fmt: skip
def test_number_honours_min_and_max(text: str, ok: bool) -> None:
    assert read("number", text, "nl", min=1, max=10).ok is ok


def test_number_keeps_its_sign() -> None:
    assert_understood(read("number", "-3", "en"), -3)
    assert_understood(read("number", "\u22123,5", "nl"), -3.5)


@pytest.mark.parametrize("text", ["1.000.5", "3 apples", "twentyfive hundred", "1/2", "one two"])
def test_number_not_understood(text: str) -> None:
    assert read("number", text, "en") == Answer(False)


# -- digits ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fields", "value"),
    [("1234", {}, "1234"), ("12 34", {}, "1234"), ("12-34", {}, "1234"), ("0470 12 34 56", {},
     "0470123456"), ("1234#", {}, "1234"), ("0042", {"digits": 4}, "0042")],
)  # fmt: skip
def test_digits(text: str, fields: dict[str, Any], value: str) -> None:
    assert_understood(read("digits", text, **fields), value)


@pytest.mark.parametrize(
    ("text", "fields"),
    [("123", {"digits": 4}), ("12345", {"digits": 4}), ("12a4", {}), ("twelve", {}),
     ("١٢٣٤", {})],
)  # fmt: skip
def test_digits_not_understood(text: str, fields: dict[str, Any]) -> None:
    assert read("digits", text, **fields) == Answer(False)


# -- dates (today is Saturday 2026-11-28) ----------------------------------------------

DATES = [
    ("en", "2026-12-01", "2026-12-01"), ("nl", "1-12-2026", "2026-12-01"),
    ("fr", "1/12/2026", "2026-12-01"), ("de", "1.12.2026", "2026-12-01"),
    ("nl", "1/12/26", "2026-12-01"), ("nl", "1/12", "2026-12-01"), ("de", "1.12.", "2026-12-01"),
    ("nl", "28/11", "2026-11-28"), ("nl", "27/11", "2027-11-27"),
    ("nl", "1 december", "2026-12-01"), ("nl", "1 dec", "2026-12-01"),
    ("nl", "1 maart", "2027-03-01"), ("nl", "3 mrt 2027", "2027-03-03"),
    ("nl", "op 1 december 2026", "2026-12-01"), ("nl", "maandag 30 november", "2026-11-30"),
    ("fr", "1er décembre", "2026-12-01"), ("fr", "le 1er décembre 2026", "2026-12-01"),
    ("fr", "2 févr.", "2027-02-02"), ("fr", "15 août", "2027-08-15"),
    ("fr", "mardi 1er décembre 2026", "2026-12-01"),
    ("de", "1. Dezember", "2026-12-01"), ("de", "am 1. Dezember 2026", "2026-12-01"),
    ("de", "3. März", "2027-03-03"), ("de", "3. Maerz", "2027-03-03"),
    ("de", "Dienstag, 1. Dezember 2026", "2026-12-01"),
    ("en", "december 1", "2026-12-01"), ("en", "December 1st, 2026", "2026-12-01"),
    ("en", "1 Dec. 2026", "2026-12-01"), ("en", "the 1st of December", "2026-12-01"),
    ("en", "12/25/2026", "2026-12-25"),
    ("en", "today", "2026-11-28"), ("nl", "vandaag", "2026-11-28"),
    ("fr", "aujourd'hui", "2026-11-28"), ("de", "heute", "2026-11-28"),
    ("en", "tomorrow", "2026-11-29"), ("nl", "morgen", "2026-11-29"),
    ("fr", "demain", "2026-11-29"), ("de", "Morgen", "2026-11-29"),
    ("en", "day after tomorrow", "2026-11-30"), ("nl", "overmorgen", "2026-11-30"),
    ("fr", "après-demain", "2026-11-30"), ("fr", "apres demain", "2026-11-30"),
    ("de", "übermorgen", "2026-11-30"), ("de", "Übermorgen bitte", "2026-11-30"),
    ("en", "monday", "2026-11-30"), ("en", "next monday", "2026-11-30"),
    ("en", "on Monday", "2026-11-30"), ("nl", "volgende maandag", "2026-11-30"),
    ("nl", "komende maandag", "2026-11-30"), ("nl", "maandag graag", "2026-11-30"),
    ("fr", "lundi prochain", "2026-11-30"), ("de", "nächsten Montag", "2026-11-30"),
    ("en", "saturday", "2026-12-05"), ("nl", "zaterdag", "2026-12-05"),  # never today
    ("nl", "zondag", "2026-11-29"), ("fr", "mercredi", "2026-12-02"),
    ("de", "Freitag", "2026-12-04"), ("en", "Fri", "2026-12-04"),
    ("nl", "in 3 dagen", "2026-12-01"), ("en", "in two weeks", "2026-12-12"),
    ("fr", "dans une semaine", "2026-12-05"), ("de", "in drei Tagen", "2026-12-01"),
    ("nl", "29/2", "2028-02-29"),
    # other language than the contact's
    ("nl", "tomorrow", "2026-11-29"), ("en", "overmorgen", "2026-11-30"),
    ("fr", "1. Dezember", "2026-12-01"), ("de", "1er décembre", "2026-12-01"),
]  # fmt: skip


@pytest.mark.parametrize(("lang", "text", "value"), DATES)
def test_date(lang: str, text: str, value: str) -> None:
    assert_understood(read("date", text, lang), value)


@pytest.mark.parametrize(
    ("lang", "text"),
    [("nl", "31 februari"), ("en", "31/2"), ("en", "2026-02-31"), ("de", "30. Februar 2026"),
     ("nl", "32/1"), ("nl", "1/13/2026"), ("nl", "zondag 30 november"),  # 30 Nov is a Monday
     ("en", "december"), ("en", "next week"), ("nl", "1 smurf"), ("en", "1/12/1850")],
)  # fmt: skip
def test_date_not_understood(lang: str, text: str) -> None:
    assert read("date", text, lang) == Answer(False)


@pytest.mark.parametrize(
    ("text", "lang", "value"),
    [("di", "nl", "2026-12-01"), ("di", "de", "2026-12-01"), ("do", "nl", "2026-12-03"),
     ("mar", "fr", "2026-12-01"), ("di", "en", None), ("do", "en", None), ("mar", "en", None)],
)  # fmt: skip
def test_weekday_abbreviations_only_in_the_contacts_language(
    text: str, lang: str, value: str | None
) -> None:
    answer = read("date", text, lang)
    assert answer == (Answer(True, value) if value else Answer(False))


def test_date_defaults_to_the_servers_today() -> None:
    answer = parse_answer(expect("date"), "vandaag", "nl")
    assert answer == Answer(True, dt.date.today().isoformat())


# -- times -----------------------------------------------------------------------------

TIMES = [
    ("nl", "14:30", "14:30"), ("nl", "14.30", "14:30"), ("nl", "14u30", "14:30"),
    ("fr", "14h30", "14:30"), ("fr", "14h", "14:00"), ("fr", "14 h 30", "14:30"),
    ("nl", "14 uur", "14:00"), ("nl", "om 14.30 uur", "14:30"), ("de", "14 Uhr", "14:00"),
    ("de", "um 14:30 Uhr", "14:30"), ("en", "2pm", "14:00"), ("en", "2:30 pm", "14:30"),
    ("en", "2 p.m.", "14:00"), ("en", "at 9am", "09:00"), ("en", "12am", "00:00"),
    ("en", "12 pm", "12:00"), ("en", "9:05", "09:05"), ("en", "14:30:00", "14:30"),
    ("en", "noon", "12:00"), ("fr", "midi", "12:00"), ("nl", "middag", "12:00"),
    ("de", "Mittag", "12:00"), ("en", "midnight", "00:00"), ("fr", "minuit", "00:00"),
    ("en", "two pm", "14:00"), ("fr", "quatorze heures", "14:00"),
    ("nl", "3 uur 's middags", "15:00"), ("fr", "à 14h", "14:00"), ("en", "3pm please", "15:00"),
    ("fr", "8h du soir", "20:00"),
]  # fmt: skip


@pytest.mark.parametrize(("lang", "text", "value"), TIMES)
def test_time(lang: str, text: str, value: str) -> None:
    assert_understood(read("time", text, lang), value)


@pytest.mark.parametrize("text", ["14", "25:00", "14:60", "14 pm", "0am", "half drie", "soon"])
def test_time_not_understood(text: str) -> None:
    assert read("time", text, "nl") == Answer(False)


# -- choice ----------------------------------------------------------------------------

COLOURS = (
    Choice("red", {"en": ("red",), "nl": ("rood",), "fr": ("rouge",), "de": ("rot",)}),
    Choice("blue", {"en": ("blue",), "nl": ("blauw",), "fr": ("bleu",), "de": ("blau",)}),
)


@pytest.mark.parametrize(
    ("lang", "text", "value"),
    [("nl", "rood", "red"), ("nl", "Rood!", "red"), ("nl", "red", "red"), ("en", "blue", "blue"),
     ("fr", "bleu merci", "blue"), ("de", "Blau", "blue"), ("en", "rouge", "red"),
     ("de", "RED please", "red")],
)  # fmt: skip
def test_choice(lang: str, text: str, value: str) -> None:
    assert_understood(read("choice", text, lang, choices=COLOURS), value)


def test_choice_prefers_the_contacts_language_when_a_word_is_ambiguous() -> None:
    # the same word selects different choices in two languages: the contact's wins
    choices = (Choice("a", {"nl": ("pin",)}), Choice("b", {"en": ("pin",)}))
    assert read("choice", "pin", "nl", choices=choices) == Answer(True, "a")
    assert read("choice", "pin", "en", choices=choices) == Answer(True, "b")


@pytest.mark.parametrize("text", ["purple", "red or blue", "reddish"])
def test_choice_not_understood(text: str) -> None:
    assert read("choice", text, "en", choices=COLOURS) == Answer(False)


# -- email, text, regex ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [("An@Example.be", "an@example.be"), ("it's an.peeters@example.co.uk, thanks",
     "an.peeters@example.co.uk"), ("<an@example.be>", "an@example.be"),
     ("mailto:an+bot@example.be", "an+bot@example.be")],
)  # fmt: skip
def test_email(text: str, value: str) -> None:
    assert_understood(read("email", text), value)


@pytest.mark.parametrize(
    "text", ["an@example", "an@@example.be", "an example.be", "a@b.be or c@d.be", "@example.be"]
)
def test_email_not_understood(text: str) -> None:
    assert read("email", text) == Answer(False)


def test_text() -> None:
    assert_understood(read("text", "  Tuesday is fine, after 3  "), "Tuesday is fine, after 3")
    assert_understood(read("text", "x" * 2000), "x" * 2000)
    assert read("text", "  \n ") == Answer(False)


def test_regex_fullmatch_on_stripped_text() -> None:
    plate = {"pattern": r"[A-Z]{2}\d{4}"}
    assert_understood(read("regex", " AB1234 ", **plate), "AB1234")
    assert read("regex", "AB12345", **plate) == Answer(False)
    assert read("regex", "ab1234", **plate) == Answer(False)


@pytest.mark.parametrize("pattern", [None, "[unclosed"])
def test_regex_without_a_valid_pattern_is_a_flow_error(pattern: str | None) -> None:
    with pytest.raises(FlowRuntimeError, match=r"flows/test\.yaml:7:5"):
        read("regex", "x", pattern=pattern)


# -- garbage never raises --------------------------------------------------------------

GARBAGE = ["", "   ", "x" * 2000, "👍🎉", "да", "はい", "ja да 是", "\x00\x01", "\u200b", "?!?!"]


@pytest.mark.parametrize("text", GARBAGE)
@pytest.mark.parametrize("kind", ["yes_no", "number", "digits", "date", "time", "choice", "email"])
@pytest.mark.parametrize("channel", ["sms", "voice"])
def test_garbage_is_simply_not_understood(kind: ExpectKind, text: str, channel: str) -> None:
    for lang in (*LANGS, "ja", ""):
        answer = parse_answer(
            expect(kind, choices=COLOURS), text, lang, channel=channel, today=TODAY
        )
        assert answer == Answer(False)


def test_a_long_message_containing_an_answer_is_not_that_answer() -> None:
    assert read("yes_no", "ja " + "x" * 400) == Answer(False)
    assert not match_words("stop " * 100, ["stop"])


def test_parsing_is_fast() -> None:
    # "a few microseconds" each; the bound is loose on purpose so a busy CI never flakes.
    cases: list[tuple[ExpectKind, str]] = [
        ("yes_no", "ja graag"),
        ("number", "eenentwintig"),
        ("date", "volgende maandag"),
        ("time", "14u30"),
        ("digits", "1234"),
    ]
    started = time.perf_counter()
    for _ in range(1000):
        for kind, text in cases:
            parse_answer(expect(kind), text, "nl", today=TODAY)
    assert time.perf_counter() - started < 1.0


# -- keywords and menus ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "matched"),
    [("STOP", True), ("Stop.", True), (" stop ", True), ("STOP!!!", True), ("stop please", True),
     ("Stop, merci", True), ("afmelden", True), ("Afmelden", True), ("stopwatch", False),
     ("don't stop", False), ("stop stop", False), ("", False), ("👍🎉", False),
     ("x" * 2000, False)],
)  # fmt: skip
def test_match_words(text: str, matched: bool) -> None:
    assert match_words(text, ["STOP", "AFMELDEN"]) is matched


HOURS = Option(POS, key="1", words={"en": ("hours", "opening hours"), "nl": ("uren",)})
PERSON = Option(POS, key="2", words={"nl": ("medewerker",), "en": ("person",)})
AGAIN = Option(POS, key="*", words={})
DUTCH = Option(POS, words={"nl": ("nederlands",), "fr": ("neerlandais",)}, set_lang="nl")
MENU = (HOURS, PERSON, AGAIN, DUTCH)


@pytest.mark.parametrize(
    ("text", "channel", "option"),
    [("1", "sms", HOURS), ("1.", "sms", HOURS), (" 2 ", "sms", PERSON), ("uren", "sms", HOURS),
     ("Opening hours please", "sms", HOURS), ("Medewerker!", "sms", PERSON), ("een", "sms", HOURS),
     ("two", "sms", PERSON), ("1", "voice", HOURS), ("*", "voice", AGAIN),
     ("Nederlands", "voice", DUTCH), ("Néerlandais", "sms", DUTCH), ("3", "sms", None),
     ("", "voice", None), ("hours and a person", "sms", None), ("x" * 2000, "sms", None)],
)  # fmt: skip
def test_match_option(text: str, channel: str, option: Option | None) -> None:
    assert match_option(MENU, text, "nl", channel=channel) is option


def test_match_option_prefers_the_contacts_language() -> None:
    a = Option(POS, key="1", words={"nl": ("post",)})
    b = Option(POS, key="2", words={"en": ("post",)})
    assert match_option((a, b), "post", "en") is b
    assert match_option((a, b), "post", "nl") is a


def test_words_of_a_flow_language_outside_the_four_are_preferred_too() -> None:
    a = Option(POS, key="1", words={"en": ("si",)})
    b = Option(POS, key="2", words={"es": ("si",)})
    assert match_option((a, b), "Sí", "es-ES") is b
    choices = (Choice("a", {"en": ("si",)}), Choice("b", {"es": ("si",)}))
    assert read("choice", "sí", "es", choices=choices) == Answer(True, "b")


def test_spoken_phrases_pick_the_one_option_they_name() -> None:
    from convo.flow.expect import match_option
    from convo.flow.spec import Option, Pos

    pos = Pos("menu.yaml")
    options = (
        Option(pos, key="1", words={"fr": ("horaires", "heures")}),
        Option(pos, key="2", words={"fr": ("collaborateur",), "en": ("agent",)}),
    )
    assert (
        match_option(options, "les horaires s'il vous plaît", "fr", channel="voice") is options[0]
    )
    assert match_option(options, "un collaborateur", "fr", channel="voice") is options[1]
    # Both named: ambiguous, so nothing; and by SMS a phrase is not a menu reply.
    assert match_option(options, "horaires ou agent", "fr", channel="voice") is None
    assert match_option(options, "les horaires", "fr", channel="sms") is None
    assert match_option(options, "stopwatch", "en", channel="voice") is None

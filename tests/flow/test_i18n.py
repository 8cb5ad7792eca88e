"""Language-aware formatting of dates, times and numbers for templates."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from convo.flow.i18n import format_date, format_number, format_time, locale_for

NO_BREAK_SPACES = ("\u00a0", "\u202f", "\u2009")  # not in GSM-7: would force UCS-2 SMS


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("nl", "1 december 2026"),
        ("fr", "1 décembre 2026"),
        ("de", "1. Dezember 2026"),
        ("en", "1 December 2026"),
        ("nl-BE", "1 december 2026"),
        ("fr_BE", "1 décembre 2026"),
        ("EN", "1 December 2026"),
        ("xx", "1 December 2026"),  # unknown language: English
        ("", "1 December 2026"),
    ],
)
def test_format_date_long(lang: str, expected: str) -> None:
    assert format_date("2026-12-01", lang) == expected
    assert format_date(dt.date(2026, 12, 1), lang) == expected
    assert format_date(dt.datetime(2026, 12, 1, 23, 59), lang) == expected


@pytest.mark.parametrize(
    ("lang", "fmt", "expected"),
    [
        ("nl", "full", "dinsdag 1 december 2026"),
        ("de", "full", "Dienstag, 1. Dezember 2026"),
        ("en", "full", "Tuesday, 1 December 2026"),
        ("nl", "short", "01-12-2026"),
        ("fr", "short", "01/12/2026"),
        ("de", "short", "01.12.26"),
        ("fr", "EEEE d MMMM", "mardi 1 décembre"),
    ],
)
def test_format_date_other_formats(lang: str, fmt: str, expected: str) -> None:
    assert format_date("2026-12-01", lang, fmt) == expected


def test_format_date_accepts_an_iso_datetime_string() -> None:
    assert format_date("2026-12-01T09:30:00", "nl") == "1 december 2026"


@pytest.mark.parametrize("value", ["1/12/2026", "tomorrow", "", "2026-02-31"])
def test_format_date_refuses_what_is_not_iso(value: str) -> None:
    with pytest.raises(ValueError, match="format_date: expected a date YYYY-MM-DD"):
        format_date(value, "nl")


@pytest.mark.parametrize("lang", ["nl", "fr", "de", "en", "zz"])
def test_format_time(lang: str) -> None:
    assert format_time("14:30", lang) == "14:30"
    assert format_time(dt.time(9, 5), lang) == "09:05"
    assert format_time(dt.datetime(2026, 12, 1, 14, 30), lang) == "14:30"
    assert format_time("14:30:59", lang) == "14:30"


def test_format_time_in_a_twelve_hour_locale() -> None:
    assert format_time("14:30", "en-US") == "2:30 PM"


def test_format_time_refuses_what_is_not_iso() -> None:
    with pytest.raises(ValueError, match=r"format_time: expected a time HH:MM, got '2pm'"):
        format_time("2pm", "en")


@pytest.mark.parametrize(
    ("lang", "value", "decimals", "expected"),
    [
        ("nl", 1234.5, None, "1.234,5"),
        ("de", 1234.5, None, "1.234,5"),
        ("fr", 1234.5, None, "1 234,5"),
        ("en", 1234.5, None, "1,234.5"),
        ("nl", 3, None, "3"),
        ("nl", 3.5, 2, "3,50"),
        ("en", 3.5, 2, "3.50"),
        ("fr", 1234567, 0, "1 234 567"),
        ("nl", 2.675, 2, "2,68"),  # half up, not binary-float 2,67
        ("nl", 2.5, 0, "3"),
        ("de", -1234.5, 1, "-1.234,5"),
        ("nl", "3.5", None, "3,5"),
        ("nl", "3,5", None, "3,5"),
        ("en", Decimal("0.10"), 2, "0.10"),
        ("xx", 1234.5, None, "1,234.5"),
    ],
)
def test_format_number(lang: str, value: float | str, decimals: int | None, expected: str) -> None:
    assert format_number(value, lang, decimals) == expected


@pytest.mark.parametrize("value", ["three", "", "nan", "1.2.3"])
def test_format_number_refuses_what_is_not_a_number(value: str) -> None:
    with pytest.raises(ValueError, match="format_number: expected a"):
        format_number(value, "nl")


def test_format_number_refuses_negative_decimals() -> None:
    with pytest.raises(ValueError, match="decimals must be >= 0"):
        format_number(1.5, "nl", -1)


def test_results_stay_in_gsm7_spaces() -> None:
    texts = [format_number(1234567.25, "fr", 2), format_date("2026-12-01", "fr", "full")]
    texts += [format_number(1234567, lang) for lang in ("nl", "fr", "de", "en")]
    assert not any(space in text for text in texts for space in NO_BREAK_SPACES)


def test_locales_are_cached() -> None:
    assert locale_for("nl") is locale_for("nl")
    assert str(locale_for("en")) == "en_GB"
    assert str(locale_for("nl-be")) == "nl_BE"

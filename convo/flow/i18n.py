"""Language-aware formatting for templates: dates, times and numbers the way each language
writes them, with Babel's CLDR data.

``format_date("2026-12-01", "nl")`` -> "1 december 2026"; fr "1 décembre 2026"; de
"1. Dezember 2026"; en "1 December 2026" (English is en_GB: convo's first users are in
Europe, and "1 December" reads right to them). Languages may carry a region ("fr-BE",
"nl_BE"); a language Babel does not know falls back to English rather than failing in the
middle of a conversation.

SMS: CLDR separates digit groups and some date parts with no-break spaces (French
"1 234,5" uses U+202F). Those are not in the GSM-7 alphabet, so one of them would switch a
whole SMS to UCS-2 and halve what fits in a part. Every result here uses plain spaces.
"""

from __future__ import annotations

import datetime as dt
import functools
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from babel import Locale, UnknownLocaleError
from babel import dates as babel_dates
from babel import numbers as babel_numbers

__all__ = ["format_date", "format_number", "format_time", "locale_for"]

# Which CLDR locale a bare language means. Others are used as Babel names them.
_DEFAULT_REGION = {"en": "en_GB"}
_PLAIN_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " "})


@functools.lru_cache(maxsize=64)
def locale_for(lang: str) -> Locale:
    """The Babel locale for ``lang`` ("nl", "fr-BE", "de_AT"); unknown -> en_GB. Cached."""
    language, _, region = lang.replace("-", "_").partition("_")
    tag = f"{language.lower()}_{region.upper()}" if region else language.lower()
    tag = _DEFAULT_REGION.get(tag, tag)
    try:
        return Locale.parse(tag)
    except (UnknownLocaleError, ValueError, TypeError):
        return Locale.parse(_DEFAULT_REGION["en"])


def _as_date(value: str | dt.date) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.datetime.fromisoformat(value.strip()).date()
    except ValueError:
        raise ValueError(f"format_date: expected a date YYYY-MM-DD, got {value!r}") from None


def _as_time(value: str | dt.time | dt.datetime) -> dt.time:
    if isinstance(value, dt.datetime):
        return value.time()
    if isinstance(value, dt.time):
        return value
    try:
        return dt.time.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"format_time: expected a time HH:MM, got {value!r}") from None


def format_date(value: str | dt.date | dt.datetime, lang: str, fmt: str = "long") -> str:
    """A date as ``lang`` writes it.

    ``value``: a date, a datetime (its date part) or an ISO string ("2026-12-01", a full
    ISO datetime also works). ``fmt``: "short", "medium", "long" (default), "full", or a
    CLDR pattern such as "EEEE d MMMM". Raises ValueError for a string that is not ISO.
    """
    text = babel_dates.format_date(_as_date(value), format=fmt, locale=locale_for(lang))
    return text.translate(_PLAIN_SPACES)


def format_time(value: str | dt.time | dt.datetime, lang: str) -> str:
    """A time of day, short form (hours and minutes): "14:30" in nl/fr/de/en.

    ``value``: a time, a datetime (its time) or an ISO string ("14:30", "14:30:00").
    Raises ValueError for a string that is not an ISO time.
    """
    text = babel_dates.format_time(_as_time(value), format="short", locale=locale_for(lang))
    return text.translate(_PLAIN_SPACES)


def format_number(
    value: float | int | str | Decimal, lang: str, decimals: int | None = None
) -> str:
    """A number with ``lang``'s separators: 1234.5 -> "1.234,5" (nl, de), "1 234,5" (fr),
    "1,234.5" (en).

    ``decimals``: exactly that many digits after the separator, rounded half up (2.675 ->
    "2,68"); None keeps the value's own digits (up to CLDR's default of three). ``value``
    may be a numeric string ("3.5"; "3,5" is read as 3.5 too). Raises ValueError for a
    string that is not a number or a negative ``decimals``.
    """
    number = _as_decimal(value)
    locale = locale_for(lang)
    if decimals is None:
        text = babel_numbers.format_decimal(number, locale=locale)
    else:
        if decimals < 0:
            raise ValueError(f"format_number: decimals must be >= 0, got {decimals}")
        number = number.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
        pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
        text = babel_numbers.format_decimal(number, format=pattern, locale=locale)
    return text.translate(_PLAIN_SPACES)


def _as_decimal(value: float | int | str | Decimal) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"format_number: expected a number, got {value!r}")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))  # 2.675 stays 2.675, not 2.67499999...
    text = str(value).strip()
    if isinstance(value, str) and "," in text and "." not in text:
        text = text.replace(",", ".")  # "3,5": a decimal comma (nl/fr/de slot values)
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"format_number: expected a number, got {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"format_number: expected a finite number, got {value!r}")
    return number

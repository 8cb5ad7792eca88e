"""Dates and times of day in replies, in English, Dutch, French and German.

:func:`read_date` understands ISO and day-first numeric dates ("1/12" is 1 December),
day and month names ("maandag 1 december", "Dec 1st"), relative days ("overmorgen",
"in twee weken") and weekdays ("next friday", "di"). :func:`read_time` understands clock
times ("14:30", "2pm", "14u30", "drei Uhr", "quatorze heures") and named times ("noon").

Dates are read with explicit tables, not dateparser: it is a heavy import (its own regex
engine, timezone and 200-language data), slower per call, guesses among all its languages (so
a short word of one language becomes a date in another), and its "relative to now" rules
differ from what a booking bot needs (a weekday is the next one, never today). Four
languages and the forms people actually text fit in a few tables here, compiled at import,
so a parse takes a few microseconds and is predictable.

Rules: every language is accepted, but abbreviations ("di", "do", "ma") are weekdays only
in the contact's language and English; a day and month without year is the next such day
from ``today`` (today included); a weekday is the next one, never today; a weekday written
next to a date must agree with it. Not understood on purpose: bare numbers as times ("3":
03:00 or 15:00?), "half drie"-style clock phrases, dates in the past written without a year.
"""

from __future__ import annotations

import datetime as dt
import re

from convo.flow.numbers import read_number
from convo.flow.wordtables import COMPACT, LANGS, by_lang, word_groups

# -- dates ---------------------------------------------------------------------------------

_MONTH_NAMES = {
    "en": "january jan|february feb|march mar|april apr|may|june jun|july jul|august aug|"
    "september sep sept|october oct|november nov|december dec",
    "nl": "januari jan|februari feb|maart mrt maa|april apr|mei|juni jun|juli jul|augustus aug|"
    "september sep sept|oktober okt|november nov|december dec",
    "fr": "janvier janv jan|fevrier fevr fev|mars mar|avril avr|mai|juin|juillet juil|aout|"
    "septembre sept sep|octobre oct|novembre nov|decembre dec",
    "de": "januar janner jan|februar feb|marz maerz mrz|april apr|mai|juni jun|juli jul|"
    "august aug|september sep sept|oktober okt|november nov|dezember dez",
}
# First word: the full name (understood from every language); the rest are abbreviations,
# understood only in the contact's language and English ("do" and "so" are English words).
_WEEKDAY_NAMES = {
    "en": "monday mon|tuesday tue tues|wednesday wed|thursday thu thur thurs|friday fri|"
    "saturday sat|sunday sun",
    "nl": "maandag ma|dinsdag di|woensdag wo|donderdag do|vrijdag vr|zaterdag za|zondag zo",
    "fr": "lundi lun|mardi mar|mercredi mer|jeudi jeu|vendredi ven|samedi sam|dimanche dim",
    "de": "montag mo|dienstag di|mittwoch mi|donnerstag do|freitag fr|samstag sonnabend sa|"
    "sonntag so",
}
_MONTHS = by_lang(
    {
        lang: {w: i for i, names in enumerate(word_groups(spec), 1) for w in names}
        for lang, spec in _MONTH_NAMES.items()
    }
)
_WEEKDAYS = by_lang(
    {
        lang: {names[0]: i for i, names in enumerate(word_groups(s))}
        for lang, s in _WEEKDAY_NAMES.items()
    }
)
for _lang in LANGS:
    for _source in ("en", _lang):  # the contact's own abbreviations win
        for _i, _names in enumerate(word_groups(_WEEKDAY_NAMES[_source])):
            _WEEKDAYS[_lang].update(dict.fromkeys(_names[1:], _i))

_RELATIVE_DAYS = {
    "today": 0, "vandaag": 0, "aujourd'hui": 0, "heute": 0, "tonight": 0, "vanavond": 0,
    "cesoir": 0, "heuteabend": 0, "tomorrow": 1, "tmrw": 1, "morgen": 1, "demain": 1,
    "dayaftertomorrow": 2, "overmorgen": 2, "apresdemain": 2, "ubermorgen": 2,
    "uebermorgen": 2, "yesterday": -1, "gisteren": -1, "hier": -1, "gestern": -1,
    "daybeforeyesterday": -2, "eergisteren": -2, "avanthier": -2, "vorgestern": -2,
}  # fmt: skip
_DATE_PREFIX = re.compile(r"(?:on|op|le|am|den|for|voor|pour|fur|the)\s+")
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_NUMERIC_DATE = re.compile(r"(\d{1,2})\s?([./-])\s?(\d{1,2})(?:\2\s?(\d{4}|\d{2}))?")
_ORDINAL = r"(?:st|nd|rd|th|ste|de|e|er|eme|\.)?"
_WD = r"(?:(?P<wd>[a-z]+)\.?,?\s+)?"
_DAY_MONTH = re.compile(
    rf"{_WD}(?:the\s+)?(?P<d>\d{{1,2}}){_ORDINAL}\s*(?:of\s+)?(?P<m>[a-z]+)\.?(?:,?\s*(?P<y>\d{{4}}))?"
)
_MONTH_DAY = re.compile(
    rf"{_WD}(?P<m>[a-z]+)\.?\s+(?:the\s+)?(?P<d>\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s*(?P<y>\d{{4}}))?"
)
_NEXT = r"next|this|coming|volgende|komende|aanstaande|deze|ce|nachsten|nachste|nachster"
_NEXT += r"|kommenden|kommende|diesen"
_WEEKDAY = re.compile(
    rf"(?:(?:{_NEXT})\s+){{0,2}}(?P<wd>[a-z]+)\.?"
    r"(?:\s+(?:prochain|qui vient|aanstaande|a\.s|next))?"
)
_IN_DAYS = re.compile(
    r"(?:in|over|dans|binnen)\s+(?P<n>.+?)\s+"
    r"(?P<unit>days?|dagen|dag|jours?|tagen?|weeks?|weken|semaines?|wochen?)"
)
_ONE = {"a": 1, "an": 1, "einer": 1, "einem": 1}


def _next_day_month(day: int, month: int, today: dt.date) -> dt.date | None:
    """The next ``day``/``month`` on or after ``today`` (29 February: the next leap year)."""
    for year in range(today.year, today.year + 9):
        try:
            candidate = dt.date(year, month, day)
        except ValueError:
            if (month, day) != (2, 29):
                return None
            continue
        if candidate >= today:
            return candidate
    return None


def _full_date(year: str | None, month: int, day: int, today: dt.date) -> dt.date | None:
    if year is None:
        return _next_day_month(day, month, today)
    y = int(year) + (2000 if len(year) == 2 else 0)
    if not 1900 <= y < 2200:
        return None
    try:
        return dt.date(y, month, day)
    except ValueError:
        return None  # 31 February


def read_date(core: str, lang: str, today: dt.date) -> dt.date | None:
    """The date ``core`` names, relative to ``today`` where it needs to be, or None.
    ``core``: a normalised reply without polite extras; ``lang``: one of
    :data:`~convo.flow.wordtables.LANGS`."""
    core = _DATE_PREFIX.sub("", core, count=1) if _DATE_PREFIX.match(core) else core
    if (offset := _RELATIVE_DAYS.get(core.translate(COMPACT))) is not None:
        return today + dt.timedelta(days=offset)
    if m := _ISO_DATE.fullmatch(core):
        return _full_date(m[1], int(m[2]), int(m[3]), today)
    if m := _NUMERIC_DATE.fullmatch(core):
        day, month = int(m[1]), int(m[3])
        if lang == "en" and month > 12 >= day:
            day, month = month, day  # "12/25/2026": only month-first makes sense
        return _full_date(m[4], month, day, today)
    for form in (_DAY_MONTH, _MONTH_DAY):
        if (m := form.fullmatch(core)) and (named := _MONTHS[lang].get(m["m"])) is not None:
            found = _full_date(m["y"], named, int(m["d"]), today)
            # "maandag 1 december": the weekday must agree, else the person erred.
            said = _WEEKDAYS[lang].get(m["wd"]) if m["wd"] else None
            if found is None or m["wd"] is None or said == found.weekday():
                return found
            return None
    if (m := _WEEKDAY.fullmatch(core)) and (weekday := _WEEKDAYS[lang].get(m["wd"])) is not None:
        ahead = (weekday - today.weekday()) % 7 or 7  # the next one, never today
        return today + dt.timedelta(days=ahead)
    if m := _IN_DAYS.fullmatch(core):
        n = _ONE.get(m["n"]) or read_number(m["n"], lang)
        if not isinstance(n, int) or n > 3660:
            return None
        weeks = m["unit"].startswith(("w", "s"))  # week(s), weken, semaine(s), woche(n)
        return today + dt.timedelta(days=n * (7 if weeks else 1))
    return None


# -- times ---------------------------------------------------------------------------------

_NAMED_TIMES = {
    "noon": "12:00", "midday": "12:00", "middag": "12:00", "midi": "12:00", "mittag": "12:00",
    "midnight": "00:00", "middernacht": "00:00", "minuit": "00:00", "mitternacht": "00:00",
}  # fmt: skip
_TIME_PREFIX = re.compile(r"(?:at|om|a|um|vers|rond|gegen|around|tegen)\s+")
_UNIT = r"h|u|uur|uhr|heures?|o'?clock"
_TIME = re.compile(
    rf"(?P<h>\d{{1,2}})(?:\s*(?:[:.]|h|u|uur|uhr|heures?)\s*(?P<m>\d{{2}})(?::\d{{2}})?)?"
    rf"\s*(?P<unit>{_UNIT})?\s*(?P<half>[ap]\.?\s?m\.?"
    r"|'?s morgens|'?s ochtends|'?s middags|'?s avonds|du matin|de l'apres-midi|du soir"
    r"|morgens|vormittags|nachmittags|abends"
    r"|in the morning|in the afternoon|in the evening)?"
)
_PM = ("p", "s m", "s a", "de", "du s", "na", "ab", "in the a", "in the e")
_HOUR_WORD = re.compile(r"(?P<word>[a-z' -]+?)\s*(?P<rest>(?:" + _UNIT + r"|[ap]\.?\s?m)\b.*)")


def read_time(core: str, lang: str) -> str | None:
    """The time of day ``core`` names as "HH:MM", or None (same ``core`` and ``lang`` as
    :func:`read_date`)."""
    core = _TIME_PREFIX.sub("", core, count=1) if _TIME_PREFIX.match(core) else core
    if (named := _NAMED_TIMES.get(core)) is not None:
        return named
    if (w := _HOUR_WORD.fullmatch(core)) and (n := read_number(w["word"], lang)) is not None:
        core = f"{n} {w['rest']}"  # "two pm", "drei Uhr", "quatorze heures"
    m = _TIME.fullmatch(core)
    if m is None or (m["m"] is None and m["unit"] is None and m["half"] is None):
        return None  # a bare "3" is not a time: 03:00 or 15:00?
    hour, minute = int(m["h"]), int(m["m"] or 0)
    if (half := m["half"]) is not None:
        if not 1 <= hour <= 12:
            return None  # "14 pm"
        hour = hour % 12 + (12 if half.lstrip("'").startswith(_PM) else 0)
    if hour > 23 or minute > 59:
        return None
    return f"{hour:02d}:{minute:02d}"

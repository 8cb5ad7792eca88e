"""Understanding answers: turning a contact's reply into a value an ``ask`` step can save.

``parse_answer(expect, text, lang)`` reads one reply (an SMS, a speech result, DTMF digits) as
the step's ``expect`` kind and returns an :class:`Answer`: ``ok`` and a JSON-serialisable
``value`` (bool, int/float, "YYYY-MM-DD", "HH:MM", str). It never raises on what a person
typed: empty, 2,000 characters, emoji only or another language is simply ``ok=False``, and the
engine reprompts. Only a broken flow (a regex step without a valid pattern) raises.

How a reply is read:

1. :func:`normalize`: casefold, fold accents ("Übermorgen" -> "ubermorgen"), strip the
   punctuation, symbols and emoji around it, collapse spaces.
2. Polite extras around the answer ("graag", "please", "merci", "danke", "euh") are dropped.
3. The kind's reader looks the rest up in small tables for nl, en, fr and de. Every language
   is accepted whatever the contact's language (people answer "yes" to a Dutch bot); where a
   word or a form means different things, the contact's language (``lang``) wins: "1.000" is
   a thousand in nl/de but one in en, "di"/"do"/"ma" are weekdays only to Dutch/German
   contacts.

Dates are read with explicit tables, not dateparser: it is a heavy import (its own regex
engine, timezone and 200-language data), slower per call, guesses among all its languages (so
a short word of one language becomes a date in another), and its "relative to now" rules
differ from what a booking bot needs (a weekday is the next one, never today). Four
languages and the forms people actually text fit in a few tables here, compiled at import,
so a parse takes a few microseconds and is predictable.
Day-first order everywhere ("1/12" is 1 December); a day and month without year is the next
such day from ``today`` (today included). Not understood on purpose: bare numbers as times,
"half drie"-style clock phrases, dates in the past written without a year.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from convo.exceptions import FlowRuntimeError
from convo.flow.spec import Choice, Expect, Option

__all__ = ["Answer", "match_option", "match_words", "normalize", "parse_answer"]

LANGS = ("en", "nl", "fr", "de")
MAX_ANSWER = 320  # longer replies are not a yes, a date or a number: skip the work
_T = TypeVar("_T")


@dataclass(frozen=True)
class Answer:
    """The outcome of reading one reply; ``value`` is JSON-serialisable when ``ok``."""

    ok: bool
    value: Any = None


NOT_UNDERSTOOD = Answer(False)

# -- normalising -------------------------------------------------------------------------

# typographic apostrophes and dashes -> ASCII, so "d\u2019accord" == "d'accord"
_FOLD = str.maketrans(
    dict.fromkeys("\u2019\u2018\u02bc`\u00b4", "'") | {"\u2013": "-", "\u2014": "-"}
)
_EDGE = re.compile(r"[\W_]+")
_SPACES = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Casefold, fold accents, strip surrounding punctuation/symbols/space, collapse spaces.

    "  Oui! " -> "oui"; "Übermorgen" -> "ubermorgen"; "d\u2019accord" -> "d'accord". Inner
    punctuation stays ("14:30", "vingt-et-un", "a@b.be"). Never raises.
    """
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text.translate(_FOLD))
        text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.casefold()
    if (m := _EDGE.match(text)) is not None:
        text = text[m.end() :]
    # Match the trailing run on the reversed string: a regex anchored at the end would retry
    # from every position (quadratic on a 2,000-character message).
    if (m := _EDGE.match(text[::-1])) is not None:
        text = text[: len(text) - m.end()]
    return _SPACES.sub(" ", text)


def _split_bars(spec: str) -> list[str]:
    return spec.split("|")


def _w(spec: str) -> list[str]:
    return spec.split()


def _lines(spec: str) -> list[list[str]]:
    """ "a b|c d" -> [["a", "b"], ["c", "d"]]: compact source for the word tables."""
    return [group.split() for group in spec.split("|")]


def _by_lang(tables: Mapping[str, Mapping[str, _T]]) -> dict[str, dict[str, _T]]:
    """One lookup dict per contact language, in which that language's words win."""
    out: dict[str, dict[str, _T]] = {}
    for lang in LANGS:
        merged: dict[str, _T] = {}
        for other in reversed(LANGS):
            if other != lang:
                merged.update(tables.get(other, {}))
        merged.update(tables.get(lang, {}))
        out[lang] = merged
    return out


def _base_lang(lang: str) -> str:
    base = lang.replace("_", "-").split("-")[0].lower()
    return base if base in LANGS else "en"


# -- polite extras -------------------------------------------------------------------------

_FILLERS = frozenset(
    tuple(_w(phrase))
    for phrase in _split_bars(
        "please|pls|plz|thanks|thx|ty|cheers|thank you|thank you very much|thanks a lot|"
        "many thanks|graag|alstublieft|alsjeblieft|aub|a.u.b|bedankt|dank je|dank u|dankjewel|"
        "dankuwel|dank je wel|dank u wel|hoor|merci|merci beaucoup|merci bien|svp|s.v.p|stp|"
        "s'il vous plait|s'il te plait|danke|danke schon|danke sehr|vielen dank|bitte|"
        "bitte schon|gerne|gern|euh|eh|uh|uhm|um|ehm|hmm|hm"
    )
)
_FILLER_LONGEST = max(len(p) for p in _FILLERS)
_WORD_EDGE = ",;:!?."


def _tokens(norm: str) -> list[str]:
    return [t for t in (w.strip(_WORD_EDGE) for w in norm.split(" ")) if t]


def _core(norm: str) -> str:
    """``norm`` without polite extras at either end ("ja graag" -> "ja", "2pm please")."""
    words = norm.split(" ")
    bare = [w.strip(_WORD_EDGE) for w in words]
    start, end = 0, len(words)
    while start < end:
        for n in range(_FILLER_LONGEST, 0, -1):
            if end - start >= n and tuple(bare[start : start + n]) in _FILLERS:
                start += n
                break
            if end - start >= n and tuple(bare[end - n : end]) in _FILLERS:
                end -= n
                break
        else:
            break
    return " ".join(words[start:end]).strip(_WORD_EDGE + " ")


# -- yes / no ------------------------------------------------------------------------------

_YES = (
    "yes|y|yeah|yep|yup|ya|sure|ok|okay|k|right|fine|correct|confirm|confirmed|absolutely|"
    "certainly|of course|no problem|sure thing|that's right|"
    "ja|j|jawel|jep|jup|oke|okee|prima|goed|zeker|natuurlijk|klopt|akkoord|ja hoor|is goed|"
    "dat klopt|geen probleem|"
    "oui|o|ouais|ouaip|si|d'accord|dac|exact|exactement|volontiers|bien sur|pas de probleme|"
    "c'est ca|jawohl|jo|joa|klar|genau|sicher|naturlich|natuerlich|einverstanden|passt|"
    "na klar|kein problem"
)
_NO = (
    "no|n|nope|nah|never|no way|not really|of course not|absolutely not|"
    "nee|neen|neu|zeker niet|niet echt|helemaal niet|liever niet|"
    "non|jamais|pas du tout|pas vraiment|certainement pas|"
    "nein|ne|nicht|keineswegs|auf keinen fall|nicht wirklich|lieber nicht"
)
# token phrase -> True (yes), False (no), None (a polite extra, neutral)
_YES_NO: dict[tuple[str, ...], bool | None] = dict.fromkeys(_FILLERS)
for _spec, _value in ((_YES, True), (_NO, False)):
    _YES_NO.update({tuple(p.split()): _value for p in _spec.split("|")})
_YES_NO_LONGEST = max(len(p) for p in _YES_NO)
_DTMF_YES_NO = {"1": True, "2": False}


def _yes_no(norm: str) -> bool | None:
    """Every token must be a yes/no word or a polite extra, and all must agree."""
    tokens = _tokens(norm)
    found: bool | None = None
    i = 0
    while i < len(tokens):
        for n in range(min(_YES_NO_LONGEST, len(tokens) - i), 0, -1):
            key = tuple(tokens[i : i + n])
            if key in _YES_NO:
                break
        else:
            return None  # a word that is neither: "yes but not monday" is not a plain yes
        value = _YES_NO[key]
        if value is not None:
            if found is not None and found != value:
                return None  # "ja nee", "yes no": undecided
            found = value
        i += n
    return found


# -- numbers -------------------------------------------------------------------------------


def _number_words() -> dict[str, dict[str, int]]:
    """Number words 0..100 per language, keyed without spaces and hyphens."""
    en_units = _w(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen"
    )
    nl_units = _w(
        "nul een twee drie vier vijf zes zeven acht negen tien elf twaalf dertien veertien "
        "vijftien zestien zeventien achttien negentien"
    )
    fr_units = _w(
        "zero un deux trois quatre cinq six sept huit neuf dix onze douze treize quatorze "
        "quinze seize dixsept dixhuit dixneuf"
    )
    de_units = _w(
        "null eins zwei drei vier funf sechs sieben acht neun zehn elf zwolf dreizehn "
        "vierzehn funfzehn sechzehn siebzehn achtzehn neunzehn"
    )
    en_tens = _w("twenty thirty forty fifty sixty seventy eighty ninety")
    nl_tens = _w("twintig dertig veertig vijftig zestig zeventig tachtig negentig")
    de_tens = _w("zwanzig dreissig vierzig funfzig sechzig siebzig achtzig neunzig")
    en = {w: i for i, w in enumerate(en_units)} | {"hundred": 100, "onehundred": 100}
    nl = {w: i for i, w in enumerate(nl_units)} | {"honderd": 100, "eenhonderd": 100}
    de = {w: i for i, w in enumerate(de_units)} | {"hundert": 100, "einhundert": 100}
    fr = {w: i for i, w in enumerate(fr_units)} | {"cent": 100, "une": 1}
    en["ahundred"] = 100
    de.update(ein=1, eine=1, zwo=2)
    de_stems = ["", "ein", *de_units[2:10]]
    for t in range(2, 10):
        en[en_tens[t - 2]] = nl[nl_tens[t - 2]] = de[de_tens[t - 2]] = t * 10
        for u in range(1, 10):
            en[en_tens[t - 2] + en_units[u]] = t * 10 + u
            nl[nl_units[u] + "en" + nl_tens[t - 2]] = t * 10 + u  # eenentwintig, tweeentwintig
            de[de_stems[u] + "und" + de_tens[t - 2]] = t * 10 + u  # einundzwanzig
    # French: vingt..soixante regular; 70 = soixante-dix, 80 = quatre-vingts, 90 =
    # quatre-vingt-dix; Belgian/Swiss septante, huitante/octante, nonante.
    fr_tens = {20: "vingt", 30: "trente", 40: "quarante", 50: "cinquante", 60: "soixante"}
    fr_tens |= {70: "septante", 80: "huitante", 90: "nonante"}
    for tens, word in fr_tens.items():
        fr[word] = tens
        fr[word + "etun"] = fr[word + "etune"] = tens + 1
        fr.update({word + fr_units[u]: tens + u for u in range(2, 10)})
    fr["octante"] = 80
    fr.update({"octante" + fr_units[u]: 80 + u for u in range(2, 10)}, octanteetun=81)
    fr.update({"soixante" + fr_units[u]: 60 + u for u in range(10, 20)}, soixanteetonze=71)
    fr.update(quatrevingts=80, quatrevingt=80)
    fr.update({"quatrevingt" + fr_units[u]: 80 + u for u in range(1, 20)})
    for table in (de,):  # "fünf" may be typed "fuenf", "zwölf" "zwoelf"
        table.update({k.replace("funf", "fuenf"): v for k, v in table.items() if "funf" in k})
        table["zwoelf"] = 12
    return {"en": en, "nl": nl, "fr": fr, "de": de}


_NUMBER_WORDS = _by_lang(_number_words())
_NUMERAL = re.compile(
    r"(?P<int>\d{1,3}(?:(?P<g>[ .,'])\d{3})(?:(?P=g)\d{3})*|\d+)(?:(?P<d>[.,])(?P<frac>\d+))?"
)
_GROUP_SEPARATORS = {"en": ", '", "nl": ". ", "fr": " .", "de": ". '"}
_COMPACT = str.maketrans("", "", " -")


def _number(core: str, lang: str) -> int | float | None:
    """A non-negative number in digits ("3", "3,5", "1.000") or words ("eenentwintig")."""
    m = _NUMERAL.fullmatch(core)
    if m is None:
        return _NUMBER_WORDS[lang].get(core.translate(_COMPACT))
    whole, group, dec, frac = m["int"], m["g"], m["d"], m["frac"]
    if group is not None:
        if dec == group:
            return None  # "1.000.5"
        if whole.count(group) == 1 and dec is None and group not in _GROUP_SEPARATORS[lang]:
            # "1.000" in en, "1,000" in nl: one group of three, read as a decimal instead.
            head, tail = whole.split(group)
            return float(f"{head}.{tail}")
        whole = whole.replace(group, "")
    if dec is None:
        return int(whole)
    return float(f"{whole}.{frac}")


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
_MONTHS = _by_lang(
    {
        lang: {w: i for i, names in enumerate(_lines(spec), 1) for w in names}
        for lang, spec in _MONTH_NAMES.items()
    }
)
_WEEKDAYS = _by_lang(
    {lang: {names[0]: i for i, names in enumerate(_lines(s))} for lang, s in _WEEKDAY_NAMES.items()}
)
for _lang in LANGS:
    for _source in ("en", _lang):  # the contact's own abbreviations win
        for _i, _names in enumerate(_lines(_WEEKDAY_NAMES[_source])):
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


def _date(core: str, lang: str, today: dt.date) -> dt.date | None:
    core = _DATE_PREFIX.sub("", core, count=1) if _DATE_PREFIX.match(core) else core
    if (offset := _RELATIVE_DAYS.get(core.translate(_COMPACT))) is not None:
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
        n = _ONE.get(m["n"]) or _number(m["n"], lang)
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


def _time(core: str, lang: str) -> str | None:
    core = _TIME_PREFIX.sub("", core, count=1) if _TIME_PREFIX.match(core) else core
    if (named := _NAMED_TIMES.get(core)) is not None:
        return named
    if (w := _HOUR_WORD.fullmatch(core)) and (n := _number(w["word"], lang)) is not None:
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


# -- e-mail, regex -------------------------------------------------------------------------

_ATOM = r"[\w!#$%&'*+/=?^`{|}~-]+"
_EMAIL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@(?:[^\W_](?:[\w-]*[^\W_])?\.)+[^\W\d_]{{2,}}")
_EMAIL_EDGE = "<>()[]{}\"',;:!?."


def _email(text: str) -> str | None:
    """The one address in the reply ("it's An@Example.be, thanks" -> "an@example.be")."""
    found = {
        word.removeprefix("mailto:")
        for word in (w.strip(_EMAIL_EDGE) for w in text.lower().split())
        if _EMAIL.fullmatch(word.removeprefix("mailto:"))
    }
    return found.pop() if len(found) == 1 else None


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _regex(expect: Expect, text: str) -> str | None:
    if expect.pattern is None:
        raise FlowRuntimeError(f"{expect.pos}: expect regex needs a pattern")
    try:
        pattern = _compiled(expect.pattern)
    except re.error as exc:
        raise FlowRuntimeError(f"{expect.pos}: invalid regex {expect.pattern!r}: {exc}") from exc
    m = pattern.fullmatch(text.strip())
    return m[0] if m else None


# -- keywords, menus, choices --------------------------------------------------------------

_normalized_word = functools.lru_cache(maxsize=4096)(normalize)  # flow words repeat endlessly


def _languages(lang: str, words: Mapping[str, Sequence[str]]) -> list[str]:
    """The languages of ``words``, the contact's first ("nl-BE" counts as "nl")."""
    own = lang.replace("_", "-").split("-")[0].lower()
    return sorted(words, key=lambda other: other.lower() != own)


def _says(candidates: Sequence[str], words: Iterable[str]) -> bool:
    return any(_normalized_word(w) in candidates for w in words)


def _candidates(text: str) -> tuple[str, ...]:
    """The reply as a whole and without polite extras; empty when nothing is left."""
    norm = normalize(text)
    core = _core(norm)
    return tuple(dict.fromkeys(c for c in (norm, core) if c))


def match_words(text: str, words: Iterable[str]) -> bool:
    """Whether the whole message is one of ``words`` (polite extras around it allowed).

    "STOP", "Stop." and "stop please" match "stop"; "stopwatch" and "don't stop" do not.
    """
    if len(text) > MAX_ANSWER:
        return False
    return _says(_candidates(text), words)


def match_option(
    options: Sequence[Option], text: str, lang: str, *, channel: str = "sms"
) -> Option | None:
    """The menu option a reply picks, or None.

    Tried in order: an option's key exactly ("1", "1.", or the DTMF key on a call, where
    "*" and "#" are keys too); one of its words in the contact's language; its words in
    any other language; a number word naming a key ("een", "two"). First option wins a tie.
    Keys, words and DTMF read the same on both channels (a call may send speech, an SMS
    may send "1"); ``channel`` is accepted so callers treat this like :func:`parse_answer`.
    """
    if len(text) > MAX_ANSWER:
        return None
    raw = text.strip()
    candidates = _candidates(text)
    if not candidates and not raw:
        return None
    for option in options:
        if option.key is not None and (
            raw == option.key or _normalized_word(option.key) in candidates
        ):
            return option
    for other in _languages(lang, _all_word_langs(options)):
        for option in options:
            if _says(candidates, option.words.get(other, ())):
                return option
    number = _number(candidates[-1], _base_lang(lang)) if candidates else None
    if isinstance(number, int):
        return next((o for o in options if o.key == str(number)), None)
    return None


def _all_word_langs(items: Sequence[Option] | Sequence[Choice]) -> dict[str, tuple[str, ...]]:
    langs: dict[str, tuple[str, ...]] = {}
    for item in items:
        langs.update(dict.fromkeys(item.words, ()))
    return langs


def _choice(choices: Sequence[Choice], text: str, lang: str) -> str | None:
    candidates = _candidates(text)
    for choice in choices:
        if _normalized_word(choice.value) in candidates:
            return choice.value
    for other in _languages(lang, _all_word_langs(choices)):
        for choice in choices:
            if _says(candidates, choice.words.get(other, ())):
                return choice.value
    return None


# -- the entry point -----------------------------------------------------------------------


def parse_answer(
    expect: Expect,
    text: str,
    lang: str,
    *,
    channel: str = "sms",
    today: dt.date | None = None,
) -> Answer:
    """Read ``text`` as an answer of kind ``expect.kind`` (see the module docstring).

    ``lang`` is the contact's language ("nl", "fr-BE", ...; unknown ones read like "en");
    ``channel`` "voice" makes DTMF 1/2 a yes/no; ``today`` anchors relative dates (default:
    the server's local date). Returns ``Answer(False)`` for anything not understood,
    including answers outside ``expect.min``/``expect.max`` or of the wrong digit count.

    Raises:
        FlowRuntimeError: a ``regex`` expect without a valid pattern (a flow bug, which
            the loader should already have reported).
    """
    kind = expect.kind
    if kind == "text":
        stripped = text.strip()
        return Answer(True, stripped) if stripped else NOT_UNDERSTOOD
    if kind == "regex":
        found = _regex(expect, text)
        return NOT_UNDERSTOOD if found is None else Answer(True, found)
    if len(text) > MAX_ANSWER:
        return NOT_UNDERSTOOD
    base = _base_lang(lang)
    value: Any = None
    if kind == "email":
        value = _email(text)
    elif kind == "choice":
        value = _choice(expect.choices, text, lang)
    else:
        core = _core(normalize(text))
        if kind == "yes_no":
            value = _DTMF_YES_NO.get(core) if channel == "voice" else None
            value = _yes_no(core) if value is None else value
        elif kind == "number":
            value = _bounded(_number(core, base), text, expect)
        elif kind == "digits":
            value = _digits(core, expect)
        elif kind == "date":
            day = _date(core, base, today or dt.date.today())
            value = day.isoformat() if day else None
        elif kind == "time":
            value = _time(core, base)
    return NOT_UNDERSTOOD if value is None else Answer(True, value)


_DIGIT_SEPARATORS = str.maketrans("", "", " -.")


def _digits(core: str, expect: Expect) -> str | None:
    digits = core.translate(_DIGIT_SEPARATORS)
    if not digits.isdecimal() or not digits.isascii():
        return None
    if expect.digits is not None and len(digits) != expect.digits:
        return None
    return digits


def _bounded(number: float | None, text: str, expect: Expect) -> float | None:
    if number is None:
        return None
    if text.lstrip()[:1] in ("-", "\u2212"):  # normalize() strips the sign with the punctuation
        number = -number
    if expect.min is not None and number < expect.min:
        return None
    if expect.max is not None and number > expect.max:
        return None
    return number

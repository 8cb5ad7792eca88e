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

This module holds the entry points, yes/no, choices, menus, e-mail and regex; numbers are
read by :mod:`convo.flow.numbers`, dates and times by :mod:`convo.flow.calendar_words`
(which says why not dateparser), over the language tables of :mod:`convo.flow.wordtables`.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import regex

from convo.exceptions import FlowRuntimeError
from convo.flow import patterns
from convo.flow.calendar_words import read_date, read_time
from convo.flow.numbers import read_number
from convo.flow.polite_extras import FILLERS, reply_words, strip_polite
from convo.flow.spec import Choice, Expect, Option
from convo.flow.wordtables import base_lang

__all__ = ["Answer", "match_option", "match_words", "normalize", "parse_answer"]

MAX_ANSWER = 320  # longer replies are not a yes, a date or a number: skip the work


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
_YES_NO: dict[tuple[str, ...], bool | None] = dict.fromkeys(FILLERS)
for _spec, _value in ((_YES, True), (_NO, False)):
    _YES_NO.update({tuple(p.split()): _value for p in _spec.split("|")})
_YES_NO_LONGEST = max(len(p) for p in _YES_NO)
_DTMF_YES_NO = {"1": True, "2": False}


def _yes_no(norm: str) -> bool | None:
    """Every token must be a yes/no word or a polite extra, and all must agree."""
    tokens = reply_words(norm)
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


def _regex(expect: Expect, text: str) -> str | None:
    """The reply when all of it matches the flow's pattern, within the pattern's time
    budget and length cap (:mod:`convo.flow.patterns`)."""
    if expect.pattern is None:
        raise FlowRuntimeError(f"{expect.pos}: expect regex needs a pattern")
    try:
        return patterns.fullmatch(expect.pattern, text.strip())
    except regex.error as exc:
        raise FlowRuntimeError(f"{expect.pos}: invalid regex {expect.pattern!r}: {exc}") from exc


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
    core = strip_polite(norm)
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
    may send "1"). On a call, recognised speech is a phrase ("les horaires, s'il vous
    plaît"): when nothing above matched, an option whose word appears in the phrase is
    picked, provided no other option's word does too (an ambiguous phrase picks nothing).
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
    number = read_number(candidates[-1], base_lang(lang)) if candidates else None
    if isinstance(number, int):
        return next((o for o in options if o.key == str(number)), None)
    if channel == "voice" and candidates:
        return _spoken_option(options, candidates[0])
    return None


def _spoken_option(options: Sequence[Option], phrase: str) -> Option | None:
    """The one option with a word (or multi-word phrase) inside ``phrase``, else None."""
    padded = f" {phrase} "
    hits = [
        o
        for o in options
        if any(f" {_normalized_word(w)} " in padded for ws in o.words.values() for w in ws)
    ]
    return hits[0] if len(hits) == 1 else None


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
    if kind == "media":  # a text alone never is media: the turn reads the message's media
        return NOT_UNDERSTOOD
    if kind == "text":
        stripped = text.strip()
        return Answer(True, stripped) if stripped else NOT_UNDERSTOOD
    if kind == "regex":
        found = _regex(expect, text)
        return NOT_UNDERSTOOD if found is None else Answer(True, found)
    if len(text) > MAX_ANSWER:
        return NOT_UNDERSTOOD
    base = base_lang(lang)
    value: Any = None
    if kind == "email":
        value = _email(text)
    elif kind == "choice":
        value = _choice(expect.choices, text, lang)
    else:
        core = strip_polite(normalize(text))
        if kind == "yes_no":
            value = _DTMF_YES_NO.get(core) if channel == "voice" else None
            value = _yes_no(core) if value is None else value
        elif kind == "number":
            value = _bounded(read_number(core, base), text, expect)
        elif kind == "digits":
            value = _digits(core, expect)
        elif kind == "date":
            day = read_date(core, base, today or dt.date.today())
            value = day.isoformat() if day else None
        elif kind == "time":
            value = read_time(core, base)
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

"""The languages replies are read in, and how their word tables are written and merged.

Replies are understood in four languages (:data:`LANGS`) whatever the contact's language
(people answer "yes" to a Dutch bot), but where a word means different things the contact's
language wins. :func:`by_lang` builds, from one table per language, one merged lookup per
contact language with that language's words on top. The tables themselves are written as
compact strings (``"monday mon|tuesday tue"``) and split by :func:`word_list` and
:func:`word_groups`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

LANGS = ("en", "nl", "fr", "de")
#: Translation table that drops spaces and hyphens: "vingt-et-un" -> "vingtetun".
COMPACT = str.maketrans("", "", " -")
_T = TypeVar("_T")


def word_list(spec: str) -> list[str]:
    """ "a b c" -> ["a", "b", "c"]."""
    return spec.split()


def word_groups(spec: str) -> list[list[str]]:
    """ "a b|c d" -> [["a", "b"], ["c", "d"]]: compact source for the word tables."""
    return [group.split() for group in spec.split("|")]


def by_lang(tables: Mapping[str, Mapping[str, _T]]) -> dict[str, dict[str, _T]]:
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


def base_lang(lang: str) -> str:
    """The table language for a contact language: "nl-BE" -> "nl"; unknown ones -> "en"."""
    base = lang.replace("_", "-").split("-")[0].lower()
    return base if base in LANGS else "en"

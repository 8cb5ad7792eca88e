"""Keyword triggers: a first word that starts a flow on a line, whatever is going on.

A line's ``triggers`` (``{"AFSPRAAK": "appointment", "PIZZA": "order"}`` in its
``[[lines]]`` table) map a keyword to a flow. An inbound text whose **first word** is one of
them starts that flow, even in the middle of another conversation on the line, which ends
(the engine replaces it: :mod:`convo.flow.engine`). Matching ignores case and accents and
the punctuation around the word: "afspraak", "Afspraak!" and "AFSPRAAK morgen 10u" all
start ``appointment``; "afspraken" does not. Keywords are compared as
:func:`convo.flow.expect.normalize` reads words (casefold, accents folded with NFKD).
"""

from __future__ import annotations

from collections.abc import Mapping

from convo.flow.expect import normalize

#: Only the start of a text is read for its first word (a 10,000-character text is not
#: split whole on every turn).
_HEAD = 64


def keyword(text: str) -> str:
    """The first word of ``text`` as triggers compare it ("" when there is none)."""
    words = text[:_HEAD].split(None, 1)
    return normalize(words[0]) if words else ""


class Triggers:
    """The keyword triggers of every line: ``by_line`` is line -> {keyword: flow id}.
    ValueError when two keywords of one line read the same (``Café`` and ``CAFE``)."""

    def __init__(self, by_line: Mapping[str, Mapping[str, str]]) -> None:
        self._by_line: dict[str, dict[str, str]] = {}
        for line, words in by_line.items():
            table: dict[str, str] = {}
            for word, flow in words.items():
                key = keyword(word)
                if not key or key != normalize(word):
                    raise ValueError(f"line {line}: trigger {word!r} is not one word")
                if key in table:
                    raise ValueError(f"line {line}: triggers {word!r} and another read the same")
                table[key] = flow
            if table:
                self._by_line[line] = table

    def __bool__(self) -> bool:
        return bool(self._by_line)

    def flow_for(self, line: str, text: str) -> str | None:
        """The flow ``text`` sent to ``line`` starts, or None."""
        table = self._by_line.get(line)
        if table is None:
            return None
        return table.get(keyword(text))

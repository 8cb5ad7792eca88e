"""Polite extras around an answer: "ja graag", "2pm please", "euh, morgen", "oui merci".

People wrap an answer in courtesy and hesitation words; they carry no meaning for the
question asked, so they are dropped before an answer is read. :data:`FILLERS` lists them
(as word tuples) for nl, en, fr and de; :func:`strip_polite` removes them from either end
of a normalised reply (see :func:`convo.flow.expect.normalize`) and :func:`reply_words` splits
one into words for readers that judge every word (yes/no).
"""

from __future__ import annotations

from convo.flow.wordtables import word_list


def _split_bars(spec: str) -> list[str]:
    return spec.split("|")


FILLERS = frozenset(
    tuple(word_list(phrase))
    for phrase in _split_bars(
        "please|pls|plz|thanks|thx|ty|cheers|thank you|thank you very much|thanks a lot|"
        "many thanks|graag|alstublieft|alsjeblieft|aub|a.u.b|bedankt|dank je|dank u|dankjewel|"
        "dankuwel|dank je wel|dank u wel|hoor|merci|merci beaucoup|merci bien|svp|s.v.p|stp|"
        "s'il vous plait|s'il te plait|danke|danke schon|danke sehr|vielen dank|bitte|"
        "bitte schon|gerne|gern|euh|eh|uh|uhm|um|ehm|hmm|hm"
    )
)
_FILLER_LONGEST = max(len(p) for p in FILLERS)
_WORD_EDGE = ",;:!?."


def reply_words(norm: str) -> list[str]:
    """The words of normalised text ``norm``, without punctuation at their edges."""
    return [t for t in (w.strip(_WORD_EDGE) for w in norm.split(" ")) if t]


def strip_polite(norm: str) -> str:
    """``norm`` without polite extras at either end ("ja graag" -> "ja", "2pm please")."""
    words = norm.split(" ")
    bare = [w.strip(_WORD_EDGE) for w in words]
    start, end = 0, len(words)
    while start < end:
        for n in range(_FILLER_LONGEST, 0, -1):
            if end - start >= n and tuple(bare[start : start + n]) in FILLERS:
                start += n
                break
            if end - start >= n and tuple(bare[end - n : end]) in FILLERS:
                end -= n
                break
        else:
            break
    return " ".join(words[start:end]).strip(_WORD_EDGE + " ")

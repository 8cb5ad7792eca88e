"""Numbers in replies: digits ("3", "3,5", "1.000") and number words up to a hundred in
English, Dutch, French and German ("eenentwintig", "quatre-vingt-dix", "einundzwanzig").

Where a written form means different things, the contact's language decides: "1.000" is a
thousand in nl/de but one in en, "1,000" the other way round. Number words are keyed
without spaces and hyphens, so "vingt et un", "vingt-et-un" and "vingtetun" are all 21;
Belgian/Swiss forms (septante, huitante/octante, nonante) are understood too.
"""

from __future__ import annotations

import re

from convo.flow.wordtables import COMPACT, by_lang, word_list


def _number_words() -> dict[str, dict[str, int]]:
    """Number words 0..100 per language, keyed without spaces and hyphens."""
    en_units = word_list(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen"
    )
    nl_units = word_list(
        "nul een twee drie vier vijf zes zeven acht negen tien elf twaalf dertien veertien "
        "vijftien zestien zeventien achttien negentien"
    )
    fr_units = word_list(
        "zero un deux trois quatre cinq six sept huit neuf dix onze douze treize quatorze "
        "quinze seize dixsept dixhuit dixneuf"
    )
    de_units = word_list(
        "null eins zwei drei vier funf sechs sieben acht neun zehn elf zwolf dreizehn "
        "vierzehn funfzehn sechzehn siebzehn achtzehn neunzehn"
    )
    en_tens = word_list("twenty thirty forty fifty sixty seventy eighty ninety")
    nl_tens = word_list("twintig dertig veertig vijftig zestig zeventig tachtig negentig")
    de_tens = word_list("zwanzig dreissig vierzig funfzig sechzig siebzig achtzig neunzig")
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


_NUMBER_WORDS = by_lang(_number_words())
_NUMERAL = re.compile(
    r"(?P<int>\d{1,3}(?:(?P<g>[ .,'])\d{3})(?:(?P=g)\d{3})*|\d+)(?:(?P<d>[.,])(?P<frac>\d+))?"
)
_GROUP_SEPARATORS = {"en": ", '", "nl": ". ", "fr": " .", "de": ". '"}


def read_number(core: str, lang: str) -> int | float | None:
    """A non-negative number in digits ("3", "3,5", "1.000") or words ("eenentwintig"),
    or None. ``core``: a normalised reply without polite extras; ``lang``: one of
    :data:`~convo.flow.wordtables.LANGS` (see :func:`~convo.flow.wordtables.base_lang`)."""
    m = _NUMERAL.fullmatch(core)
    if m is None:
        return _NUMBER_WORDS[lang].get(core.translate(COMPACT))
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

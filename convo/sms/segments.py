"""How many SMS a text costs: GSM-7 / UCS-2 encoding and concatenated parts.

A text goes out in GSM-7 (3GPP TS 23.038, "GSM 03.38") when every character is in the
basic table or the extension table; one non-GSM character switches the whole text to
UCS-2. What counts against the limit (``units``):

- GSM-7: septets. A basic character is 1, an extension character (``^ { } \\ [ ~ ] | €``
  and form feed) is 2: an ESC septet plus its code. A single SMS holds 160 septets; a
  concatenated one 153 per part (the 6-octet user-data header eats 7 septets).
- UCS-2: UTF-16 code units (an emoji outside the BMP is a surrogate pair, 2 units). A
  single SMS holds 70 units; a concatenated one 67 per part.

Parts are packed greedily and never split an ESC pair or a surrogate pair, so a text
with an extension character across a part boundary may need one more part than
``ceil(units / 153)``: ``parts`` is what is really sent. ``remaining`` is
``parts * per_part - units`` (what ``convo segments`` promises).

The empty text is still one (empty) SMS when sent: ``parts`` is 1, ``units`` 0.
The text is analysed as given: no Unicode normalisation (a decomposed ``e`` + U+0301
forces UCS-2, a composed ``é`` does not), because the provider sends what we give it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Encoding = Literal["GSM-7", "UCS-2"]

# GSM 03.38 default alphabet, in code order 0x00-0x7F. 0x1B is ESC (the extension
# table's escape), never a character on its own, so it is left out of the set.
_GSM_BASIC_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
GSM_BASIC: frozenset[str] = frozenset(_GSM_BASIC_TABLE) - {"\x1b"}
#: Extension table (each costs ESC + code = 2 septets): form feed ^ { } \ [ ~ ] | €.
GSM_EXTENSION: frozenset[str] = frozenset("\x0c^{}\\[~]|€")
# Both tables: a text is GSM-7 when this holds every character of it.
_GSM_ANY: frozenset[str] = GSM_BASIC | GSM_EXTENSION

SINGLE_LIMIT: dict[Encoding, int] = {"GSM-7": 160, "UCS-2": 70}
PART_LIMIT: dict[Encoding, int] = {"GSM-7": 153, "UCS-2": 67}


@dataclass(frozen=True)
class SegmentInfo:
    """The cost of one text: see the module docstring for what each field counts."""

    encoding: Encoding
    characters: int
    units: int
    parts: int
    per_part: int
    remaining: int

    def to_json(self) -> dict[str, Any]:
        """The ``convo segments --json`` shape (a stable contract)."""
        return {
            "encoding": self.encoding,
            "characters": self.characters,
            "units": self.units,
            "parts": self.parts,
            "per_part": self.per_part,
            "remaining": self.remaining,
        }


def is_gsm(char: str) -> bool:
    """True if ``char`` (one code point) can be sent in GSM-7 (basic or extension)."""
    return char in GSM_BASIC or char in GSM_EXTENSION


def non_gsm_chars(text: str) -> list[str]:
    """The characters of ``text`` that force UCS-2, unique, in order of first appearance."""
    seen: dict[str, None] = {}
    for char in text:
        if not is_gsm(char):
            seen.setdefault(char, None)
    return list(seen)


def encoding_of(text: str) -> Encoding:
    """``"GSM-7"`` if every character is in the GSM tables, else ``"UCS-2"``."""
    # issuperset walks the text in C: every reply is checked before it is sent
    return "GSM-7" if _GSM_ANY.issuperset(text) else "UCS-2"


def counted_differently(text: str) -> bool:
    """True when carriers are known to disagree on the size of ``text``: it has a GSM-7
    extension character (2 septets here; some count it as 1 character) or, in UCS-2, a
    character outside the BMP (2 UTF-16 units here; some count it as 1). For any other text
    every count agrees with :func:`analyze`."""
    if encoding_of(text) == "GSM-7":
        return any(char in GSM_EXTENSION for char in text)
    return any(ord(char) > 0xFFFF for char in text)


def _unit_cost(char: str, encoding: Encoding) -> int:
    if encoding == "GSM-7":
        return 2 if char in GSM_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1  # astral plane: a UTF-16 surrogate pair


def _resolve(text: str, encoding: Encoding | None) -> Encoding:
    if encoding is None:
        return encoding_of(text)
    if encoding not in SINGLE_LIMIT:
        raise ValueError(f"unknown SMS encoding {encoding!r}; expected 'GSM-7' or 'UCS-2'")
    if encoding == "GSM-7" and (bad := non_gsm_chars(text)):
        raise ValueError(f"text cannot be sent in GSM-7: it contains {''.join(bad)!r}")
    return encoding


def split(text: str, encoding: Encoding | None = None) -> list[str]:
    """The parts ``text`` is sent as, in order; ``"".join(parts) == text``.

    ``encoding`` forces one (a provider told to send UCS-2 even for GSM text); by default
    it is chosen from the text. Raises ``ValueError`` for GSM-7 forced on non-GSM text.
    A text that fits one SMS is one part (the empty text is ``[""]``).
    """
    enc = _resolve(text, encoding)
    costs = [_unit_cost(c, enc) for c in text]
    if sum(costs) <= SINGLE_LIMIT[enc]:
        return [text]
    limit = PART_LIMIT[enc]
    parts: list[str] = []
    start = used = 0
    for i, cost in enumerate(costs):
        # A character that would straddle the boundary starts the next part whole.
        if used + cost > limit:
            parts.append(text[start:i])
            start, used = i, 0
        used += cost
    parts.append(text[start:])
    return parts


def analyze(text: str, encoding: Encoding | None = None) -> SegmentInfo:
    """Encoding, size and part count of ``text`` (``encoding`` as for :func:`split`)."""
    enc = _resolve(text, encoding)
    units = sum(_unit_cost(c, enc) for c in text)
    if units <= SINGLE_LIMIT[enc]:
        parts, per_part = 1, SINGLE_LIMIT[enc]
    else:
        parts, per_part = len(split(text, enc)), PART_LIMIT[enc]
    return SegmentInfo(
        encoding=enc,
        characters=len(text),
        units=units,
        parts=parts,
        per_part=per_part,
        remaining=parts * per_part - units,
    )

"""Form bodies (``application/x-www-form-urlencoded``): read and written as the standard
library does, faster.

Every SMS webhook of most providers is a form, and every Vonage send is one: parsing and
encoding them with ``urllib.parse`` cost about as much as checking the webhook's signature.
Most names and values need no escaping (``messageId=0A00000012345678``), so these functions
leave the standard library only the ones that do. Nothing is cached: values are people's
texts, which must not outlive an erasure in a cache:

* :func:`decode` gives what ``dict(parse_qsl(text, keep_blank_values=True))`` gives (the
  last of repeated names wins; ``+`` is a space; an invalid ``%`` escape is kept as it is,
  invalid UTF-8 escapes become U+FFFD);
* :func:`encode` gives what ``urlencode(fields)`` gives for string names and values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote_plus, unquote, unquote_to_bytes

# What quote_plus leaves as it is (urllib.parse's _ALWAYS_SAFE); a space is not.
_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*")


def decode(text: str) -> dict[str, str]:
    """The fields of a form body (module docstring)."""
    if "+" in text:  # a space, in names and values alike; "%2B" is a "+", unescaped below
        text = text.replace("+", " ")
    # A name without "=" has the value "".
    pairs = [pair.partition("=") for pair in text.split("&") if pair]
    if "%" not in text:
        return {name: value for name, _, value in pairs}
    return {
        _unescaped(name) if "%" in name else name: _unescaped(value) if "%" in value else value
        for name, _, value in pairs
    }


def _unescaped(part: str) -> str:
    # What unquote gives: for ASCII text, its escapes' bytes read as UTF-8 (without its
    # generator over the ASCII and other runs of the text, which is what costs).
    if part.isascii():
        return unquote_to_bytes(part).decode("utf-8", "replace")
    return unquote(part)


def encode(fields: Mapping[str, str]) -> str:
    """``fields`` as a form body (module docstring)."""
    plain = _PLAIN.fullmatch
    pairs = []
    for name, value in fields.items():
        escaped = name if plain(name) else quote_plus(name)
        pairs.append(f"{escaped}={value if plain(value) else quote_plus(value)}")
    return "&".join(pairs)

"""Form bodies (``application/x-www-form-urlencoded``): read and written as the standard
library does, faster.

Every SMS webhook of most providers is a form, and every Vonage send is one: parsing and
encoding them with ``urllib.parse`` cost about as much as checking the webhook's signature.
Most names and values need no escaping (``messageId=0A00000012345678``), so these functions
look at each one once and leave the standard library only the ones that do:

* :func:`decode` gives what ``dict(parse_qsl(text, keep_blank_values=True))`` gives (the
  last of repeated names wins; ``+`` is a space; an invalid ``%`` escape is kept as it is,
  invalid UTF-8 escapes become U+FFFD);
* :func:`encode` gives what ``urlencode(fields)`` gives for string names and values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote_plus, unquote

# What quote_plus leaves as it is (urllib.parse's _ALWAYS_SAFE); a space is not.
_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*")


def decode(text: str) -> dict[str, str]:
    """The fields of a form body (module docstring)."""
    fields: dict[str, str] = {}
    for pair in text.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")  # a name without "=" has the value ""
        fields[_unescaped(name)] = _unescaped(value)
    return fields


def _unescaped(part: str) -> str:
    if "+" in part:
        part = part.replace("+", " ")
    return unquote(part) if "%" in part else part


def encode(fields: Mapping[str, str]) -> str:
    """``fields`` as a form body (module docstring)."""
    plain = _PLAIN.fullmatch
    pairs = []
    for name, value in fields.items():
        escaped = name if plain(name) else quote_plus(name)
        pairs.append(f"{escaped}={value if plain(value) else quote_plus(value)}")
    return "&".join(pairs)

"""Form bodies (``application/x-www-form-urlencoded``): read and written as the standard
library does, faster.

Every SMS webhook of most providers is a form, and every Vonage send is one: parsing and
encoding them with ``urllib.parse`` cost about as much as checking the webhook's signature.
Most names and values need no escaping (``messageId=0A00000012345678``), so these functions
leave the standard library only the ones that do, and remember what it made of them (a
send's names, credentials and a flow's texts repeat; so does a webhook's timestamp within
its second):

* :func:`decode` gives what ``dict(parse_qsl(text, keep_blank_values=True))`` gives (the
  last of repeated names wins; ``+`` is a space; an invalid ``%`` escape is kept as it is,
  invalid UTF-8 escapes become U+FFFD);
* :func:`encode` gives what ``urlencode(fields)`` gives for string names and values.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from urllib.parse import quote_plus, unquote, unquote_to_bytes


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


@functools.lru_cache(maxsize=1024)
def _unescaped(part: str) -> str:
    # What unquote gives: for ASCII text, its escapes' bytes read as UTF-8 (without its
    # generator over the ASCII and other runs of the text, which is what costs). Cached:
    # Vonage's message-timestamp ("2026-12-04 23%3A20%3A19") is one per second.
    if part.isascii():
        return unquote_to_bytes(part).decode("utf-8", "replace")
    return unquote(part)


def encode(fields: Mapping[str, str]) -> str:
    """``fields`` as a form body (module docstring)."""
    return "&".join(
        [
            f"{name if name.isalnum() and name.isascii() else _quoted(name)}="
            f"{value if value.isalnum() and value.isascii() else _quoted(value)}"
            for name, value in fields.items()
        ]
    )


# quote_plus of a name or value that is not only ASCII letters and digits. Those repeat
# from send to send (the names, credentials, a flow's texts) and quote_plus builds a list
# in a Python comprehension for every character: each is quoted once. (Ids and numbers are
# letters and digits, so they do not crowd the others out.)
_quoted = functools.lru_cache(maxsize=4096)(quote_plus)

"""Building a :class:`~convo.models.Contact` from what a person or a file gave us.

One set of rules for every way a contact comes in (a CSV import, the admin API):

- ``number``: normalised to E.164 by :func:`convo.sms.phone.normalize`'s rules (national
  numbers read in ``region``); an impossible or unallocated number raises ``InvalidNumber``.
- ``language``: a language code, ``nl`` or ``pt-BR`` (``pt_br`` is read as ``pt-BR``).
- ``timezone``: an IANA zone; when not given, guessed from the number
  (:mod:`convo.contacts.zones`), possibly None.
- ``name``: stripped; empty means unknown.
- ``fields``: the business's own attributes, kept as given (a JSON object).

Anything else wrong raises ``ValueError`` with a message that names the attribute.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from convo.contacts.zones import check_timezone, timezone_for_parsed
from convo.models import Contact
from convo.sms.phone import e164, parse_valid

_LANGUAGE = re.compile(r"([A-Za-z]{2,3})((?:[-_][A-Za-z0-9]{2,8})*)")


def normalize_language(code: str) -> str:
    """``code`` as convo writes language codes (flows' ``languages``): the primary subtag in
    lower case, then its subtags with ``-``, a two-letter region in upper case (``nl``,
    ``nl-BE``, ``pt-BR``). Raises ValueError for anything that is not a language code."""
    match = _LANGUAGE.fullmatch(code.strip())
    if match is None:
        raise ValueError(f"language {code!r} is not a language code (such as 'nl' or 'pt-BR')")
    primary, rest = match.group(1).lower(), match.group(2)
    subtags = [s.upper() if len(s) == 2 else s for s in re.split(r"[-_]", rest)[1:]]
    return "-".join([primary, *subtags])


def make_contact(
    number: str,
    *,
    name: str | None = None,
    language: str | None = None,
    timezone: str | None = None,
    fields: Mapping[str, Any] | None = None,
    region: str = "BE",
) -> Contact:
    """A checked contact (module docstring); raises ``InvalidNumber`` for the number and
    ``ValueError`` for any other attribute."""
    parsed = parse_valid(number, region)
    name = name.strip() if name is not None else None
    lang = normalize_language(language) if language is not None and language.strip() else None
    if timezone is not None and timezone.strip():
        zone: str | None = check_timezone(timezone.strip())
    else:
        zone = timezone_for_parsed(parsed)
    if fields is not None and not isinstance(fields, Mapping):
        raise ValueError(f"fields must be an object of names and values, got {fields!r}")
    return Contact(e164(parsed), lang, name or None, zone, dict(fields or {}))


def contact_to_json(contact: Contact) -> dict[str, Any]:
    """The admin API's shape of a contact: ``{"number", "name", "language", "timezone",
    "fields"}``."""
    return {
        "number": contact.number,
        "name": contact.name,
        "language": contact.lang,
        "timezone": contact.timezone,
        "fields": dict(contact.fields),
    }

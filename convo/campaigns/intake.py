"""Contacts given to a campaign, as recipient rows: from CSV text or a file (read by
:mod:`convo.contacts.csv_reader`, streamed) or from a JSON list.

Every row becomes a :class:`~convo.campaigns.model.NewRecipient`, the bad ones too: an
impossible number, a bad language or time zone, or bytes that are not UTF-8 make a
``skipped_invalid`` row, a number given before a ``skipped_duplicate`` row, each with its
line (CSV) or position (list, 1-based) and the reason, so the campaign's counts and the
CLI's report say what was left out and where. A CSV without a usable header row (no
``number`` column) cannot be read at all: :class:`~convo.campaigns.model.CampaignError`.

A recipient's time zone (for quiet hours) is the contact's own, else the one its number
implies, else ``fallback_zone`` (the line's), else UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from convo.campaigns.model import CampaignError, NewRecipient, RecipientState
from convo.contacts.contact import make_contact
from convo.contacts.csv_reader import CsvContact, CsvRow
from convo.exceptions import InvalidNumber
from convo.models import Contact

_KEYS = frozenset({"number", "name", "language", "timezone", "fields"})


def from_csv(rows: Iterable[CsvRow], fallback_zone: str | None = None) -> Iterator[NewRecipient]:
    """The recipients of CSV rows, in file order (module docstring)."""
    for row in rows:
        if isinstance(row, CsvContact):
            yield _recipient(row.contact, row.line, fallback_zone)
            continue
        if row.kind == "header":
            raise CampaignError(f"csv: {row}")
        state = (
            RecipientState.SKIPPED_DUPLICATE
            if row.kind == "duplicate"
            else RecipientState.SKIPPED_INVALID
        )
        yield NewRecipient(row.number.strip(), row.line, state=state, error=row.reason)


def from_list(items: Iterable[object], fallback_zone: str | None = None) -> Iterator[NewRecipient]:
    """The recipients of a JSON list: each item a number (``"+32470..."``) or an object
    ``{"number", "name", "language", "timezone", "fields"}``. An item of another shape is
    a :class:`CampaignError` naming its position; a bad value in a good shape is a
    ``skipped_invalid`` row."""
    for position, item in enumerate(items, 1):
        where = f"contacts[{position - 1}]"
        given: Mapping[str, Any]
        if isinstance(item, str):
            given = {"number": item}
        elif isinstance(item, dict) and isinstance(item.get("number"), str):
            unknown = set(item) - _KEYS
            if unknown:
                raise CampaignError(
                    f"{where}: unknown key(s) {', '.join(sorted(unknown))} "
                    f"(known: {', '.join(sorted(_KEYS))})"
                )
            given = item
        else:
            raise CampaignError(f'{where}: expected a number or an object with "number"')
        try:
            contact = make_contact(
                given["number"],
                name=_text(given, "name", where),
                language=_text(given, "language", where),
                timezone=_text(given, "timezone", where),
                fields=given.get("fields"),
            )
        except (InvalidNumber, ValueError) as exc:
            yield NewRecipient(
                given["number"].strip(),
                position,
                state=RecipientState.SKIPPED_INVALID,
                error=str(exc),
            )
            continue
        yield _recipient(contact, position, fallback_zone)


def _text(given: Mapping[str, Any], key: str, where: str) -> str | None:
    value = given.get(key)
    if value is not None and not isinstance(value, str):
        raise CampaignError(f"{where}.{key}: expected text, got {type(value).__name__}")
    return value


def _recipient(contact: Contact, row: int, fallback_zone: str | None) -> NewRecipient:
    return NewRecipient(
        contact.number,
        row,
        timezone=contact.timezone or fallback_zone or "UTC",
        name=contact.name,
        language=contact.lang,
        fields=dict(contact.fields),
        contact=contact,
    )


def noting_skipped(
    recipients: Iterable[NewRecipient], into: list[NewRecipient], limit: int = 100
) -> Iterator[NewRecipient]:
    """``recipients`` unchanged, the first ``limit`` skipped ones also appended to
    ``into`` (the report of what was left out, and where)."""
    for r in recipients:
        if r.state is not RecipientState.PENDING and len(into) < limit:
            into.append(r)
        yield r

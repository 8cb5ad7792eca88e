"""Contacts: the people a business starts conversations with.

- :mod:`convo.contacts.contact`: building a checked :class:`~convo.models.Contact`.
- :mod:`convo.contacts.zones`: a contact's time zone, guessed from the number.
- :mod:`convo.contacts.csv_reader`: contacts streamed from a CSV file, row by row, with a
  problem (line number and reason) for each row that cannot be one.
- :mod:`convo.contacts.importing`: those rows into the store in batches, with a report.

Contacts live in the store (:class:`convo.store.base.Contacts`); conversations are started
on them by :func:`convo.outbound.start_conversation`.
"""

from __future__ import annotations

from convo.contacts.contact import make_contact, normalize_language
from convo.contacts.csv_reader import CsvContact, CsvProblem, read_csv_file, read_csv_text

__all__ = [
    "CsvContact",
    "CsvProblem",
    "make_contact",
    "normalize_language",
    "read_csv_file",
    "read_csv_text",
]

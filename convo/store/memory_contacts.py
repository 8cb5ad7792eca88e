"""The in-memory store's contacts and idempotent requests (mixed into
:class:`~convo.store.memory.MemoryStore`).

Contacts are kept as JSON text, as a durable store would keep them: what a caller changes in
a contact's ``fields`` after ``put_contact`` never reaches the store, and fields that are
not JSON data fail here as they would in SQLite. Every method runs without awaiting, so
each is atomic on the event loop.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from convo.models import Contact
from convo.store.base import SEALED, StoredRequest
from convo.store.checks import contact_json


class MemoryContacts:
    """:class:`~convo.store.base.Contacts` and :class:`~convo.store.base.IdempotentRequests`
    in dicts."""

    def __init__(self) -> None:
        self._contacts: dict[str, tuple[Contact, str]] = {}  # number -> (contact, fields)
        self._requests: dict[str, tuple[str, str | None, float]] = {}  # key -> claim

    async def get_contact(self, number: str) -> Contact | None:
        kept = self._contacts.get(number)
        if kept is None:
            return None
        contact, fields = kept
        return Contact(contact.number, contact.lang, contact.name, contact.timezone,
                       json.loads(fields))  # fmt: skip

    async def put_contact(self, contact: Contact) -> bool:
        kept = (contact, contact_json(contact))
        new = contact.number not in self._contacts
        self._contacts[contact.number] = kept
        return new

    async def put_contacts(self, contacts: Sequence[Contact]) -> int:
        kept = [(c, contact_json(c)) for c in contacts]  # all checked before any is put
        new = {c.number for c, _ in kept if c.number not in self._contacts}
        for contact, fields in kept:
            self._contacts[contact.number] = (contact, fields)
        return len(new)

    async def delete_contact(self, number: str) -> bool:
        return self._contacts.pop(number, None) is not None

    async def claim_request(self, key: str, fingerprint: str, now: float) -> StoredRequest | None:
        kept = self._requests.get(key)
        if kept is None:
            self._requests[key] = (fingerprint, None, now)
            return None
        return StoredRequest(kept[0], kept[1])

    async def settle_request(self, key: str, answer: str | None) -> None:
        kept = self._requests.get(key)
        if kept is None:
            return
        if answer is None:
            del self._requests[key]
        else:
            self._requests[key] = (kept[0], answer, kept[2])

    async def seal_requests(self, prefix: str, answer: str) -> int:
        sealed = [k for k in self._requests if k.startswith(prefix)]
        for k in sealed:
            self._requests[k] = (SEALED, answer, self._requests[k][2])
        return len(sealed)

    def _prune_requests(self, older_than: float) -> int:
        old = [k for k, (_, _, at) in self._requests.items() if at < older_than]
        for k in old:
            del self._requests[k]
        return len(old)

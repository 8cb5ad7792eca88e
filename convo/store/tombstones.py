"""Tombstones: what erasure leaves of an inbound message so that a replay of it stays a duplicate.

Inbound messages are deduplicated on their ``(provider, provider_message_id)``: a provider's
retry, or anyone replaying a captured webhook, finds the message in the log and is dropped
(:meth:`~convo.store.base.MessageLog.add_inbound`). Erasure empties the log of a contact,
and several providers sign webhooks without a timestamp, so without something left behind a
signed webhook replayed after erasure would be stored and answered again: the erased
person texted by a conversation they never started, and their number back in the store.

So :meth:`~convo.store.base.Erasure.erase_contact` keeps, for each erased inbound message
with a provider id, a **tombstone**: :func:`tombstone` of that pair, and the time of
erasure. It is a keyed hash (HMAC-SHA256) under a random key each store creates once and
keeps (:func:`new_key`), so the tombstone holds no number, no text and not even the
provider's id: without the key it cannot be matched against a list of ids (and an id such
as Enco's, which is itself a hash of sender and text, cannot be tested against guesses).
Whoever holds the store file holds the key too; the key protects against a tombstone
travelling alone (an export, a log), not against the database itself.

A tombstoned id is a duplicate for ``add_inbound`` until
:meth:`~convo.store.base.SeenTokens.prune_seen` forgets the tombstone: like seen tokens,
tombstones are kept for ``[store] seen_retention`` (counted from erasure), then pruned.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_BYTES = 32
"""Length of a store's tombstone key: as long as the HMAC-SHA256 output."""


def new_key() -> bytes:
    """A fresh random tombstone key (from the operating system's CSPRNG)."""
    return secrets.token_bytes(KEY_BYTES)


def tombstone(key: bytes, provider: str, provider_message_id: str) -> bytes:
    """The tombstone of ``(provider, provider_message_id)`` under ``key``: HMAC-SHA256 of
    ``provider + "\\0" + provider_message_id`` (the NUL keeps ``("ab", "c")`` and
    ``("a", "bc")`` apart: a provider name never contains one)."""
    message = f"{provider}\0{provider_message_id}".encode()
    return hmac.new(key, message, hashlib.sha256).digest()

"""Erasing a contact (GDPR right to erasure): convo's copy, then the providers' copies.

:func:`erase_contact` forgets one person, by phone number, in three steps:

1. the number is normalised to E.164 (:func:`convo.sms.phone.normalize`); one that cannot
   be a phone number raises ``ValueError`` before anything is touched;
2. the store erases, in one transaction, every conversation of that number, every message
   to or from it and its pending long-text fragments
   (:meth:`~convo.store.base.Erasure.erase_contact`). The STOP list is kept: a person who
   opted out stays opted out (GDPR allows keeping what honouring an objection needs). So
   is a tombstone of each erased inbound message (:mod:`convo.store.tombstones`: a keyed
   hash of its provider id, no number or text), for ``[store] seen_retention``: a webhook
   replayed meanwhile is a duplicate, as before erasure, and nobody is texted;
3. what the contact's calls were answered, kept so a retried call webhook gets the same
   answer (``convo.flow.calls``: it holds what the call said, slot values included), is
   sealed: replaced by a hang-up, the claims kept, so a replay after erasure still runs
   nothing and stores nothing. This runs before step 2, which deletes the log that names
   the calls, so an erasure that fails half-way can simply be run again;
4. every provider copy (the ``(provider, provider_message_id)`` of an erased message) is
   deleted at its provider when the adapter can
   (:class:`~convo.providers.base.DeletesMessages`: Telefoon SMS, Telefonie SMS), at most
   :data:`MAX_CONCURRENT_DELETES` at a time. A copy whose provider cannot delete messages
   (Vonage, Enco, the sandbox) or is no longer configured is listed in
   ``kept_by_provider``, so the operator knows to ask that provider another way. A failed
   deletion is listed in ``failed`` with its error, and the others go on.

The store goes first: our own copy is the one we answer for, and it must go even when a
provider is down. Once it is gone, the report is the only list of the provider ids, so a
deletion that failed is retried from the report (``failed``), not by erasing again.

Limits: a turn, or a send the outbox has already claimed, running at the very moment of
erasure may still write or send after it; erase when the person's conversations are over,
or erase again. Call recordings kept by a voice provider are not covered here.

Logs: the number and the counts at INFO, provider ids of failed deletions at WARNING; never
a message text.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from convo.exceptions import InvalidNumber
from convo.providers.base import DeletesMessages, SmsProvider
from convo.sms.phone import normalize
from convo.store.base import Erasure, IdempotentRequests, MessageLog, MessageQuery
from convo.voice import codec
from convo.voice.instructions import Hangup

log = logging.getLogger("convo.erasure")

#: Messages read per page when looking for the contact's calls.
CALLS_PAGE = 500


class ErasableStore(Erasure, MessageLog, IdempotentRequests, Protocol):
    """What erasing needs of a store: the erasure itself, the log that names the contact's
    calls, and the answers stored for those calls."""


#: Provider deletions in flight at once: fast enough for a long history, gentle on the API.
MAX_CONCURRENT_DELETES = 4


@dataclass(frozen=True, slots=True)
class ErasureReport:
    """What :func:`erase_contact` did. ``sessions``, ``messages`` and ``fragments`` count
    what the store removed, ``contact`` says whether it had a contact record; ``deleted``
    lists the ``(provider, provider_message_id)`` copies deleted at their provider,
    ``failed`` those whose deletion failed, with the error ``(provider,
    provider_message_id, error)``, and ``kept_by_provider`` those whose provider cannot
    delete messages (or is not configured)."""

    number: str
    sessions: int = 0
    messages: int = 0
    fragments: int = 0
    deleted: tuple[tuple[str, str], ...] = ()
    failed: tuple[tuple[str, str, str], ...] = ()
    kept_by_provider: tuple[tuple[str, str], ...] = ()
    contact: bool = False  # whether a contact record (name, fields, ...) was deleted

    def to_json(self) -> dict[str, Any]:
        """The admin API's answer to ``DELETE /api/contacts/{number}``."""
        return {
            "number": self.number,
            "sessions": self.sessions,
            "messages": self.messages,
            "fragments": self.fragments,
            "provider_deleted": len(self.deleted),
            "provider_failed": [
                {"provider": provider, "provider_message_id": message_id, "error": error}
                for provider, message_id, error in self.failed
            ],
            "kept_by_provider": len(self.kept_by_provider),
            "contact": self.contact,
        }

    def describe(self) -> str:
        """The report for a person (``convo erase``): counts first, then each copy still
        at a provider."""
        lines = [
            f"erased {self.number}: {self.sessions} conversation(s), {self.messages} "
            f"message(s), {self.fragments} long-text fragment(s)"
            + (", its contact record" if self.contact else ""),
            f"provider copies: {len(self.deleted)} deleted, {len(self.failed)} failed, "
            f"{len(self.kept_by_provider)} kept by a provider that cannot delete them",
        ]
        lines += [f"failed: {p} {i}: {error}" for p, i, error in self.failed]
        lines += [f"kept: {p} {i}" for p, i in self.kept_by_provider]
        return "\n".join(lines)


def e164(number: str) -> str:
    """``number`` in E.164; ``ValueError`` saying why when it cannot be a phone number."""
    try:
        return normalize(number)
    except InvalidNumber as exc:
        raise ValueError(f"cannot erase: {exc}") from None


async def erase_contact(
    store: ErasableStore, providers: Mapping[str, SmsProvider], number: str
) -> ErasureReport:
    """Erase ``number`` from ``store``, then its copies at ``providers`` (keyed by the
    provider name the messages carry); see the module docstring. Raises ``ValueError`` for
    a number that cannot be a phone number (nothing erased) and ``StoreError`` when the
    store fails (nothing erased either: one transaction). Provider failures never raise:
    they are in the report's ``failed``."""
    contact = e164(number)
    await _seal_calls(store, contact)
    erased = await store.erase_contact(contact)
    deletable: list[tuple[DeletesMessages, str]] = []
    kept: list[tuple[str, str]] = []
    for name, message_id in erased.provider_copies:
        provider = providers.get(name)
        if isinstance(provider, DeletesMessages):
            deletable.append((provider, message_id))
        else:
            kept.append((name, message_id))
    errors = await _delete(deletable)
    outcomes = [(p.name, i, e) for (p, i), e in zip(deletable, errors, strict=True)]
    report = ErasureReport(
        number=contact,
        sessions=erased.sessions,
        messages=erased.messages,
        fragments=erased.fragments,
        deleted=tuple((p, i) for p, i, e in outcomes if e is None),
        failed=tuple((p, i, e) for p, i, e in outcomes if e is not None),
        kept_by_provider=tuple(kept),
        contact=erased.contact,
    )
    log.info(
        "erased %s: %d session(s), %d message(s), %d fragment(s); provider copies: "
        "%d deleted, %d failed, %d kept by the provider",
        contact,
        report.sessions,
        report.messages,
        report.fragments,
        len(report.deleted),
        len(report.failed),
        len(report.kept_by_provider),
    )
    return report


async def _seal_calls(store: ErasableStore, contact: str) -> int:
    """Seal what each of ``contact``'s calls was answered (module docstring, step 3)."""
    calls: set[tuple[str, str]] = set()
    page = 1
    while True:
        query = MessageQuery(number=contact, page=page, page_size=CALLS_PAGE)
        found, total = await store.list_messages(query)
        calls.update(
            (m.provider, m.metadata["call_id"])
            for m in found
            if m.channel == "voice" and m.metadata.get("call_id")
        )
        if not found or page * CALLS_PAGE >= total:
            break
        page += 1
    hangup = codec.dumps([Hangup()])
    sealed = 0
    for provider, call_id in sorted(calls):
        sealed += await store.seal_requests(codec.call_key(provider, call_id), hangup)
    return sealed


async def _delete(copies: Sequence[tuple[DeletesMessages, str]]) -> list[str | None]:
    """Delete each copy at its provider; per copy, None or the error that stopped it."""
    slots = asyncio.Semaphore(MAX_CONCURRENT_DELETES)

    async def delete(provider: DeletesMessages, message_id: str) -> str | None:
        async with slots:
            try:
                await provider.delete_message(message_id)
            # Any error, not only ProviderError: the store has already forgotten these ids,
            # so one copy's failure must end up in the report, never lose the others.
            except Exception as exc:
                log.warning("erasure: %s did not delete %s: %s", provider.name, message_id, exc)
                return str(exc) or type(exc).__name__
        return None

    return list(await asyncio.gather(*(delete(p, i) for p, i in copies)))

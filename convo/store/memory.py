"""An in-memory :class:`~convo.store.base.Store`: plain dicts, for tests and ``memory://``.

It is the reference for what every backend does, and the SQLite store's contract tests run
the same suite against it. Two things make it behave like a real database rather than a
dict of shared objects:

* Sessions are copied on the way in and out (``params`` and ``slots`` through JSON), so a
  caller mutating a loaded :class:`~convo.models.Session` changes nothing until it calls
  ``save_turn``, and values that a durable store could not keep (a ``date``, a set) fail
  here too, with the same :class:`~convo.exceptions.StoreError`.
* Every method runs without awaiting, so on one event loop each call (``save_turn``
  included) is atomic; ``save_turn`` checks everything before it changes anything.

Nothing survives the process: use SQLite for anything you want to keep.
"""

from __future__ import annotations

import dataclasses
import json
import operator
import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, ClassVar

from convo.exceptions import StoreError
from convo.models import (
    ConversationKey,
    ConversationStatus,
    Direction,
    MessageRecord,
    MessageStatus,
    Session,
)
from convo.store.base import (
    CLAIM_LEASE,
    SENT_STATUSES,
    ConversationQuery,
    ConversationRow,
    ErasedContact,
    MessageQuery,
    SendOutcome,
    SessionCount,
    StepCount,
)
from convo.store.checks import (
    check_call_log,
    check_fragment,
    check_inbound,
    check_outbound,
    check_query,
)
from convo.store.locks import LocalLocks
from convo.store.memory_campaigns import MemoryCampaigns
from convo.store.memory_contacts import MemoryContacts
from convo.store.memory_flow_sources import MemoryFlowSources
from convo.store.tombstones import new_key, tombstone

_PENDING = frozenset({MessageStatus.QUEUED, MessageStatus.SENDING})


def _encode(session: Session) -> tuple[Session, str]:
    """What the store keeps: the session and its params and slots as one JSON text, so a
    caller's later changes never reach the store and non-JSON data fails as in SQLite."""
    try:
        data = json.dumps((session.params, session.slots))
    except (TypeError, ValueError) as exc:
        raise StoreError(f"session {session.key}: params/slots must be JSON data ({exc})") from None
    return session, data


# Session's fields in declaration order: Session(*_FIELDS(s)) is a shallow copy at a third
# of the cost of dataclasses.replace (every field but params and slots is immutable).
_FIELDS = operator.attrgetter(*(f.name for f in dataclasses.fields(Session)))


def _decode(kept: tuple[Session, str]) -> Session:
    session, data = kept
    fresh = Session(*_FIELDS(session))
    fresh.params, fresh.slots = json.loads(data)
    return fresh


def _enters_step(stored: tuple[Session, str] | None, session: Session) -> bool:
    """Whether saving ``session`` over ``stored`` is a step visit (``save_turn``)."""
    if stored is None:
        return True
    old = stored[0]
    return (
        old.flow != session.flow
        or old.step != session.step
        or (old.status is ConversationStatus.ENDED and session.status is not old.status)
    )


class _Group:
    """A long text's parts kept so far, with what its first part said."""

    __slots__ = ("contact", "first_at", "parts", "total")

    def __init__(self, total: int, first_at: float, contact: str) -> None:
        self.total = total
        self.first_at = first_at
        self.contact = contact
        self.parts: dict[int, str] = {}  # part number -> text

    def texts(self) -> list[str]:
        return [self.parts[i] for i in sorted(self.parts)]


class MemoryStore(MemoryContacts, MemoryCampaigns, MemoryFlowSources):
    """A complete store in process memory. ``open`` and ``close`` do nothing."""

    shared: ClassVar[bool] = False  # one process: its conversation locks are LocalLocks

    def __init__(self) -> None:
        MemoryContacts.__init__(self)
        MemoryCampaigns.__init__(self)
        MemoryFlowSources.__init__(self)
        self._sessions: dict[ConversationKey, tuple[Session, str]] = {}
        self._messages: dict[str, MessageRecord] = {}
        self._seq: dict[str, int] = {}  # insertion order: ties on created_at keep it
        self._next_seq = 0
        self._inbox: dict[str, None] = {}  # unprocessed inbound ids (an ordered set)
        self._outbox: dict[str, None] = {}  # queued/sending outbound ids
        # The same ids by recipient (line, contact): what claim_next looks at.
        self._outbox_of: dict[tuple[str, str], dict[str, None]] = {}
        self._inbound_by_pid: dict[tuple[str, str], str] = {}  # dedupe
        self._by_pid: dict[tuple[str, str], list[str]] = {}  # lookup, any direction
        self._delivered_parts: dict[str, set[str]] = {}  # message id -> its delivered parts
        self._suppressed: set[tuple[str, str]] = set()
        self._fragments: dict[str, _Group] = {}
        self._seen: dict[tuple[str, str], float] = {}
        # Erased inbound ids, as keyed hashes under this store's own key -> erased at.
        self._tombstone_key = new_key()
        self._tombstones: dict[bytes, float] = {}
        self._locks = LocalLocks()  # one process holds this store: its locks suffice
        # Step visits (save_turn): key, flow, step, the conversation's start, when.
        self._visits: list[tuple[ConversationKey, str, str, float, float]] = []

    def __repr__(self) -> str:
        return f"<MemoryStore sessions={len(self._sessions)} messages={len(self._messages)}>"

    # -- lifecycle -------------------------------------------------------------------------

    def lock(self, key: ConversationKey) -> AbstractAsyncContextManager[None]:
        """The conversation's turn lock, for this process (``ConversationLocks``)."""
        return self._locks.lock(key)

    async def open(self) -> None:
        """Nothing to connect to."""

    async def ping(self) -> bool:
        return True

    async def writable(self) -> bool:
        return True

    async def close(self) -> None:
        """Nothing to release; the data stays until the object is dropped."""

    # -- sessions --------------------------------------------------------------------------

    async def get_session(self, key: ConversationKey) -> Session | None:
        stored = self._sessions.get(key)
        return None if stored is None else _decode(stored)

    async def load_turn(self, key: ConversationKey) -> tuple[Session | None, bool]:
        return await self.get_session(key), (key.line, key.contact) in self._suppressed

    async def sessions_of(self, contact: str) -> list[Session]:
        found = [_decode(kept) for k, kept in self._sessions.items() if k.contact == contact]
        found.sort(key=lambda s: (s.key.line, s.key.channel))
        return found

    async def save_turn(
        self,
        session: Session,
        *,
        inbound_id: str | None = None,
        outbound: Sequence[MessageRecord] = (),
        suppressed: bool | None = None,
        call_log: Sequence[MessageRecord] = (),
    ) -> None:
        """Upsert ``session``, mark ``inbound_id`` processed (an unknown id is ignored), log
        ``outbound`` and ``call_log`` and set the suppression; raises StoreError, changing
        nothing, when the session holds non-JSON data or a message id is already taken."""
        check_outbound(outbound)
        check_call_log(call_log)
        kept = _encode(Session(*_FIELDS(session)))
        self._check_new([*outbound, *call_log])
        if _enters_step(self._sessions.get(session.key), session):
            self._visits.append(
                (session.key, session.flow, session.step, session.created_at, session.updated_at)
            )
        self._sessions[session.key] = kept
        if inbound_id is not None:
            self._inbox.pop(inbound_id, None)
        self._insert(outbound)
        self._insert(call_log)  # neither in the inbox nor (delivered) in the outbox
        if suppressed is not None:
            await self.set_suppressed(session.key.line, session.key.contact, suppressed)

    async def due_timers(self, now: float, limit: int = 100) -> list[ConversationKey]:
        due = [
            (s.timer_due, k.line, k.channel, k.contact, k)
            for k, (s, _) in self._sessions.items()
            if s.status is ConversationStatus.ACTIVE
            and s.timer_due is not None
            and s.timer_due <= now
        ]
        due.sort(key=lambda d: d[:4])
        return [d[4] for d in due[: max(limit, 0)]]

    async def session_counts(self) -> list[SessionCount]:
        counts: dict[tuple[str, str, str, ConversationStatus], list[int]] = {}
        for s, _ in self._sessions.values():
            if s.status is ConversationStatus.ENDED:
                continue
            both = counts.setdefault((s.flow, s.flow_version, s.step, s.status), [0, 0])
            both[0] += 1
            both[1] += s.timer_due is not None and s.status is ConversationStatus.ACTIVE
        ordered = sorted(counts.items(), key=lambda item: (*item[0][:3], item[0][3].value))
        return [SessionCount(*group, *both) for group, both in ordered]

    # -- message log -----------------------------------------------------------------------

    async def add_inbound(self, record: MessageRecord) -> bool:
        """False, storing nothing, when the id or the non-empty ``(provider,
        provider_message_id)`` of an inbound message is already known, or tombstoned."""
        check_inbound(record)
        if record.id in self._messages:
            return False
        pid = (record.provider, record.provider_message_id)
        if record.provider_message_id and (
            pid in self._inbound_by_pid or tombstone(self._tombstone_key, *pid) in self._tombstones
        ):
            return False
        self._insert([record])
        self._inbox[record.id] = None
        return True

    async def add_outbound(self, records: Sequence[MessageRecord]) -> None:
        """Log outbound messages; StoreError (nothing logged) when an id is already taken."""
        check_outbound(records)
        self._check_new(records)
        self._insert(records)

    async def unprocessed_inbound(self, limit: int = 100) -> list[MessageRecord]:
        return self._oldest(self._inbox, limit)

    async def unprocessed_of(self, key: ConversationKey, limit: int = 100) -> list[MessageRecord]:
        mine = (
            i
            for i in self._inbox
            if (m := self._messages[i]).contact == key.contact
            and m.line == key.line
            and m.channel == key.channel
        )
        return self._oldest(mine, limit)

    async def mark_processed(self, message_id: str) -> None:
        """An unknown or already processed id is ignored."""
        self._inbox.pop(message_id, None)

    async def pending_outbound(self, limit: int = 100) -> list[MessageRecord]:
        return self._oldest(self._outbox, limit)

    async def outbox_depth(self) -> int:
        return len(self._outbox)

    async def update_message(
        self,
        message_id: str,
        *,
        status: MessageStatus | None = None,
        provider: str | None = None,
        provider_message_id: str | None = None,
        segments: int | None = None,
        price: float | None = None,
        error: str | None = None,
        forward_only: bool = False,
    ) -> MessageRecord | None:
        """Changes also ``updated_at``. StoreError when the new provider id of an inbound
        message is another inbound message's."""
        old = self._messages.get(message_id)
        if old is None:
            return None
        if forward_only and status is not None and status.rank <= old.status.rank:
            status = None
        changes: dict[str, Any] = {
            name: value
            for name, value in (
                ("status", status),
                ("provider", provider),
                ("provider_message_id", provider_message_id),
                ("segments", segments),
                ("price", price),
                ("error", error),
            )
            if value is not None
        }
        new = dataclasses.replace(old, **changes, updated_at=time.time())
        old_pid = (old.provider, old.provider_message_id)
        new_pid = (new.provider, new.provider_message_id)
        if new_pid != old_pid:
            inbound = new.direction is Direction.INBOUND
            if inbound and new_pid[1] and new_pid in self._inbound_by_pid:
                raise StoreError(
                    f"message {message_id}: inbound provider id {new_pid[1]!r} of "
                    f"{new_pid[0]!r} is already another message's"
                )
            self._unindex(old)
            self._index(new)
        self._messages[message_id] = new
        self._track(new)
        return new

    async def due_outbound(self, now: float, limit: int = 100) -> list[MessageRecord]:
        heads = [self._head(ids) for ids in self._outbox_of.values()]
        return self._oldest((h.id for h in heads if h.next_attempt_at <= now), limit)

    async def claim_next(
        self, line: str, contact: str, now: float, *, lease: float = CLAIM_LEASE
    ) -> MessageRecord | None:
        ids = self._outbox_of.get((line, contact))
        if not ids:
            return None
        head = self._head(ids)
        if head.next_attempt_at > now:
            return None
        claimed = dataclasses.replace(
            head,
            status=MessageStatus.SENDING,
            attempts=head.attempts + 1,
            next_attempt_at=now + lease,
            updated_at=time.time(),
        )
        self._messages[head.id] = claimed
        return claimed

    async def record_outcome(
        self, outcome: SendOutcome, *, claim_at: float | None = None, lease: float = CLAIM_LEASE
    ) -> tuple[MessageRecord | None, MessageRecord | None]:
        """Atomic as every method here: neither step awaits anything but this store."""
        updated = await self.update_message(
            outcome.message_id, status=outcome.status, forward_only=True, **outcome.fields()
        )
        if updated is None or claim_at is None:
            return updated, None
        return updated, await self.claim_next(updated.line, updated.contact, claim_at, lease=lease)

    async def release_claims(self, now: float) -> int:
        claimed = [
            r
            for r in (self._messages[i] for i in self._outbox)
            if r.status is MessageStatus.SENDING and r.next_attempt_at > now
        ]
        for record in claimed:
            self._messages[record.id] = dataclasses.replace(record, next_attempt_at=now)
        return len(claimed)

    async def defer_message(
        self, message_id: str, *, until: float, error: str
    ) -> MessageRecord | None:
        old = self._messages.get(message_id)
        if old is None or old.status is not MessageStatus.SENDING:
            return old
        new = dataclasses.replace(
            old,
            status=MessageStatus.QUEUED,
            next_attempt_at=until,
            error=error,
            updated_at=time.time(),
        )
        self._messages[message_id] = new
        return new

    async def dead_letters(
        self, page: int = 1, page_size: int = 50
    ) -> tuple[list[MessageRecord], int]:
        return await self.list_messages(
            MessageQuery(Direction.OUTBOUND, MessageStatus.DEAD, page=page, page_size=page_size)
        )

    async def requeue_dead(self, now: float, message_ids: Sequence[str] | None = None) -> list[str]:
        wanted = self._messages.keys() if message_ids is None else message_ids
        dead = [
            r
            for r in (self._messages.get(i) for i in dict.fromkeys(wanted))
            if r is not None
            and r.direction is Direction.OUTBOUND
            and r.status is MessageStatus.DEAD
        ]
        dead.sort(key=lambda r: (r.created_at, self._seq[r.id]))
        for record in dead:
            self._messages[record.id] = new = dataclasses.replace(
                record,
                status=MessageStatus.QUEUED,
                attempts=0,
                next_attempt_at=0.0,
                requeued_at=now,
                updated_at=time.time(),
            )
            self._track(new)
        return [r.id for r in dead]

    async def get_message(self, message_id: str) -> MessageRecord | None:
        return self._messages.get(message_id)

    async def find_message(self, provider: str, provider_message_id: str) -> MessageRecord | None:
        """When both directions carry the id, the outbound message (delivery reports are
        what look messages up this way); then the newest. An empty id finds nothing."""
        ids = self._by_pid.get((provider, provider_message_id)) if provider_message_id else None
        if not ids:
            return None
        records = [self._messages[i] for i in ids]
        return max(records, key=lambda r: (r.direction is Direction.OUTBOUND, self._seq[r.id]))

    async def last_sent_to(self, line: str, contact: str, since: float) -> float | None:
        times = [
            r.created_at
            for r in self._messages.values()
            if r.contact == contact and r.line == line and r.direction is Direction.OUTBOUND
            and r.status in SENT_STATUSES and r.created_at >= since
        ]  # fmt: skip
        return max(times, default=None)

    async def add_delivered_part(self, message_id: str, part_id: str) -> int:
        if message_id not in self._messages:
            raise StoreError(f"delivered part {part_id!r}: no message {message_id}")
        parts = self._delivered_parts.setdefault(message_id, set())
        parts.add(part_id)
        return len(parts)

    async def list_messages(self, query: MessageQuery) -> tuple[list[MessageRecord], int]:
        """ValueError for a page or page size below 1."""
        check_query(query)
        found = [
            r
            for r in self._messages.values()
            if (query.direction is None or r.direction == query.direction)
            and (query.status is None or r.status == query.status)
            and (query.number is None or r.contact == query.number)
        ]
        found.sort(key=lambda r: (r.created_at, self._seq[r.id]), reverse=True)
        start = (query.page - 1) * query.page_size
        return found[start : start + query.page_size], len(found)

    # -- reports ---------------------------------------------------------------------------

    async def list_conversations(
        self, query: ConversationQuery
    ) -> tuple[list[ConversationRow], int]:
        """ValueError for a page or page size below 1."""
        check_query(query)
        found = [
            s
            for s, _ in self._sessions.values()
            if (query.flow is None or s.flow == query.flow)
            and (query.step is None or s.step == query.step)
            and (query.status is None or s.status is query.status)
            and (query.line is None or s.key.line == query.line)
        ]
        found.sort(key=lambda s: (s.updated_at, s.key.line, s.key.channel, s.key.contact))
        found.reverse()
        start = (query.page - 1) * query.page_size
        page = found[start : start + query.page_size]
        wanted = {(s.key.line, s.key.contact) for s in page}
        last: dict[tuple[str, str], MessageRecord] = {}
        for record in self._messages.values():  # in the order they were logged
            pair = (record.line, record.contact)
            if pair in wanted and (pair not in last or record.created_at >= last[pair].created_at):
                last[pair] = record
        rows = [
            ConversationRow(_decode(self._sessions[s.key]), last.get((s.key.line, s.key.contact)))
            for s in page
        ]
        return rows, len(found)

    async def step_counts(
        self, flow: str, since: float, until: float, *, idle_before: float
    ) -> list[StepCount]:
        reached: dict[str, set[tuple[ConversationKey, float]]] = {}
        for key, visited_flow, step, started, at in self._visits:
            if visited_flow == flow and since <= at < until:
                reached.setdefault(step, set()).add((key, started))
        ended: dict[str, int] = {}
        abandoned: dict[str, int] = {}
        for s, _ in self._sessions.values():
            if s.flow != flow or not since <= s.updated_at < until:
                continue
            if s.status is ConversationStatus.ENDED:
                ended[s.step] = ended.get(s.step, 0) + 1
            elif s.status is ConversationStatus.ACTIVE and s.updated_at < idle_before:
                abandoned[s.step] = abandoned.get(s.step, 0) + 1
        return [
            StepCount(step, len(reached.get(step, ())), ended.get(step, 0), abandoned.get(step, 0))
            for step in sorted({*reached, *ended, *abandoned})
        ]

    async def prune_step_visits(self, older_than: float) -> int:
        before = len(self._visits)
        self._visits = [v for v in self._visits if v[4] >= older_than]
        return before - len(self._visits)

    # -- suppressions ----------------------------------------------------------------------

    async def set_suppressed(self, line: str, contact: str, suppressed: bool) -> None:
        if suppressed:
            self._suppressed.add((line, contact))
        else:
            self._suppressed.discard((line, contact))

    async def is_suppressed(self, line: str, contact: str) -> bool:
        return (line, contact) in self._suppressed

    # -- fragments -------------------------------------------------------------------------

    async def add_fragment(
        self, group: str, index: int, total: int, text: str, now: float, *, contact: str
    ) -> list[str] | None:
        """A later part outside the group's total (its first part's) is ignored."""
        check_fragment(group, index, total)
        kept = self._fragments.get(group)
        if kept is None:
            kept = self._fragments[group] = _Group(total, now, contact)
        if index > kept.total:
            return None
        kept.parts.setdefault(index, text)
        return kept.texts() if len(kept.parts) == kept.total else None

    async def expired_fragments(self, older_than: float) -> list[tuple[str, list[str]]]:
        expired = sorted(
            (kept.first_at, group)
            for group, kept in self._fragments.items()
            if kept.first_at < older_than
        )
        return [(group, self._fragments[group].texts()) for _, group in expired]

    async def finish_fragments(self, group: str) -> None:
        self._fragments.pop(group, None)

    # -- seen tokens -----------------------------------------------------------------------

    async def seen(self, namespace: str, token: str, now: float) -> bool:
        if (namespace, token) in self._seen:
            return True
        self._seen[(namespace, token)] = now
        return False

    async def was_seen(self, namespace: str, token: str) -> bool:
        return (namespace, token) in self._seen

    async def prune_seen(self, older_than: float) -> int:
        """Seen tokens, tombstones and idempotent requests alike."""
        old = [k for k, at in self._seen.items() if at < older_than]
        for k in old:
            del self._seen[k]
        dead = [t for t, at in self._tombstones.items() if at < older_than]
        for t in dead:
            del self._tombstones[t]
        return len(old) + len(dead) + self._prune_requests(older_than)

    # -- internals -------------------------------------------------------------------------

    def _check_new(self, records: Sequence[MessageRecord]) -> None:
        """StoreError for an id that is taken, or given twice."""
        ids = [r.id for r in records]
        taken = [i for i in ids if i in self._messages]
        if taken or len(set(ids)) != len(ids):
            dup = taken[0] if taken else next(i for i in ids if ids.count(i) > 1)
            raise StoreError(f"message id {dup} is already in the log")

    def _insert(self, records: Iterable[MessageRecord]) -> None:
        for record in records:
            self._messages[record.id] = record
            self._seq[record.id] = self._next_seq
            self._next_seq += 1
            self._index(record)
            self._track(record)

    def _track(self, record: MessageRecord) -> None:
        """Keep the outbox's indexes in step with ``record``'s status."""
        if record.direction is not Direction.OUTBOUND:
            return
        recipient = (record.line, record.contact)
        if record.status in _PENDING:
            self._outbox[record.id] = None
            self._outbox_of.setdefault(recipient, {})[record.id] = None
            return
        self._outbox.pop(record.id, None)
        self._untrack(recipient, record.id)

    def _untrack(self, recipient: tuple[str, str], message_id: str) -> None:
        ids = self._outbox_of.get(recipient)
        if ids is not None:
            ids.pop(message_id, None)
            if not ids:
                del self._outbox_of[recipient]

    def _head(self, ids: Iterable[str]) -> MessageRecord:
        """The oldest of ``ids`` (pending messages of one recipient)."""
        return min((self._messages[i] for i in ids), key=lambda r: (r.created_at, self._seq[r.id]))

    def _index(self, record: MessageRecord) -> None:
        if not record.provider_message_id:
            return
        pid = (record.provider, record.provider_message_id)
        self._by_pid.setdefault(pid, []).append(record.id)
        if record.direction is Direction.INBOUND:
            self._inbound_by_pid[pid] = record.id

    def _unindex(self, record: MessageRecord) -> None:
        if not record.provider_message_id:
            return
        pid = (record.provider, record.provider_message_id)
        ids = self._by_pid.get(pid, [])
        if record.id in ids:
            ids.remove(record.id)
        if not ids:
            self._by_pid.pop(pid, None)
        if self._inbound_by_pid.get(pid) == record.id:
            del self._inbound_by_pid[pid]

    def _oldest(self, ids: Iterable[str], limit: int) -> list[MessageRecord]:
        records = [self._messages[i] for i in ids]
        records.sort(key=lambda r: (r.created_at, self._seq[r.id]))
        return records[: max(limit, 0)]

    # -- erasure ---------------------------------------------------------------------------

    async def erase_contact(self, contact: str) -> ErasedContact:
        """See :meth:`convo.store.base.Erasure.erase_contact`; suppressions are kept. No
        await inside: atomic on the event loop, like every method here."""
        now = time.time()
        keys = [k for k in self._sessions if k.contact == contact]
        # _messages keeps insertion order: this is the order the messages were logged in.
        ids = [i for i, r in self._messages.items() if r.contact == contact]
        groups = [g for g, kept in self._fragments.items() if kept.contact == contact]
        copies: dict[tuple[str, str], None] = {}  # an ordered set: each pair once
        for message_id in ids:
            record = self._messages.pop(message_id)
            if record.provider_message_id:
                pid = (record.provider, record.provider_message_id)
                copies[pid] = None
                if record.direction is Direction.INBOUND:
                    self._tombstones[tombstone(self._tombstone_key, *pid)] = now
            self._unindex(record)
            del self._seq[message_id]
            self._inbox.pop(message_id, None)
            self._outbox.pop(message_id, None)
            self._untrack((record.line, record.contact), message_id)
            self._delivered_parts.pop(message_id, None)
        for key in keys:
            del self._sessions[key]
        self._visits = [v for v in self._visits if v[0].contact != contact]
        parts = sum(len(self._fragments.pop(group).parts) for group in groups)
        self._erase_recipients(contact)
        had_contact = self._contacts.pop(contact, None) is not None
        return ErasedContact(len(keys), len(ids), parts, tuple(copies), had_contact)

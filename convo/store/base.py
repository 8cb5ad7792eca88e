"""What convo needs from a store, as a few small protocols.

A store keeps five things, each behind its own protocol so a backend can be read one concept
at a time:

* :class:`SessionStore`  where each conversation is (``Session``), and its durable timers;
* :class:`MessageLog`    every inbound and outbound message; queued outbound messages are the
                         outbox, inbound messages not yet processed are the inbox;
* :class:`Suppressions`  contacts who opted out of a line (STOP ... START);
* :class:`Fragments`     parts of a long inbound text that arrive separately, kept until all
                         are in;
* :class:`SeenTokens`    tokens already seen (provider message ids), to drop a provider's
                         retries, kept for a retention period and then pruned;
* :class:`Contacts`      what the business knows of each number (name, language, time zone,
                         its own fields);
* :class:`IdempotentRequests`  admin API requests already answered, by ``Idempotency-Key``,
                         so a retried request does nothing twice; pruned with the seen tokens.
* :class:`Reports`       what an operator reads: pages of conversations with their last
                         message, and per flow step how many conversations reached it,
                         ended or were abandoned there (from the step visits ``save_turn``
                         records).
* :class:`FlowSources`   the source of every flow version loaded, so a conversation keeps
                         its version across a restart and between processes.

:class:`Erasure` forgets one contact in sessions, the log and fragments (GDPR right to
erasure), leaving a tombstone (a keyed hash, :mod:`convo.store.tombstones`) of each erased
inbound message's provider id, so that a replay of it is still a duplicate; tombstones are
pruned with the seen tokens. :class:`Store` is all of them plus the conversation lock,
``open``, ``ping``, ``writable`` and ``close``.

The crash-safety contract lives in :meth:`SessionStore.save_turn`: the new session state,
the inbound message being marked processed and the replies being queued happen in **one
transaction**, so after a crash either the whole turn happened (and its replies are in the
outbox) or none of it did (and the inbound message is still unprocessed).

Turn serialisation is part of the store too (:class:`ConversationLocks`, ``store.lock(key)``):
a lock that holds across processes can only come from what those processes share.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

from convo.models import (
    Contact,
    ConversationKey,
    ConversationStatus,
    Direction,
    MessageRecord,
    MessageStatus,
    Session,
)
from convo.store.migrations import SchemaStatus

CLAIM_LEASE = 120.0
"""Seconds a claimed message stays its sender's (:meth:`MessageLog.claim_next`): longer than
a send takes (the provider client gives up after 20 s), so only a sender that died loses
its claims, and they are sent again this long after it claimed them."""


#: The statuses of an outbound message that reached the provider's network.
SENT_STATUSES = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.UNDELIVERED)


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """What became of sending one claimed outbound message, as the outbox records it
    (:meth:`MessageLog.record_outcome`): ``status`` (forward only, as a delivery report's)
    and the fields the provider's answer gave; None leaves a field as it is."""

    message_id: str
    status: MessageStatus
    provider: str
    provider_message_id: str | None = None
    segments: int | None = None
    price: float | None = None
    error: str | None = None

    def fields(self) -> dict[str, Any]:
        """The message fields the outcome sets, as ``update_message``'s keyword arguments
        (besides ``status``)."""
        return {
            "provider": self.provider,
            "provider_message_id": self.provider_message_id,
            "segments": self.segments,
            "price": self.price,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class MessageQuery:
    """Filters and page of :meth:`MessageLog.list_messages`; pages are 1-based."""

    direction: Direction | None = None
    status: MessageStatus | None = None
    number: str | None = None  # matches the contact's number
    page: int = 1
    page_size: int = 50


@dataclass(frozen=True, slots=True)
class SessionCount:
    """How many open conversations (any status but ``ended``) are at one ``step`` of one
    version of a flow, in one status, and how many of them have a timer pending."""

    flow: str
    flow_version: str
    step: str
    status: ConversationStatus
    conversations: int
    timers: int


@dataclass(frozen=True, slots=True)
class ConversationQuery:
    """Filters and page of :meth:`Reports.list_conversations`; pages are 1-based. A filter
    left None matches everything."""

    flow: str | None = None
    step: str | None = None
    status: ConversationStatus | None = None
    line: str | None = None
    page: int = 1
    page_size: int = 50


@dataclass(frozen=True, slots=True)
class ConversationRow:
    """One conversation in a list: its session and the newest message of its line and
    contact (either direction), None when there is none."""

    session: Session
    last_message: MessageRecord | None


@dataclass(frozen=True, slots=True)
class StepCount:
    """One step of a flow over a period (:meth:`Reports.step_counts`): how many
    conversations entered it, how many ended there, and how many were abandoned there
    (still open on it, silent since before the idle limit)."""

    step: str
    reached: int = 0
    ended: int = 0
    abandoned: int = 0


@runtime_checkable
class SessionStore(Protocol):
    async def get_session(self, key: ConversationKey) -> Session | None:
        """The session for ``key``, or None. The returned object is the caller's to mutate."""

    async def load_turn(self, key: ConversationKey) -> tuple[Session | None, bool]:
        """The session for ``key`` and whether its contact is suppressed on its line, in
        one round trip (what every turn reads first)."""

    async def sessions_of(self, contact: str) -> list[Session]:
        """Every session (any line, channel or status) of a contact number."""

    async def save_turn(
        self,
        session: Session,
        *,
        inbound_id: str | None = None,
        outbound: Sequence[MessageRecord] = (),
        suppressed: bool | None = None,
        call_log: Sequence[MessageRecord] = (),
    ) -> None:
        """Atomically: upsert ``session``, mark inbound message ``inbound_id`` processed,
        append ``outbound`` to the message log (they are the outbox while ``queued``), and,
        unless ``suppressed`` is None, opt the session's contact out of (True) or back into
        (False) the session's line, as :meth:`Suppressions.set_suppressed` does: an
        opt-out and its confirmation are stored together or not at all.

        ``call_log`` is what a call turn heard and said (``convo.flow.call_log``): voice
        messages, inbound ``received`` and outbound ``delivered``, appended to the log as
        a record only: never an unprocessed inbound message nor a reply to send.
        ValueError for a record that is not such a message.

        In the same transaction, a **step visit** ``(key, flow, step, session.created_at,
        session.updated_at)`` is recorded when the conversation enters a step: when no
        session was stored for the key, or the stored one was on another flow or step, or
        had ended while this one has not (what :meth:`Reports.step_counts` counts)."""

    async def due_timers(self, now: float, limit: int = 100) -> list[ConversationKey]:
        """Keys of active sessions whose ``timer_due`` is at or before ``now``, oldest first."""

    async def session_counts(self) -> list[SessionCount]:
        """The open conversations (status not ``ended``) counted by flow, flow version,
        step and status, in that order: what metrics report and which flow versions live
        conversations still need. One aggregate query, not a read of every session."""


@runtime_checkable
class MessageLog(Protocol):
    async def add_inbound(self, record: MessageRecord) -> bool:
        """Store an inbound message as unprocessed. Returns False (and stores nothing) when
        an inbound message with the same non-empty ``(provider, provider_message_id)``
        exists, or existed and was erased and its tombstone is not pruned yet
        (:meth:`Erasure.erase_contact`): a replay is a duplicate either way."""

    async def add_outbound(self, records: Sequence[MessageRecord]) -> None:
        """Append outbound messages outside a turn (broadcasts, system replies)."""

    async def unprocessed_inbound(self, limit: int = 100) -> list[MessageRecord]:
        """Inbound messages stored but not yet processed by a turn, oldest first."""

    async def unprocessed_of(self, key: ConversationKey, limit: int = 100) -> list[MessageRecord]:
        """The inbound messages of conversation ``key`` stored but not yet processed, oldest
        first, at most ``limit``. A turn on a store shared by several processes reads it
        under the conversation's lock: its message is turned only if still unprocessed, and
        after the older ones (:meth:`convo.flow.engine.Engine.process`)."""

    async def mark_processed(self, message_id: str) -> None:
        """Mark an inbound message processed without a turn (e.g. dropped, suppressed)."""

    async def pending_outbound(self, limit: int = 100) -> list[MessageRecord]:
        """Outbound messages still ``queued`` or ``sending``, oldest first: the outbox,
        due or not."""

    async def outbox_depth(self) -> int:
        """How many outbound messages are ``queued`` or ``sending``, due or not (what
        :mod:`convo.backpressure` compares with ``[outbox] max_backlog``)."""

    # The outbox's queue. A recipient is one (line, contact): its pending messages leave
    # one at a time, oldest first (``created_at``, then the order they were logged in),
    # and the oldest one blocks the others while it waits for its next attempt.
    # ``next_attempt_at`` says when a message is due: a queued one, once its backoff is
    # over (0: at once); a ``sending`` one, once its claim lapses (its sender died).

    async def due_outbound(self, now: float, limit: int = 100) -> list[MessageRecord]:
        """The oldest pending message of each recipient whose oldest pending message is
        due at ``now`` (``next_attempt_at <= now``), oldest first, at most ``limit``: the
        recipients the outbox has work for. Recipients waiting out a backoff, or being
        sent to, are not in it, however many they are."""

    async def claim_next(
        self, line: str, contact: str, now: float, *, lease: float = CLAIM_LEASE
    ) -> MessageRecord | None:
        """Atomically take the oldest pending outbound message of ``(line, contact)`` for
        sending, if it is due at ``now``: it becomes ``sending``, its ``attempts`` one
        more, its ``next_attempt_at`` ``now + lease`` (when another sender may take it
        over, should this one die), and it is returned. None, changing nothing, when the
        recipient has no pending message or its oldest is not due: two senders never hold
        the same message, and a later message never overtakes an earlier one."""

    async def record_outcome(
        self, outcome: SendOutcome, *, claim_at: float | None = None, lease: float = CLAIM_LEASE
    ) -> tuple[MessageRecord | None, MessageRecord | None]:
        """In one transaction: write ``outcome`` as ``update_message(outcome.message_id,
        ..., forward_only=True)`` does, then, with ``claim_at``, claim the next message of
        the same recipient (the message's ``(line, contact)``) as ``claim_next(line,
        contact, claim_at, lease=lease)`` does. Returns the updated record (None when there
        is no such message, and then nothing is claimed) and the claimed one (None when
        nothing was due, or no claim was asked). The outbox's one round trip between two
        sends to a recipient: record the last, take the next."""

    async def release_claims(self, now: float) -> int:
        """Make every claimed (``sending``) message due at ``now`` again; returns how many
        were not. An outbox calls it when it starts, before it claims anything: the claims
        it finds are its previous run's, whose sender died with it (a crash), and their
        messages are sent again rather than after their lease. Memory and SQLite are held
        by one process, so that is every claim; a store shared by several processes must
        release only the claims of processes that are gone."""

    async def defer_message(
        self, message_id: str, *, until: float, error: str
    ) -> MessageRecord | None:
        """A claimed (``sending``) message goes back to ``queued``, due at ``until``, with
        ``error``: its attempt failed and it waits for the next. A message in any other
        status is left as it is (a report or an operator got there first). Returns the
        record, or None when there is no such message."""

    async def dead_letters(
        self, page: int = 1, page_size: int = 50
    ) -> tuple[list[MessageRecord], int]:
        """One page (1-based) of the ``dead`` outbound messages, newest first, and how many
        there are. ValueError for a page or page size below 1."""

    async def requeue_dead(self, now: float, message_ids: Sequence[str] | None = None) -> list[str]:
        """Send dead letters again: each of ``message_ids`` that is ``dead`` (None: every
        dead letter) becomes ``queued``, due at once, with no attempts and its age counting
        from ``now`` (``requeued_at``); its last error stays. Ids
        that are not dead letters are ignored. Returns the requeued ids, oldest first."""

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
        """Change the given fields (None leaves a field as it is); returns the new record,
        or None if there is no such message. With ``forward_only``, ``status`` is applied
        only when it moves the message forward (a higher ``MessageStatus.rank``), so a late
        or repeated delivery report never undoes a later one; the check and the change are
        one atomic step."""

    async def get_message(self, message_id: str) -> MessageRecord | None:
        """The message with id ``message_id``, or None."""

    async def find_message(self, provider: str, provider_message_id: str) -> MessageRecord | None:
        """The message a provider knows by ``provider_message_id``."""

    async def list_messages(self, query: MessageQuery) -> tuple[list[MessageRecord], int]:
        """One page of the log, newest first, and the total number matching the filters."""

    async def add_delivered_part(self, message_id: str, part_id: str) -> int:
        """Record that part ``part_id`` of outbound message ``message_id`` (a long text
        sent in parts, each with its own delivery receipt) was delivered; returns how many
        distinct parts of it are delivered now. A repeated part counts once. The parts go
        when the message does (erasure)."""

    async def last_sent_to(self, line: str, contact: str, since: float) -> float | None:
        """When (``created_at``) the newest outbound message from ``line`` to ``contact``
        that left us (:data:`SENT_STATUSES`: ``sent``, ``delivered``, ``undelivered``) was
        created, if that is at or after ``since``; else None. Queued, failed and dead
        messages never reached the network, so they do not count
        (:mod:`convo.shared_codes`)."""


@runtime_checkable
class Suppressions(Protocol):
    async def set_suppressed(self, line: str, contact: str, suppressed: bool) -> None:
        """Opt ``contact`` out of ``line`` (True) or back in (False); idempotent. Other
        lines of the same contact are not affected."""

    async def is_suppressed(self, line: str, contact: str) -> bool:
        """True while ``contact`` is opted out of ``line``."""


@runtime_checkable
class Fragments(Protocol):
    async def add_fragment(
        self, group: str, index: int, total: int, text: str, now: float, *, contact: str
    ) -> list[str] | None:
        """Keep part ``index`` (1-based) of ``total`` of ``group``, a text ``contact`` (an
        E.164 number) sent. When all parts are in, return the texts in order (again for a
        retried part, until :meth:`finish_fragments`); otherwise return None. A part that
        was already kept is not kept twice (provider retries). The group's total and contact
        are the ones its first part gave. ``group`` is the caller's name for the group: the
        store compares it and nothing more. ValueError when ``index`` is not within
        1..``total``.

        The group stays until the caller, having stored the joined text, finishes it: a
        crash or a store error in between loses nothing."""

    async def expired_fragments(self, older_than: float) -> list[tuple[str, list[str]]]:
        """Groups whose first part arrived before ``older_than``, with the parts that did
        arrive, in order, oldest first. They stay until :meth:`finish_fragments`."""

    async def finish_fragments(self, group: str) -> None:
        """Forget ``group`` and its parts (its text is stored); nothing if it is gone."""


@runtime_checkable
class SeenTokens(Protocol):
    """Tokens already seen, per namespace: a provider's retry of something already handled
    carries a token seen before. Tokens are kept until :meth:`prune_seen` forgets them (the
    server prunes those older than ``[store] seen_retention``), and so are the tombstones
    erasure leaves (:meth:`Erasure.erase_contact`): both remember ids to drop repeats."""

    async def seen(self, namespace: str, token: str, now: float) -> bool:
        """Record ``token`` in ``namespace`` at time ``now``; True if it was recorded
        before (and not pruned since), False the first time. Recording it again keeps its
        first time."""

    async def was_seen(self, namespace: str, token: str) -> bool:
        """True if ``token`` was recorded in ``namespace`` (and not pruned since); records
        nothing."""

    async def prune_seen(self, older_than: float) -> int:
        """Forget the tokens recorded before ``older_than``, the tombstones of messages
        erased before it and the requests claimed before it (:class:`IdempotentRequests`);
        returns how many (all together). A forgotten token counts as
        unseen again; a message whose tombstone is forgotten is new again to
        :meth:`MessageLog.add_inbound`."""


@runtime_checkable
class Contacts(Protocol):
    """Contacts by E.164 number (:mod:`convo.contacts` checks them before they get here).
    A contact's ``fields`` must be JSON data (ValueError otherwise, changing nothing)."""

    async def get_contact(self, number: str) -> Contact | None:
        """The contact with E.164 ``number``, or None."""

    async def put_contact(self, contact: Contact) -> bool:
        """Create or replace the contact with ``contact.number``; True when it is new."""

    async def put_contacts(self, contacts: Sequence[Contact]) -> int:
        """Create or replace many contacts in one transaction (an import's batch; a number
        given twice: the later one stays). Returns how many were new."""

    async def delete_contact(self, number: str) -> bool:
        """Forget the contact with ``number``; True when there was one."""


SEALED = "sealed"
"""The fingerprint of a request :meth:`IdempotentRequests.seal_requests` sealed."""


@dataclass(frozen=True, slots=True)
class StoredRequest:
    """A request :meth:`IdempotentRequests.claim_request` found claimed already: its
    ``fingerprint`` (what was asked) and ``answer`` (None while the first one is still
    being handled, or when it never finished)."""

    fingerprint: str
    answer: str | None


@runtime_checkable
class IdempotentRequests(Protocol):
    """Requests that carried an ``Idempotency-Key``, with what they were answered."""

    async def claim_request(self, key: str, fingerprint: str, now: float) -> StoredRequest | None:
        """Atomically claim ``key`` for a request with ``fingerprint`` (a digest of what it
        asks) at time ``now``: None when the key is new (the caller handles the request,
        then calls :meth:`settle_request`), else what is stored under it. Claims are
        pruned with the seen tokens (:meth:`SeenTokens.prune_seen`)."""

    async def settle_request(self, key: str, answer: str | None) -> None:
        """Store ``answer`` (the response a retry gets) for claimed ``key``; None drops the
        claim instead, so the request may be made again (it failed and did nothing)."""

    async def seal_requests(self, prefix: str, answer: str) -> int:
        """Replace what every claimed request whose key starts with ``prefix`` was answered
        by ``answer`` (its fingerprint too), keeping the claims: a repeat still runs
        nothing and now gets ``answer``. How erasure forgets what a call was answered
        (``convo.erasure``). Returns how many were sealed."""


@runtime_checkable
class Reports(Protocol):
    """What the web console reads: paged, filtered, and cheap on a large store."""

    async def list_conversations(
        self, query: ConversationQuery
    ) -> tuple[list[ConversationRow], int]:
        """One page of the conversations matching the filters, the most recently updated
        first (ties: line, channel, contact, descending), and how many match. ValueError
        for a page or page size below 1."""

    async def step_counts(
        self, flow: str, since: float, until: float, *, idle_before: float
    ) -> list[StepCount]:
        """Per step of ``flow`` (steps with a count only, sorted by name): ``reached``,
        the distinct conversations that entered it (a step visit at ``since <= at <
        until``); ``ended``, the conversations ended on it with their last change in that
        period; ``abandoned``, those still active on it whose last change is in that
        period and before ``idle_before``."""

    async def prune_step_visits(self, older_than: float) -> int:
        """Forget the step visits made before ``older_than``; returns how many. The
        reports count nothing before that time any more."""


@dataclass(frozen=True, slots=True)
class FlowSource:
    """One version of a flow as it was loaded: the text of its file and the file's name
    (for messages). ``version`` is the flow's content hash (``FlowSpec.version``)."""

    flow: str
    version: str
    name: str
    text: str


@runtime_checkable
class FlowSources(Protocol):
    """The sources of the flow versions loaded (:mod:`convo.flow.versions`): a process that
    lacks a conversation's version (it restarted, or another process loaded it) reads it
    back from here rather than moving the conversation to the current version.

    Each process marks the versions it runs as current at start, at every reload and
    periodically (:meth:`save_flow_source`); a version is pruned once no process has
    marked it for a while and no open conversation runs on it."""

    async def save_flow_source(self, source: FlowSource, now: float) -> bool:
        """Keep ``source`` (written once: a version's text never changes) and mark it as
        current at ``now``. True when it was not kept before."""

    async def flow_source(self, flow: str, version: str) -> FlowSource | None:
        """The source of version ``version`` of flow ``flow``, or None."""

    async def prune_flow_sources(self, older_than: float) -> int:
        """Forget the versions last marked current before ``older_than`` that no open
        (not ended) conversation runs on; returns how many."""


@dataclass(frozen=True, slots=True)
class ErasedContact:
    """What :meth:`Erasure.erase_contact` removed: how many sessions, messages and pending
    long-text fragments (parts, not groups), and the ``(provider, provider_message_id)`` of
    every erased message that had a provider id, each pair once, in the order the messages
    were logged, so the caller can ask the providers to delete their copies."""

    sessions: int = 0
    messages: int = 0
    fragments: int = 0
    provider_copies: tuple[tuple[str, str], ...] = ()
    contact: bool = False  # whether a contact record (Contacts) was deleted


@runtime_checkable
class Erasure(Protocol):
    """Forgetting a contact (GDPR right to erasure).

    A protocol of its own, not a :class:`MessageLog` method: erasure cuts across sessions,
    the log and fragments in one transaction, and the code that erases (``convo.erasure``,
    the admin API) needs this and nothing else of a store.
    """

    async def erase_contact(self, contact: str) -> ErasedContact:
        """In one transaction, delete everything kept about the E.164 number ``contact``:
        every session (any line, channel or status) and its step visits, every message
        whose contact it is (both directions, any status: a queued reply is not sent any
        more, though one the outbox is already handing to a provider may still go out), the
        pending
        long-text fragments it sent (the groups ``add_fragment`` was given it as
        ``contact``), and its contact record (:class:`Contacts`).

        Suppressions (the STOP list) are **kept**: a person who opted out must stay opted
        out, and GDPR allows keeping what is needed to honour an objection (art. 17(3),
        art. 21). Seen tokens (provider message ids only, no contact) are kept too, and
        pruned as ever.

        In the same transaction, each erased **inbound** message with a provider id leaves
        a tombstone (:func:`convo.store.tombstones.tombstone` under the store's own key,
        created once and kept, and the time of erasure): no number, text or provider id,
        only what :meth:`MessageLog.add_inbound` needs to refuse a replay of the message as
        a duplicate, until :meth:`SeenTokens.prune_seen` forgets it. Outbound messages
        leave none: nothing from outside creates an outbound message (a delivery report
        for an erased one finds nothing and is dropped), and an inbound message may carry
        the id of an outbound one, so a tombstone of it would refuse a message the log
        would have taken.

        An unknown number erases nothing and returns zeros."""


class ConversationLocks(Protocol):
    """Serialises the turns of one conversation (take the lock, then load, advance, save).

    The store provides it, because only the store knows what "one conversation" spans: one
    process for memory and SQLite (:class:`~convo.store.locks.LocalLocks`), every process
    on the database for a shared backend (a PostgreSQL advisory lock, say)."""

    def lock(self, key: ConversationKey) -> AbstractAsyncContextManager[None]: ...


@runtime_checkable
class VersionedSchema(Protocol):
    """A store whose database has a versioned schema (the SQL stores; not memory), for
    ``convo db status|upgrade``. See :mod:`convo.store.migrations`."""

    async def schema_status(self) -> SchemaStatus:
        """The database's schema version against the latest this convo knows."""

    async def upgrade_schema(self) -> SchemaStatus:
        """Apply the missing migrations under the migration lock (safe while other
        processes start or run); returns the status found before. StoreError for a
        database a newer convo wrote."""


@runtime_checkable
class SharedRateLimits(Protocol):
    """Token buckets kept in the store for every process on it (PostgreSQL), so a
    provider's rate limit holds for them together (:mod:`convo.rate_limits`). Stores that
    one process holds (memory, SQLite) leave the buckets to that process."""

    async def take_tokens(self, bucket: str, rate: float, count: int) -> float:
        """Take ``count`` tokens from ``bucket`` (``rate`` tokens a second, bursts up to
        ``max(1, rate)``; created full), atomically and on the store's clock, and return
        how many seconds to wait before using them: 0 when they were there, else until the
        bucket refills them (they are taken at once and nobody else gets them: waiting
        callers queue in the order they asked)."""


TIMER_LEASE = 60.0
"""Seconds a process has the due timers it claimed to itself (:class:`TimerClaims`): a
process that dies leaves them to the others after that."""


@runtime_checkable
class TimerClaims(Protocol):
    """Due timers claimed by one process of several on a shared store (PostgreSQL), so
    two processes never read the same ones. A claim ends when the session is saved (the
    timer fired, or changed) or after ``lease`` seconds. Firing still re-reads the session
    under the conversation's lock, which alone keeps a timer from firing twice."""

    async def claim_due_timers(
        self, now: float, limit: int = 100, *, lease: float = TIMER_LEASE
    ) -> list[ConversationKey]:
        """Like :meth:`SessionStore.due_timers`, leaving out timers another claim holds, and
        claiming those returned until ``now + lease``."""


@runtime_checkable
class Notices(Protocol):
    """Work announced between the processes on a shared store (PostgreSQL LISTEN/NOTIFY),
    so an idle outbox wakes when another process queues messages (``add_outbound``,
    ``requeue_dead``: a broadcast, ``convo outbox retry``) rather than at its next sweep.
    Stores that one process holds have none: that process wakes its own outbox."""

    async def listen(self, wake: Callable[[str], None]) -> None:
        """Call ``wake(topic)`` for each notice (topic ``"outbox"``: outbound messages were
        queued) until cancelled. Raises StoreError when the connection is lost, so run it
        supervised (restarted with backoff): notices sent meanwhile are lost, which the
        outbox's periodic sweep covers."""


@runtime_checkable
class Store(
    SessionStore,
    MessageLog,
    Suppressions,
    Fragments,
    SeenTokens,
    Contacts,
    IdempotentRequests,
    Erasure,
    Reports,
    FlowSources,
    ConversationLocks,
    Protocol,
):
    """A complete backend: open with ``await store.open()``, close with ``await store.close()``.

    ``shared`` says whether several processes may use it at once (its conversation locks,
    outbox and timer claims hold across processes, as PostgreSQL's do): ``convo serve
    --workers`` above 1 needs it, and turns then check their message under the lock."""

    shared: ClassVar[bool]

    async def open(self) -> None:
        """Connect and create or migrate the schema. Idempotent."""

    async def ping(self) -> bool:
        """True when the backend answers (health checks); False, never an error, when not."""

    async def writable(self) -> bool:
        """True when a write commits now: a real, cheap write that changes no data (the
        readiness check). False, never an error, when it does not (locked by another
        process, read-only, disk full, closed); it gives up after about a second."""

    async def close(self) -> None:
        """Finish the calls in flight and release the backend. Closing twice is harmless."""

"""Neutral value types used at every seam of convo.

Adapters turn provider payloads into these, the engine consumes and produces them, and the
store persists them. None of them knows a provider field name or an aiohttp object.
All are frozen dataclasses: build a changed copy with :func:`dataclasses.replace`.
"""

from __future__ import annotations

import enum
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from convo.values import value

Channel = Literal["sms", "voice"]
CHANNELS: tuple[Channel, ...] = ("sms", "voice")


def new_id() -> str:
    """A new unique, URL-safe id: 128 random bits from the OS as 32 hex digits (what
    ``secrets.token_hex(16)`` returns)."""
    return _random_hex(32)


def new_message_id() -> str:
    """A new unique, URL-safe message id (of every :class:`InboundMessage` and
    :class:`OutboundMessage`): 32 hex digits like :func:`new_id`'s, of which the first 12
    are the milliseconds since the epoch and the other 20 random (80 bits from the OS).

    So ids made later mostly sort after those made earlier, and the message log's index of
    ids grows at its end, where a random id wrote to a page anywhere in that index for
    every message (a SQLite file with 200,000 messages, 50 turns in flight: 40% of the
    pages each turn wrote, a fifth of the time a turn took). That order is a matter of
    speed only, never of meaning (the clock can step back): messages are ordered by when
    they were made and stored, never by id."""
    global _stamp
    ms = time.time_ns() // 1_000_000
    if ms != _stamp[0]:  # ids made in one millisecond share its digits, formatted once
        _stamp = (ms, f"{ms:012x}")
    return _stamp[1] + _random_hex(20)


_stamp = (0, "")  # the last millisecond an id was made in, and its 12 hex digits


def _random_hex(digits: int) -> str:
    """``digits`` random hex digits. The bits are read from the OS 256 ids at a time: every
    read is a system call that lets go of the GIL, and under load (a store thread busy) the
    event loop then waited to get it back, three times per text."""
    global _id_bits, _id_next
    with _ID_LOCK:
        if _id_next + digits > len(_id_bits):
            _id_bits, _id_next = os.urandom(16 * 256).hex(), 0
        start = _id_next
        _id_next += digits
        return _id_bits[start:_id_next]


_ID_LOCK = threading.Lock()  # ids are made on the store's thread too
_id_bits, _id_next = "", 0


def now() -> float:
    """Wall-clock time as a UNIX timestamp; the one clock convo stores."""
    return time.time()


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class MessageStatus(enum.StrEnum):
    """Lifecycle of a message in the log (the admin API shows these names).

    ``failed``: the provider refused it for good (its final code is the error).
    ``dead``: a dead letter; the provider could not be reached or kept answering with
    transient errors until the message's maximum age (``[outbox] max_age``) passed. Its
    last error is kept, and an operator may send it again (``Outbox.retry_dead``)."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    RECEIVED = "received"
    DEAD = "dead"

    @property
    def final(self) -> bool:
        return self in _FINAL

    @property
    def rank(self) -> int:
        """Place in the outbound lifecycle: queued 0, sending 1, sent 2, the final ones 3
        (``received`` 0). A delivery report never lowers it: ``update_message(...,
        forward_only=True)``."""
        return _RANK.get(self, 0)


_FINAL = frozenset(
    {MessageStatus.DELIVERED, MessageStatus.UNDELIVERED, MessageStatus.FAILED, MessageStatus.DEAD}
)
_RANK = {
    MessageStatus.SENDING: 1,
    MessageStatus.SENT: 2,
    MessageStatus.DELIVERED: 3,
    MessageStatus.UNDELIVERED: 3,
    MessageStatus.FAILED: 3,
    MessageStatus.DEAD: 3,
}


class ConversationStatus(enum.StrEnum):
    PENDING = "pending"  # an outbound call placed, not answered yet
    ACTIVE = "active"
    HANDOFF = "handoff"  # a person took over; the bot stays silent
    ENDED = "ended"


@value
class ConversationKey:
    """Identity of a conversation: one of our lines, a channel, and the contact's number."""

    line: str
    channel: Channel
    contact: str

    def __str__(self) -> str:
        return f"{self.line}/{self.channel}/{self.contact}"


@value
class Contact:
    """The person on the other side: an E.164 ``number`` with what we know of them.

    ``lang`` (a language code such as ``nl``), ``name`` and ``timezone`` (an IANA zone such
    as ``Europe/Brussels``) are None until known; ``fields`` holds the business's own
    attributes (strings, numbers, lists, maps: anything JSON holds), which templates see as
    ``contact.fields.x``."""

    number: str
    lang: str | None = None
    name: str | None = None
    timezone: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MessagePart:
    """Marks an inbound message as part ``index`` (1-based) of ``total`` of a long text the
    provider delivered in pieces; ``ref`` is the provider's reference shared by all parts."""

    ref: str
    index: int
    total: int


@value
class InboundMessage:
    """A text (or MMS) a contact sent to one of our lines. ``part`` is set when this is
    only one piece of a concatenated text; the web layer joins the pieces before a turn."""

    line: str
    sender: str
    text: str
    channel: Channel = "sms"
    provider: str = ""
    provider_message_id: str = ""
    media_urls: tuple[str, ...] = ()
    id: str = field(default_factory=new_message_id)
    received_at: float = field(default_factory=now)
    part: MessagePart | None = None

    @property
    def key(self) -> ConversationKey:
        return ConversationKey(self.line, self.channel, self.sender)


@value
class OutboundMessage:
    """A text the bot sends. ``line`` is the sender (our number or sender name)."""

    line: str
    to: str
    text: str
    channel: Channel = "sms"
    lang: str | None = None
    media_urls: tuple[str, ...] = ()
    id: str = field(default_factory=new_message_id)
    created_at: float = field(default_factory=now)
    # Passed through to providers that support it (MESSAGE_METADATA_KEYS); kept in the
    # message log with the message, so a send after a restart carries it too.
    metadata: Mapping[str, str] = field(default_factory=dict)


#: The params a conversation hands its replies as ``OutboundMessage.metadata``. Adapters use
#: what their provider knows: Telefoon/Telefonie ``gdpr_consent_ref``, Telefonie and Vonage
#: ``validity_period`` (seconds), Vonage ``entity_id``/``content_id`` (India DLT) and
#: ``account_ref``.
MESSAGE_METADATA_KEYS = (
    "gdpr_consent_ref", "validity_period", "entity_id", "content_id", "account_ref",
)  # fmt: skip


@value
class SendResult:
    """What a provider said when it accepted an outbound message."""

    provider: str
    provider_message_id: str
    status: MessageStatus = MessageStatus.SENT
    segments: int = 1
    price: float | None = None
    currency: str | None = None


@value
class DeliveryReport:
    """A provider's status callback about a message we sent.

    ``client_ref`` is our own message id when the provider echoes it back (Vonage
    ``client-ref``); otherwise the message is found by ``provider_message_id``.

    ``per_part`` is set by providers that report each part of a long text on its own
    (Vonage: one receipt per part). ``provider_message_id``, ``status``, ``error_*`` and
    ``price`` are then that part's: the message keeps the id and total price of its send,
    and its status follows from all its parts (``Outbox.apply_report``).
    """

    provider: str
    provider_message_id: str
    status: MessageStatus
    client_ref: str | None = None
    error_code: str | None = None
    error_text: str | None = None
    price: float | None = None
    currency: str | None = None
    at: float = field(default_factory=now)
    per_part: bool = False


class CallStatus(enum.StrEnum):
    """Lifecycle of a call, whatever the provider calls it."""

    QUEUED = "queued"
    RINGING = "ringing"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def final(self) -> bool:
        return self in (
            CallStatus.COMPLETED,
            CallStatus.BUSY,
            CallStatus.NO_ANSWER,
            CallStatus.FAILED,
            CallStatus.CANCELED,
        )


@dataclass(frozen=True, slots=True)
class CallEvent:
    """A voice webhook: a call was answered, input arrived, or its status changed.

    ``line`` is our number and ``caller`` the contact's, whatever the call's direction.
    Input fields are set only on gather/record results; ``digits``, ``speech`` and
    ``recording_url`` all None on an input webhook means silence (no input).
    """

    provider: str
    call_id: str
    line: str
    caller: str
    direction: Literal["inbound", "outbound"] = "inbound"
    status: CallStatus = CallStatus.IN_PROGRESS
    digits: str | None = None
    speech: str | None = None
    confidence: float | None = None
    recording_url: str | None = None
    recording_duration: float | None = None
    duration: float | None = None
    dial_status: CallStatus | None = None  # outcome of a Dial, on its action webhook
    at: float = field(default_factory=now)

    @property
    def key(self) -> ConversationKey:
        return ConversationKey(self.line, "voice", self.caller)


@value
class MessageRecord:
    """One line of the message log (inbound or outbound), as the admin API shows it."""

    id: str
    direction: Direction
    line: str
    contact: str
    text: str
    status: MessageStatus
    channel: Channel = "sms"
    provider: str = ""
    provider_message_id: str = ""
    segments: int = 1
    price: float | None = None
    error: str | None = None
    media_urls: tuple[str, ...] = ()
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)
    metadata: Mapping[str, str] = field(default_factory=dict)  # outbound: for the provider
    # Outbound, kept by the outbox: send attempts since it was (re)queued (a claim counts
    # one), when it may be claimed next (0: at once; while ``sending``, when its claim
    # lapses), and when an operator last sent it again from the dead letters (None: never).
    attempts: int = 0
    next_attempt_at: float = 0.0
    requeued_at: float | None = None

    @property
    def queued_since(self) -> float:
        """Where its age counts from (``[outbox] max_age``): its creation, or the last time
        an operator sent it again from the dead letters."""
        return self.created_at if self.requeued_at is None else self.requeued_at

    @property
    def sender(self) -> str:
        return self.contact if self.direction is Direction.INBOUND else self.line

    @property
    def recipient(self) -> str:
        return self.line if self.direction is Direction.INBOUND else self.contact

    def to_json(self) -> dict[str, Any]:
        """The admin API's shape of a message (``GET /api/messages``)."""
        return {
            "id": self.id,
            "direction": self.direction.value,
            "from": self.sender,
            "to": self.recipient,
            "text": self.text,
            "status": self.status.value,
            "channel": self.channel,
            "segments": self.segments,
            "provider": self.provider,
            "provider_message_id": self.provider_message_id,
            "price": self.price,
            "error": self.error,
            "media_urls": list(self.media_urls),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at or None,
        }

    def to_inbound(self) -> InboundMessage:
        """The inbound message this log line stored (to process it again after a restart)."""
        return InboundMessage(
            line=self.line,
            sender=self.contact,
            text=self.text,
            channel=self.channel,
            provider=self.provider,
            provider_message_id=self.provider_message_id,
            media_urls=self.media_urls,
            id=self.id,
            received_at=self.created_at,
        )

    @classmethod
    def inbound(cls, msg: InboundMessage) -> MessageRecord:
        return cls(
            id=msg.id,
            direction=Direction.INBOUND,
            line=msg.line,
            contact=msg.sender,
            text=msg.text,
            status=MessageStatus.RECEIVED,
            channel=msg.channel,
            provider=msg.provider,
            provider_message_id=msg.provider_message_id,
            media_urls=msg.media_urls,
            created_at=msg.received_at,
            updated_at=msg.received_at,
        )

    @classmethod
    def outbound(cls, msg: OutboundMessage, *, provider: str = "") -> MessageRecord:
        return cls(
            id=msg.id,
            direction=Direction.OUTBOUND,
            line=msg.line,
            contact=msg.to,
            text=msg.text,
            status=MessageStatus.QUEUED,
            channel=msg.channel,
            provider=provider,
            media_urls=msg.media_urls,
            created_at=msg.created_at,
            updated_at=msg.created_at,
            metadata=dict(msg.metadata),
        )


@dataclass(slots=True)
class Session:
    """The durable state of one conversation: where it is and what it has collected.

    Mutable on purpose: the engine changes it during one turn (under the conversation's
    lock) and the store saves it at the end of the turn.
    """

    key: ConversationKey
    flow: str
    flow_version: str
    step: str
    lang: str
    params: dict[str, Any] = field(default_factory=dict)
    slots: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0  # unusable answers to the current step
    status: ConversationStatus = ConversationStatus.ACTIVE
    contact_name: str | None = None
    timer_due: float | None = None  # when the current step's timeout fires
    timer_step: str | None = None  # the step the timer belongs to
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)

    def to_json(self) -> dict[str, Any]:
        """The admin API's shape of a conversation (``GET /api/conversations/{number}``)."""
        return {
            "line": self.key.line,
            "channel": self.key.channel,
            "flow": self.flow,
            "step": self.step,
            "slots": self.slots,
            "language": self.lang,
            "status": self.status.value,
            "params": self.params,
            "attempts": self.attempts,
            "timer_due": self.timer_due,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """An HTTP request as adapters see it: no aiohttp types, the raw body kept for signatures.

    ``url`` is the public URL the provider called (built from ``server.public_url``, never
    from request headers), which is what URL-covering signatures sign.
    """

    method: str
    path: str
    url: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes = b""
    content_type: str = ""
    # Parsed form fields, when the body is application/x-www-form-urlencoded.
    form: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for k, v in self.headers.items():
            if k.lower() == lname:
                return v
        return None

"""The values of a campaign: what is started on whom, when, how fast, and how far it got.

A :class:`Campaign` is one flow started on many contacts from one line, on one channel.
Each contact is a :class:`Recipient` row with a :class:`RecipientState`::

    pending --claim--> starting --start--> started
       ^                   |  \\-> failed | skipped_opted_out
       +---- held ---------+      (quiet hours: back to pending, due when they end)

    skipped_invalid, skipped_duplicate: decided when the campaign is created

``starting`` is the claim taken in the store *before* a start and replaced *after* it, so
a process that dies in between leaves the recipient there; the runner resolves it when it
starts again (:mod:`convo.campaigns.runner`). A campaign is ``running``, ``paused``,
``cancelled`` (for good) or ``done`` (no recipient left pending).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import re
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from convo.exceptions import ConvoError
from convo.models import Channel, Contact


class CampaignError(ConvoError):
    """A campaign cannot be created or changed as asked; the message says what and where."""


class CampaignStatus(enum.StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"


class RecipientState(enum.StrEnum):
    PENDING = "pending"  # waiting for its turn, or for its quiet hours to end
    STARTING = "starting"  # claimed by a runner: its start is under way
    STARTED = "started"
    FAILED = "failed"  # the start was refused (bad params, the provider refused the call)
    SKIPPED_OPTED_OUT = "skipped_opted_out"
    SKIPPED_INVALID = "skipped_invalid"
    SKIPPED_DUPLICATE = "skipped_duplicate"


#: Which status a campaign may go to from which (pause, resume, cancel, finishing).
TRANSITIONS: dict[CampaignStatus, frozenset[CampaignStatus]] = {
    CampaignStatus.PAUSED: frozenset({CampaignStatus.RUNNING}),
    CampaignStatus.RUNNING: frozenset({CampaignStatus.PAUSED}),
    CampaignStatus.CANCELLED: frozenset({CampaignStatus.RUNNING, CampaignStatus.PAUSED}),
    CampaignStatus.DONE: frozenset({CampaignStatus.RUNNING}),
}

_CLOCK = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


def parse_clock(text: str, where: str) -> dt.time:
    """``HH:MM`` (24 h) as a time; ValueError naming ``where`` otherwise."""
    match = _CLOCK.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{where}: expected a time as HH:MM (00:00-23:59), got {text!r}")
    return dt.time(int(match[1]), int(match[2]))


def parse_start_at(text: str) -> float:
    """An ISO 8601 date and time (``2026-12-05T09:00:00+01:00``, ``...Z``; without an
    offset, UTC) as a UNIX time; ValueError saying what is wrong."""
    try:
        when = dt.datetime.fromisoformat(text.strip()) if isinstance(text, str) else None
    except ValueError:
        when = None
    if when is None:
        raise ValueError(
            f"start_at: expected an ISO 8601 time such as 2026-12-05T09:00:00+01:00, got {text!r}"
        )
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp()


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Local hours in which nobody is started: from ``start`` up to ``end``, over midnight
    when ``start`` is later than ``end`` (21:00-09:00). Equal times are no quiet hours."""

    start: dt.time
    end: dt.time

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """``"21:00-09:00"``; ValueError saying what is wrong."""
        begin, sep, end = text.partition("-") if isinstance(text, str) else ("", "", "")
        if not sep:
            raise ValueError(f"quiet hours: expected FROM-TO such as 21:00-09:00, got {text!r}")
        return cls(parse_clock(begin, "quiet hours (from)"), parse_clock(end, "quiet hours (to)"))

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def to_json(self) -> dict[str, str]:
        return {"from": f"{self.start:%H:%M}", "to": f"{self.end:%H:%M}"}

    def contains(self, local: dt.time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def held_until(self, when: float, timezone: str) -> float | None:
        """The UNIX time the quiet hours around ``when`` end in ``timezone`` (an IANA name),
        or None when ``when`` is outside them."""
        zone = ZoneInfo(timezone)
        local = dt.datetime.fromtimestamp(when, zone)
        if not self.contains(local.time().replace(tzinfo=None)):
            return None
        end = dt.datetime.combine(local.date(), self.end, zone)
        if end <= local:
            end += dt.timedelta(days=1)
        # A wall-clock end that a DST change skips or doubles: fold picks the first.
        return end.timestamp()


@dataclass(frozen=True, slots=True)
class Campaign:
    """One campaign as stored. ``rate_per_second`` is the pace of starts (the runner never
    exceeds the line's provider limit, whatever is stored); ``start_at`` (a UNIX time) is
    when the first start may happen; ``params`` go to every start."""

    id: str
    name: str
    flow: str
    line: str
    channel: Channel
    rate_per_second: float
    params: dict[str, Any] = field(default_factory=dict)
    start_at: float = 0.0
    quiet_hours: QuietHours | None = None
    status: CampaignStatus = CampaignStatus.RUNNING
    created_at: float = 0.0
    updated_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "flow": self.flow,
            "line": self.line,
            "channel": self.channel,
            "params": self.params,
            "start_at": _iso(self.start_at) if self.start_at else None,
            "quiet_hours": self.quiet_hours.to_json() if self.quiet_hours else None,
            "rate_per_second": self.rate_per_second,
            "status": self.status.value,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class NewRecipient:
    """One contact given to a campaign, as read (:mod:`convo.campaigns.intake`).

    ``number`` is E.164 for a usable row, else the text as given with ``state``
    ``skipped_invalid`` and ``error`` saying why. ``row`` is where it came from (the CSV
    line, or the 1-based position in a JSON list). ``fields`` are the other columns; those
    the flow declares as params override the campaign's params for this contact."""

    number: str
    row: int
    timezone: str = "UTC"
    name: str | None = None
    language: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    state: RecipientState = RecipientState.PENDING
    error: str | None = None
    contact: Contact | None = None  # the contact as read, for a usable row


@dataclass(frozen=True, slots=True)
class Recipient:
    """A recipient as stored. ``not_before`` is when it may be started (quiet hours hold
    it), ``claimed_at`` when a runner took it, ``started_at`` when its start was done, and
    ``message_id`` the first text of that start (SMS), whose delivery the counts follow."""

    campaign_id: str
    seq: int
    number: str
    row: int
    timezone: str
    name: str | None
    language: str | None
    fields: dict[str, Any]
    state: RecipientState
    not_before: float = 0.0
    claimed_at: float | None = None
    started_at: float | None = None
    message_id: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class CampaignCounts:
    """Where a campaign's recipients are. ``total`` is every row, skipped ones included;
    ``pending`` those not started yet (being started included); ``started`` conversations
    started; of those, ``sent`` whose first text left (or call was placed), ``delivered``
    whose first text was delivered, ``replied`` whose contact wrote back since, and
    ``completed`` whose conversation ended; ``failed`` starts refused plus first texts
    that failed; ``skipped_*`` contacts not started, by why."""

    total: int = 0
    pending: int = 0
    started: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    replied: int = 0
    completed: int = 0
    skipped_opted_out: int = 0
    skipped_invalid: int = 0
    skipped_duplicate: int = 0

    def to_json(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @property
    def finished(self) -> int:
        """Recipients the campaign is through with (not pending)."""
        return self.total - self.pending


def _iso(when: float) -> str:
    return dt.datetime.fromtimestamp(when, dt.UTC).isoformat().replace("+00:00", "Z")

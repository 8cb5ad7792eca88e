"""Telefoon Voice API records (document schemas ``Call`` and ``Conference``) and their readers.

Readers take decoded JSON and raise ``ValueError`` saying what is wrong; the adapter turns
that into a ``ProviderError`` in one place. Unknown extra fields are ignored (the provider
may add some); a missing required field or an unknown enum value is an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from convo.models import CallStatus

CONFERENCE_STATUSES = ("init", "in-progress", "completed")


@dataclass(frozen=True, slots=True)
class CallInfo:
    """A call as Telefoon reports it (schema ``Call``); times are ISO 8601 strings."""

    id: str
    status: CallStatus
    direction: Literal["inbound", "outbound"]
    from_number: str
    to_number: str
    duration: int | None = None
    start_time: str | None = None
    end_time: str | None = None
    price: str | None = None
    price_unit: str | None = None


@dataclass(frozen=True, slots=True)
class CallList:
    """One page of ``GET /calls``; ``total`` counts every matching call."""

    calls: tuple[CallInfo, ...]
    total: int


@dataclass(frozen=True, slots=True)
class ConferenceInfo:
    """A conference room (schema ``Conference``); ``status`` is init, in-progress or completed."""

    id: str
    status: str
    friendly_name: str | None = None
    participant_count: int | None = None
    date_created: str | None = None


def _object(obj: object, what: str) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise ValueError(f"{what} is not a JSON object: {obj!r:.120}")
    return obj


def _required(obj: Mapping[str, Any], key: str, what: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} lacks a string {key!r}")
    return value


def _optional(obj: Mapping[str, Any], key: str, kind: type) -> Any:
    value = obj.get(key)
    return value if isinstance(value, kind) and not isinstance(value, bool) else None


def read_call(obj: object) -> CallInfo:
    """A ``Call`` object -> :class:`CallInfo`."""
    call = _object(obj, "call")
    status = _required(call, "status", "call")
    direction = _required(call, "direction", "call")
    if status not in CallStatus.__members__.values():
        raise ValueError(f"call has unknown status {status!r}")
    if direction not in ("inbound", "outbound"):
        raise ValueError(f"call has unknown direction {direction!r}")
    return CallInfo(
        id=_required(call, "id", "call"),
        status=CallStatus(status),
        direction="inbound" if direction == "inbound" else "outbound",
        from_number=_required(call, "from", "call"),
        to_number=_required(call, "to", "call"),
        duration=_optional(call, "duration", int),
        start_time=_optional(call, "start_time", str),
        end_time=_optional(call, "end_time", str),
        price=_optional(call, "price", str),
        price_unit=_optional(call, "price_unit", str),
    )


def read_call_list(obj: object) -> CallList:
    """``{"calls": [...], "total": n}`` -> :class:`CallList` (total defaults to the count)."""
    body = _object(obj, "call list")
    calls = body.get("calls", [])
    if not isinstance(calls, list):
        raise ValueError("call list: 'calls' is not a list")
    infos = tuple(read_call(c) for c in calls)
    total = _optional(body, "total", int)
    return CallList(infos, len(infos) if total is None else total)


def read_conference(obj: object) -> ConferenceInfo:
    """A ``Conference`` object -> :class:`ConferenceInfo`."""
    room = _object(obj, "conference")
    status = _required(room, "status", "conference")
    if status not in CONFERENCE_STATUSES:
        raise ValueError(f"conference has unknown status {status!r}")
    return ConferenceInfo(
        id=_required(room, "id", "conference"),
        status=status,
        friendly_name=_optional(room, "friendly_name", str),
        participant_count=_optional(room, "participant_count", int),
        date_created=_optional(room, "date_created", str),
    )


def read_conference_list(obj: object) -> list[ConferenceInfo]:
    """``{"conferences": [...]}`` -> list of :class:`ConferenceInfo`."""
    rooms = _object(obj, "conference list").get("conferences", [])
    if not isinstance(rooms, list):
        raise ValueError("conference list: 'conferences' is not a list")
    return [read_conference(room) for room in rooms]

"""The Enco simulator's ``GET /logs``: the API calls an origin made, filtered and paged.

The document gives the query (``type``, ``dedicatedaddress``, ``year``, ``month``,
``function``, ``startTime``, ``endTime``, ``page``, ``pageref``, ``limit``) and the entry
shape, and leaves open what this fake must then choose:

* ``requestId`` is the delivery info id of the send (the last segment of its
  ``resourceURL``); ``initialDeliveryInfo`` is that delivery info's status now (the
  document's example shows ``MessageWaiting`` where a send answers ``DeliveredToNetwork``).
  ``sms-outbound-error`` entries (refused sends) have a random ``requestId`` and an empty
  ``initialDeliveryInfo``.
* Entries are oldest first. ``pageref`` is the ``requestId`` of an entry: ``next`` starts
  after it, ``previous`` ends before it; ``first`` and ``last`` ignore it; ``limit``
  defaults to :data:`DEFAULT_LIMIT` and is at most :data:`MAX_LIMIT`.
* ``groupByDay`` answers ``[{"date": "YYYY-MM-DD", "numberOfRequests": n}]``, one per day
  of the month with calls (the document gives no shape for it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

LOG_TYPES = ("sms-outbound", "sms-outbound-error")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500


@dataclass(frozen=True, slots=True)
class LogQuery:
    """A checked ``GET /logs`` query (``origin`` already resolved from
    ``dedicatedaddress``, or the shared address)."""

    kind: str
    year: int
    month: int
    function: str
    start: datetime | None
    end: datetime | None
    page: str
    pageref: str
    limit: int


class BadLogQuery(ValueError):
    """A query parameter that is missing or unreadable; ``field`` names it."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def parse_query(query: Mapping[str, str]) -> LogQuery:
    """Check a ``/logs`` query; ``BadLogQuery`` names the first parameter that is wrong."""
    kind = query.get("type", "")
    if kind not in LOG_TYPES:
        raise BadLogQuery("type")
    year, month = _integer(query, "year"), _integer(query, "month")
    if not 1 <= month <= 12:
        raise BadLogQuery("month")
    function = query.get("function", "")
    if function not in ("interval", "groupByDay"):
        raise BadLogQuery("function")
    start = end = None
    if function == "interval":
        start, end = _moment(query, "startTime"), _moment(query, "endTime")
    page = query.get("page", "first")
    if page not in ("first", "next", "previous", "last"):
        raise BadLogQuery("page")
    pageref = query.get("pageref", "")
    if page in ("next", "previous") and not pageref:
        raise BadLogQuery("pageref")
    limit = _integer(query, "limit") if "limit" in query else DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise BadLogQuery("limit")
    return LogQuery(kind, year, month, function, start, end, page, pageref, limit)


def answer(entries: Sequence[Mapping[str, Any]], query: LogQuery) -> list[dict[str, Any]]:
    """The response body for ``query`` over one origin's ``entries`` (oldest first, each
    with a ``moment`` datetime besides the document's fields). ``KeyError`` when the
    ``pageref`` is no entry of the result."""
    found = [
        e for e in entries
        if e["type"] == query.kind
        and (e["moment"].year, e["moment"].month) == (query.year, query.month)
        and (query.start is None or query.start <= e["moment"])
        and (query.end is None or e["moment"] < query.end)
    ]  # fmt: skip
    if query.function == "groupByDay":
        days = Counter(e["moment"].date().isoformat() for e in found)
        return [{"date": day, "numberOfRequests": n} for day, n in sorted(days.items())]
    ids = [e["requestId"] for e in found]
    if query.page == "first":
        chosen = found[: query.limit]
    elif query.page == "last":
        chosen = found[-query.limit :]
    else:
        at = ids.index(query.pageref) if query.pageref in ids else -1
        if at < 0:
            raise KeyError(query.pageref)
        if query.page == "next":
            chosen = found[at + 1 : at + 1 + query.limit]
        else:
            chosen = found[max(0, at - query.limit) : at]
    return [{k: v for k, v in e.items() if k not in ("type", "moment")} for e in chosen]


def _integer(query: Mapping[str, str], field: str) -> int:
    try:
        return int(query[field])
    except (KeyError, ValueError):
        raise BadLogQuery(field) from None


def _moment(query: Mapping[str, str], field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(query[field])
    except (KeyError, ValueError):
        raise BadLogQuery(field) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

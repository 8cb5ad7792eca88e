"""Reading Enco's ``GET /logs`` (the API calls an origin made) for delivery reconciliation.

What the document leaves open, we assume (and the simulator does the same):

* ``requestId`` is the send's delivery info id (the last segment of its ``resourceURL``:
  both are UUIDs of the same shape in the document's examples), so an entry names one of
  our messages by its ``provider_message_id``. Should Enco's ids differ, no entry matches
  and the reconciler asks about each message on its own (``/deliveryinfos/{id}``): slower,
  never wrong.
* ``initialDeliveryInfo`` may be the delivery info of that send as Enco knows it when
  listing (the document's example shows ``MessageWaiting`` where a send answers
  ``DeliveredToNetwork``) or, as its name says, as it was when the message was sent. Only
  a final status (``DeliveredToTerminal``, ``DeliveryImpossible``, ``DeliveryUncertain``)
  is true either way, so only entries with one are taken; a message listed with another
  status, or with one we do not know, is asked about on its own.
* Entries are oldest first; the next page is ``page=next`` with ``pageref`` = the
  ``requestId`` of the last entry of the page before.
* ``year`` and ``month`` are required, so a window across a month's end is one query per
  month (in UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime

from convo.providers._enco_wire import FINAL_ENCO_STATUSES


def month_windows(start: datetime, end: datetime) -> list[tuple[int, int, datetime, datetime]]:
    """``(year, month, from, to)`` for each calendar month (UTC) that ``[start, end)``
    touches, ``from``/``to`` clipped to the window; [] when ``end`` is not after ``start``."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    windows = []
    at = start
    while at < end:
        following = (
            datetime(at.year + 1, 1, 1, tzinfo=UTC)
            if at.month == 12
            else datetime(at.year, at.month + 1, 1, tzinfo=UTC)
        )
        windows.append((at.year, at.month, at, min(end, following)))
        at = following
    return windows


def logged_status(entry: object) -> tuple[str, str] | None:
    """``(requestId, initialDeliveryInfo)`` of a ``sms-outbound`` entry that names a
    message and a final status (module docstring); None for anything else (a status that
    may have moved on since, one we do not know, a refused call, an unreadable entry)."""
    if not isinstance(entry, dict):
        return None
    request_id, status = entry.get("requestId"), entry.get("initialDeliveryInfo")
    code = str(entry.get("httpResponseCode", "200"))
    if not isinstance(request_id, str) or not request_id or status not in FINAL_ENCO_STATUSES:
        return None
    if not code.startswith("2"):
        return None
    return request_id, str(status)

"""Enco's wire formats: delivery infos, OneAPI error bodies, datetimes, status names.

Pure functions over decoded JSON (or a ``ProviderAnswer`` for errors), so ``enco.py`` keeps
to the protocol and Enco's JSON shapes are written down in one place.
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timedelta

from convo.exceptions import InvalidNumber, MalformedWebhook
from convo.models import InboundMessage, MessageStatus
from convo.providers._wire import e164
from convo.providers.http import ProviderAnswer

#: The document's ``deliveryStatus`` values and what they mean for us.
STATUS_MAP: dict[str, MessageStatus] = {
    "DeliveredToTerminal": MessageStatus.DELIVERED,
    "DeliveredToNetwork": MessageStatus.SENT,
    "MessageWaiting": MessageStatus.SENT,
    # Enco cannot know more (e.g. a foreign network that gives no receipts): not a failure,
    # but nothing to wait for either.
    "DeliveryUncertain": MessageStatus.SENT,
    "DeliveryImpossible": MessageStatus.UNDELIVERED,
}
#: After these Enco will not change its mind: stop polling the delivery info.
FINAL_ENCO_STATUSES = frozenset({"DeliveredToTerminal", "DeliveryImpossible", "DeliveryUncertain"})


def neutral_status(status: str) -> MessageStatus:
    """Our status for an Enco ``deliveryStatus``; unknown values count as ``sent``."""
    return STATUS_MAP.get(status, MessageStatus.SENT)


def delivery_id(data: object) -> str:
    """The ``deliveryinfoId``: the last path segment of ``resourceURL`` ("" if none)."""
    if not isinstance(data, dict):
        return ""
    url = data.get("resourceURL")
    if not isinstance(url, str) or "/deliveryinfos/" not in url:
        return ""
    return url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]


def delivery_entries(data: object) -> list[tuple[str, str]]:
    """``(address, deliveryStatus)`` pairs from the document's delivery-info shape
    (``deliveryInfo`` list) or OneAPI's ``deliveryInfoNotification`` (one object).
    Addresses lose their ``tel:`` prefix; entries without a status are left out."""
    if not isinstance(data, dict):
        return []
    infos = data.get("deliveryInfo")
    note = data.get("deliveryInfoNotification")
    if infos is None and isinstance(note, dict):
        infos = note.get("deliveryInfo")
    if isinstance(infos, dict):
        infos = [infos]
    if not isinstance(infos, list):
        return []
    entries = []
    for info in infos:
        if isinstance(info, dict) and isinstance(info.get("deliveryStatus"), str):
            address = info.get("address")
            address = address.removeprefix("tel:") if isinstance(address, str) else ""
            entries.append((address, info["deliveryStatus"]))
    return entries


def oneapi_error(response: ProviderAnswer) -> tuple[str, str]:
    """``(code, text)`` of an error answer: OneAPI ``requestError`` when present, else the
    HTTP status and the start of the body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("requestError"), dict):
        for detail in body["requestError"].values():
            if isinstance(detail, dict):
                text = str(detail.get("text", ""))
                variables = detail.get("variables")
                if not isinstance(variables, list):
                    variables = [variables] if variables is not None else []  # a lone value
                for i, var in enumerate(variables, start=1):
                    text = text.replace(f"%{i}", str(var))
                return str(detail.get("messageId", response.status_code)), text
    return str(response.status_code), response.text[:200] or response.reason_phrase


def format_time(moment: datetime) -> str:
    """``2016-12-28T23:00:00.000Z``: the datetime form the document's examples use."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def window(now: datetime, lookback: timedelta) -> tuple[str, str]:
    """``(startdatetime, enddatetime)`` for an inbound poll: ``lookback`` ago until a minute
    from now (a minute of slack for clocks that disagree)."""
    return format_time(now - lookback), format_time(now + timedelta(minutes=1))


def timestamp(value: str) -> float | None:
    """A UNIX timestamp for an ISO 8601 ``timeReceived``; None if absent or unreadable."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def inbound_message(item: object, *, line: str, provider: str) -> InboundMessage:
    """One entry of an inbound poll's ``messages``; ``MalformedWebhook`` says what is off.

    Enco gives no message id: ``provider_message_id`` is a hash of sender, our address,
    text and ``timeReceived``, the same each time the same message is read."""
    if not isinstance(item, dict):
        raise MalformedWebhook("an inbound message is not an object")
    sender, text, when = item.get("senderAddress"), item.get("message"), item.get("timeReceived")
    if not isinstance(sender, str) or not sender:
        raise MalformedWebhook("field 'senderAddress' is missing")
    if not isinstance(text, str):
        raise MalformedWebhook("field 'message' is missing")
    when = when if isinstance(when, str) else ""
    try:
        number = e164(sender.removeprefix("tel:"))
    except InvalidNumber as exc:
        raise MalformedWebhook(f"field 'senderAddress': {exc}") from exc
    digest = hashlib.sha256("\x1f".join((number, line, text, when)).encode())
    return InboundMessage(
        line=line,
        sender=number,
        text=text,
        provider=provider,
        provider_message_id="enco-" + digest.hexdigest()[:32],
        received_at=timestamp(when) or time.time(),
    )

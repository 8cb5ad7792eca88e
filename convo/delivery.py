"""What becomes of a message once it is sent: send results and delivery reports.

:class:`DeliveryReports` is the outbox's half that writes statuses from the provider's
delivery reports (:meth:`DeliveryReports.apply`, which ``Outbox.apply_report`` is), and
settles what they said early once the outbox recorded the send
(:meth:`DeliveryReports.recorded_send`).

Reports find the message by ``client_ref`` (our id) or by ``(provider,
provider_message_id)``, and never move a status backwards (a final status stays final;
``delivered`` is not undone by a late ``sent``): every status change here is
``update_message(..., forward_only=True)``, atomic in the store.

A provider that reports each part of a long text on its own (Vonage: ``per_part``
reports) never has a part's id or price written over the message's (the first part's id
and the total price, from the send). One part ``failed``/``undelivered`` makes the message
so at once, with that part's error; it becomes ``delivered`` only when as many distinct
parts as it has ``segments`` are delivered, and stays ``sent`` until then. The delivered
parts are kept in the store (``add_delivered_part``), so receipts may reach different
processes or arrive across a restart. A part delivered before the send's result is recorded
(the part count is only known then) is settled when it is, by the process that sent it.
"""

from __future__ import annotations

import logging

from convo.models import DeliveryReport, Direction, MessageRecord, MessageStatus
from convo.store.base import MessageLog

log = logging.getLogger("convo.outbox")

_FAILED_PART = (MessageStatus.FAILED, MessageStatus.UNDELIVERED)


class DeliveryReports:
    """Send results and delivery reports of the messages in ``store`` (module docstring)."""

    def __init__(self, store: MessageLog) -> None:
        self.store = store
        # Messages with parts delivered before their send was recorded -> how many: the
        # count is checked again then (module docstring).
        self._early_parts: dict[str, int] = {}

    async def apply(self, report: DeliveryReport) -> MessageRecord | None:
        """Update the message a delivery report is about; None when it is unknown to us."""
        record = None
        if report.client_ref:
            record = await self.store.get_message(report.client_ref)
            if record is not None and record.direction is not Direction.OUTBOUND:
                record = None
        if record is None and report.provider_message_id:
            record = await self.store.find_message(report.provider, report.provider_message_id)
        if record is None:
            log.info(
                "%s: delivery report for unknown message %s",
                report.provider,
                report.provider_message_id or report.client_ref,
            )
            return None
        error = None
        if report.error_code or report.error_text:
            error = " ".join(x for x in (report.error_code, report.error_text) if x)
        if report.per_part:
            return await self._apply_part(record, report, error)
        return await self.advance(
            record,
            report.status,
            provider_message_id=report.provider_message_id or None,
            price=report.price,
            error=error,
        )

    async def recorded_send(self, record: MessageRecord) -> None:
        """The outbox recorded what the provider said when it accepted ``record`` (as it is
        now stored): settles the parts reported delivered before that."""
        early = self._early_parts.pop(record.id, None)  # parts delivered before the send
        if early is not None and record.status is MessageStatus.SENT:
            await self._settle(record, early)

    async def advance(
        self,
        record: MessageRecord,
        status: MessageStatus,
        *,
        provider: str | None = None,
        provider_message_id: str | None = None,
        segments: int | None = None,
        price: float | None = None,
        error: str | None = None,
    ) -> MessageRecord | None:
        """Set ``status`` only if it moves the message forward (a final status stays);
        the other fields are written in any case."""
        return await self.store.update_message(
            record.id,
            status=status,
            provider=provider,
            provider_message_id=provider_message_id,
            segments=segments,
            price=price,
            error=error,
            forward_only=True,
        )

    async def _apply_part(
        self, record: MessageRecord, report: DeliveryReport, error: str | None
    ) -> MessageRecord | None:
        """One part's receipt: never the part's id or price over the message's; final
        only from all the parts (module docstring)."""
        if record.status.final:
            return record  # a final status stays, and so does its error
        if report.status in _FAILED_PART:
            return await self.advance(record, report.status, error=error)
        if report.status is MessageStatus.DELIVERED:
            delivered = await self.store.add_delivered_part(record.id, report.provider_message_id)
            if record.status is not MessageStatus.SENT:
                self._early_parts[record.id] = delivered  # the part count comes with the send
                return record
            return await self._settle(record, delivered)
        if error is not None:  # no verdict yet (accepted, buffered, unknown): keep its error
            return await self.store.update_message(record.id, error=error)
        return record

    async def _settle(self, record: MessageRecord, delivered: int) -> MessageRecord | None:
        """``delivered`` once every part of the ``sent`` message is; else as it is."""
        if delivered < record.segments:
            return record  # parts outstanding: stays sent
        return await self.advance(record, MessageStatus.DELIVERED)

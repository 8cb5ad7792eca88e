"""A fake Telefonie SMS + MMS API for tests and local work.

The shared ``/messages`` machinery is in ``_telefoon_common``; what Telefonie adds is here:
``from`` must be an E.164 number, ``body`` is required only without ``media_url`` (an array
of http(s) URLs), ``validity_period`` is a positive integer, records carry ``num_media`` and
``date_updated``, statuses include ``receiving``, and ``GET /messages`` also filters on
``from``/``to``. :meth:`TelefonieSmsSimulator.deliver_inbound` takes ``media_urls`` for an
inbound MMS (sent as ``media_url`` + ``num_media``, the shape the adapter assumes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from convo.simulators._telefoon_common import (
    E164,
    TelefoonFamilySimulator,
    is_url,
    iso_now,
)


class TelefonieSmsSimulator(TelefoonFamilySimulator):
    """Fake Telefonie SMS/MMS; see :class:`TelefoonFamilySimulator` for the knobs."""

    statuses: ClassVar[frozenset[str]] = frozenset(
        {"queued", "sending", "sent", "delivered", "undelivered", "failed", "receiving", "received"}
    )
    list_filters: ClassVar[tuple[str, ...]] = ("from", "to")
    default_name: ClassVar[str] = "telefonie_sms"

    def _check_send(self, payload: dict[str, Any]) -> str | None:
        if not E164.fullmatch(payload["from"]):
            return "'from' must be an E.164 phone number you own"
        media = payload.get("media_url")
        if media is not None and (
            not isinstance(media, list) or not media or not all(is_url(u) for u in media)
        ):
            return "'media_url' must be a non-empty array of http(s) URLs"
        if not payload.get("body") and not media:
            return "'body' is required if no media_url"
        validity = payload.get("validity_period")
        if validity is not None and (
            not isinstance(validity, int) or isinstance(validity, bool) or validity < 1
        ):
            return "'validity_period' must be a positive integer (seconds)"
        return None

    def _extra_fields(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {"num_media": len(payload.get("media_url") or ()), "date_updated": iso_now()}

    async def deliver_inbound(
        self, sender: str, to: str, text: str, *, media_urls: Sequence[str] = ()
    ) -> int:
        """POST an inbound SMS (or MMS, with ``media_urls``) to convo, signed."""
        extra: dict[str, Any] = {"num_media": len(media_urls), "date_updated": iso_now()}
        if media_urls:
            extra["media_url"] = list(media_urls)
        record = self.inbound_record(sender, to, text, **extra)
        return await self.post_webhook(self._webhook_url("inbound"), self.public(record))

    async def deliver_status(
        self,
        message_id: str,
        status: str = "delivered",
        *,
        error_code: int | None = None,
        error_message: str | None = None,
    ) -> int:
        """As the base class, also stamping ``date_updated``."""
        if message_id in self.messages:
            self.messages[message_id]["date_updated"] = iso_now()
        return await super().deliver_status(
            message_id, status, error_code=error_code, error_message=error_message
        )

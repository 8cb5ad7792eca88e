"""Telefonie SMS (global SMS + MMS API).

Same ``/messages`` shape as Telefoon SMS (shared code in ``_telefoon_common``); what differs,
and is respected here:

* ``from`` must be a phone number we own: no alphanumeric senders, no ``sender_id``, no
  ``gdpr_consent_ref`` (metadata with that key is simply not sent);
* MMS: ``OutboundMessage.media_urls`` go out as ``media_url`` (an array); ``body`` may be
  empty only when media is attached (the document: "required if no media_url");
* ``validity_period`` (seconds): the ``validity_period`` option, overridden per message by
  ``OutboundMessage.metadata["validity_period"]`` (whole seconds as a string);
* statuses add ``receiving`` (an inbound message still arriving): its webhook yields no
  message (the complete one follows as ``received``); in reports it reads ``received``;
* ``list_messages`` also filters on ``from``/``to`` (``sender=``, ``recipient=``);
* ``price_unit`` has no documented default: no unit given means currency None.

Assumption (the document is silent): inbound MMS webhooks carry the media as ``media_url``,
an array of URLs, like the send request; ``num_media`` > 0 without it is a malformed webhook
(so the media is not lost silently). The webhook gives no content type or size: flows get
them from the media's host (:mod:`convo.media`), which is fetched without the API key (the
URLs are taken to be unguessable capability URLs), and only from ``media_hosts``.

Options: ``api_key`` (required), ``webhook_secret``, ``base_url`` (default
``https://api.telefonie.com/v1/sms``), ``validity_period``, ``allow_unsigned``, ``rate_limit``,
and for inbound media (:class:`~convo.media.MediaPolicy`) ``media_hosts`` (default: the host
of ``base_url``), ``media_max_bytes`` (default 5 MiB) and ``media_timeout`` (default 30 s).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from convo.exceptions import InvalidNumber, MalformedWebhook
from convo.media import MEDIA_OPTIONS, MediaPolicy
from convo.models import DeliveryReport, OutboundMessage
from convo.providers._options import ProviderOptions
from convo.providers._telefoon_common import TelefoonFamilySms
from convo.providers._wire import e164, media_urls


class TelefonieSms(TelefoonFamilySms):
    """``SmsProvider`` (with MMS) for Telefonie SMS. Build with :meth:`from_config`."""

    kind: ClassVar[str] = "telefonie_sms"
    config_options = TelefoonFamilySms.config_options | {"validity_period"} | MEDIA_OPTIONS
    title: ClassVar[str] = "Telefonie SMS"
    default_base_url: ClassVar[str] = "https://api.telefonie.com/v1/sms"
    statuses: ClassVar[frozenset[str]] = frozenset(
        {"queued", "sending", "sent", "delivered", "undelivered", "failed", "receiving", "received"}
    )
    default_currency: ClassVar[str | None] = None
    list_filters: ClassVar[frozenset[str]] = frozenset({"from", "to"})

    validity_period: int | None = None
    media_policy: MediaPolicy

    def _configure(self, opts: ProviderOptions) -> None:
        self.validity_period = opts.integer("validity_period", None, minimum=1)
        self.media_policy = MediaPolicy.from_options(opts, self.base_url)

    def _send_fields(self, message: OutboundMessage) -> dict[str, Any]:
        try:
            sender = e164(message.line)
        except InvalidNumber:
            raise self._rejected(
                f"Telefonie SMS sends only from a phone number you own, not {message.line!r}"
            ) from None
        if not message.text and not message.media_urls:
            raise self._rejected("a message needs a text or media")
        fields: dict[str, Any] = {"from": sender}
        if message.text:
            fields["body"] = message.text
        if message.media_urls:
            fields["media_url"] = list(message.media_urls)
        validity = self._validity(message)
        if validity is not None:
            fields["validity_period"] = validity
        return fields

    def _validity(self, message: OutboundMessage) -> int | None:
        raw = message.metadata.get("validity_period")
        if raw is None:
            return self.validity_period
        try:
            seconds = int(raw)
        except ValueError:
            seconds = 0
        if seconds < 1:
            raise self._rejected(
                f"metadata validity_period must be whole seconds >= 1, not {raw!r}"
            )
        return seconds

    def _inbound_media(self, data: Mapping[str, Any]) -> tuple[str, ...]:
        count = data.get("num_media") or 0
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise MalformedWebhook(f"{self.name}: field 'num_media' must be a whole number")
        if "media_url" not in data:
            if count:
                raise MalformedWebhook(
                    f"{self.name}: field 'num_media' is {count} but 'media_url' is missing"
                )
            return ()
        return media_urls(data["media_url"], "media_url", self.name)

    async def list_messages(  # type: ignore[override]  # named sender/recipient, not **filters
        self,
        direction: str | None = None,
        status: str | None = None,
        page: int = 1,
        page_size: int = 100,
        *,
        sender: str | None = None,
        recipient: str | None = None,
    ) -> list[DeliveryReport]:
        """``GET /messages``; ``sender``/``recipient`` are the document's ``from``/``to``."""
        filters = {k: v for k, v in (("from", sender), ("to", recipient)) if v}
        return await super().list_messages(direction, status, page, page_size, **filters)

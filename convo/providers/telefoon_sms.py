"""Telefoon SMS (EU, GDPR-minded SMS API).

What is particular to Telefoon (the shared ``/messages`` machinery, the webhook signature and
the assumptions common to both Telefoon-shaped APIs are in ``_telefoon_common``):

* ``from`` may be our number or an alphanumeric sender name of at most 11 characters; the
  optional ``sender_id`` option is a *registered* sender name sent as ``sender_id`` on every
  message (checked at start: 1-11 ASCII letters, digits or spaces, at least one letter);
* ``gdpr_consent_ref`` is taken from ``OutboundMessage.metadata["gdpr_consent_ref"]``;
* the document has no client reference field, so our message id cannot travel with the
  message: delivery reports are matched on the provider's message id;
* SMS only: a message with media is refused locally (``ProviderRejected``);
* ``price_unit`` defaults to EUR (the document says so) when the provider leaves it out;
* ``delete_message`` (GDPR erasure), ``get_message`` and ``list_messages(direction, status,
  page, page_size)`` are offered besides the ``SmsProvider`` protocol.

Options (``[providers.NAME]``): ``api_key`` (required), ``webhook_secret``, ``base_url``
(default ``https://api.telefoon.com/v1/sms``), ``sender_id``, ``allow_unsigned``,
``rate_limit`` (messages/second, default 10).
"""

from __future__ import annotations

from typing import Any, ClassVar

from convo.exceptions import ConfigError, InvalidNumber
from convo.models import OutboundMessage
from convo.providers._options import ProviderOptions
from convo.providers._telefoon_common import TelefoonFamilySms
from convo.providers._wire import e164
from convo.sms.phone import is_sender_id


class TelefoonSms(TelefoonFamilySms):
    """``SmsProvider`` for Telefoon SMS. Build with :meth:`from_config`."""

    kind: ClassVar[str] = "telefoon_sms"
    config_options = TelefoonFamilySms.config_options | {"sender_id"}
    title: ClassVar[str] = "Telefoon SMS"
    default_base_url: ClassVar[str] = "https://api.telefoon.com/v1/sms"
    statuses: ClassVar[frozenset[str]] = frozenset(
        {"queued", "sending", "sent", "delivered", "undelivered", "failed", "received"}
    )
    default_currency: ClassVar[str | None] = "EUR"

    sender_id: str = ""

    def _configure(self, opts: ProviderOptions) -> None:
        sender_id = opts.string("sender_id")
        if sender_id and not is_sender_id(sender_id):
            raise ConfigError(
                f"{opts.where('sender_id')}: expected 1-11 letters, digits or spaces "
                "(with at least one letter)"
            )
        self.sender_id = sender_id

    def _send_fields(self, message: OutboundMessage) -> dict[str, Any]:
        if message.media_urls:
            raise self._rejected("Telefoon SMS cannot send media (MMS); use telefonie_sms")
        try:
            sender = e164(message.line)
        except InvalidNumber:
            if not is_sender_id(message.line):
                raise self._rejected(
                    f"sender {message.line!r} is neither a phone number nor an alphanumeric "
                    "name of at most 11 characters"
                ) from None
            sender = message.line
        fields: dict[str, Any] = {"from": sender, "body": message.text}
        if self.sender_id:
            fields["sender_id"] = self.sender_id
        consent = message.metadata.get("gdpr_consent_ref")
        if consent:
            fields["gdpr_consent_ref"] = consent
        return fields

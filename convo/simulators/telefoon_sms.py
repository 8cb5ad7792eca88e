"""A fake Telefoon SMS API for tests and local work.

The shared ``/messages`` machinery is in ``_telefoon_common``; what Telefoon adds is checked
here: ``from`` is an E.164 number or an alphanumeric sender name (max 11 characters),
``sender_id`` must be such a name, ``gdpr_consent_ref`` must be a string, and there is no
MMS (``media_url`` is refused). Prices are in EUR.
"""

from __future__ import annotations

from typing import Any, ClassVar

from convo.simulators._telefoon_common import E164, TelefoonFamilySimulator
from convo.sms.phone import is_sender_id


class TelefoonSmsSimulator(TelefoonFamilySimulator):
    """Fake Telefoon SMS; see :class:`TelefoonFamilySimulator` for the knobs."""

    statuses: ClassVar[frozenset[str]] = frozenset(
        {"queued", "sending", "sent", "delivered", "undelivered", "failed", "received"}
    )
    default_name: ClassVar[str] = "telefoon_sms"

    def _check_send(self, payload: dict[str, Any]) -> str | None:
        sender = payload["from"]
        if not E164.fullmatch(sender) and not is_sender_id(sender):
            return "'from' must be an E.164 number or an alphanumeric name of max 11 chars"
        if "sender_id" in payload and not is_sender_id(payload["sender_id"]):
            return "'sender_id' must be an alphanumeric name of max 11 chars"
        if "gdpr_consent_ref" in payload and not isinstance(payload["gdpr_consent_ref"], str):
            return "'gdpr_consent_ref' must be a string"
        if "media_url" in payload:
            return "'media_url' is not supported: Telefoon SMS sends SMS only"
        return None

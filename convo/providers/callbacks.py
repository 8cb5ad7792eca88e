"""Where providers reach us: the webhook paths and the callback URLs we hand out.

Every provider webhook lives under ``/webhooks/{provider}/{route}``, where ``provider`` is
the config section name (``[providers.NAME]``) and ``route`` one of the names below. The
web server routes these paths (:func:`webhook_path`), and every URL we give a provider to
call back (a status callback, a call's answer or input URL) is built by
:func:`callback_url` from ``server.public_url``, never from request data: a forged
``Host`` header must not redirect a provider's callbacks elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

#: Inbound texts (``GET|POST``).
INBOUND = "inbound"
#: Delivery receipts and status callbacks (``GET|POST``).
STATUS = "status"
#: A call was answered: the first call instructions (``POST``).
VOICE_ANSWER = "voice/answer"
#: The caller's input (gather, record, dial result): the next instructions (``POST``).
VOICE_INPUT = "voice/input"
#: A call's status changed (``POST``).
VOICE_STATUS = "voice/status"

SMS_ROUTES: tuple[str, ...] = (INBOUND, STATUS)
VOICE_ROUTES: tuple[str, ...] = (VOICE_ANSWER, VOICE_INPUT, VOICE_STATUS)


def webhook_path(provider: str, route: str) -> str:
    """``/webhooks/{provider}/{route}``; ``provider`` may be a route pattern such as
    ``"{provider}"``."""
    return f"/webhooks/{provider}/{route}"


def voice_input_url(public_url: str, provider: str) -> str:
    """Where a call's Gather, Record and Dial results go (``voice/input``); empty without
    a public URL, so the call's instructions carry no action URL."""
    return callback_url(public_url, provider, VOICE_INPUT) if public_url else ""


def callback_url(
    public_url: str, provider: str, route: str, query: Mapping[str, str] | None = None
) -> str:
    """``{public_url}/webhooks/{provider}/{route}``, with ``query`` percent-encoded after
    ``?`` in the given order. ``public_url`` is ``server.public_url`` (a trailing slash is
    ignored). Without a public URL nobody can call us back: adapters then send no callback
    URL at all rather than call this."""
    url = public_url.rstrip("/") + webhook_path(provider, route)
    if query:
        url += "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in query.items())
    return url

"""Twilio Programmable Voice adapter (``[providers.twilio_voice]``).

Call instructions are TwiML, rendered by :mod:`convo.voice.twiml` (whose verbs and
attribute names are TwiML's): ``Say`` with ``language`` and ``voice``, ``Gather`` with
``input="dtmf speech"``, ``numDigits``, ``hints`` and speech ``language``, ``Record``,
``Dial`` (``Number``, ``Sip``, ``Conference``), ``Pause``, ``Play``, ``Redirect`` and
``Hangup``. Everything a caller said reaches the document as escaped XML text, never as
markup. Locales Twilio lacks fall back by :mod:`convo.voice.locales`, the table every
voice provider uses.

Webhooks are form posts signed with ``X-Twilio-Signature`` (``convo.providers._twilio_common``):
``CallSid``, ``From``, ``To``, ``CallStatus`` and ``Direction`` on every one; the caller's
input as ``Digits`` or ``SpeechResult`` (+ ``Confidence``); a recording as
``RecordingUrl`` + ``RecordingDuration``; a Dial's outcome as ``DialCallStatus``; the
length of an ended call as ``CallDuration``. Statuses are Twilio's, which are exactly
convo's :class:`~convo.models.CallStatus` values. ``Direction`` ``inbound`` means our line
is ``To``; ``outbound-api`` and ``outbound-dial`` mean it is ``From``.

Outbound calls: ``POST .../Calls.json`` with ``To``, ``From`` (the line), ``Url`` (our
answer webhook, ``Method=POST``), ``StatusCallback`` (our status webhook, for the
``initiated ringing answered completed`` events), ``Timeout`` (ring seconds) and
``Record``. Hanging up: ``POST .../Calls/{sid}.json`` with ``Status=completed``.

What we assume where Twilio leaves a choice: ``Digits=hangup`` (a Record ended by the
caller hanging up) is no input; ``DialCallStatus=answered`` counts as ``completed``; a
``CallStatus`` of ``initiated`` or ``answered`` (event names) as ``queued`` and
``in-progress``.

Options: the account options (``account_sid``, ``auth_token``, ``api_key_sid`` +
``api_key_secret``, ``base_url``, ``allow_unsigned``), ``supported_languages`` (the TTS
locales to allow; default :data:`TTS_LANGUAGES`), ``locale_fallbacks`` (locale -> list).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self
from urllib.parse import quote

import httpx

from convo.exceptions import MalformedWebhook
from convo.models import CallEvent, CallStatus, Channel, WebhookRequest
from convo.providers._options import ProviderOptions
from convo.providers._twilio_common import ACCOUNT_OPTIONS, TwilioAccount, form_fields, required
from convo.providers._wire import answered_id
from convo.providers.callbacks import (
    VOICE_ANSWER,
    VOICE_ROUTES,
    VOICE_STATUS,
    callback_url,
    voice_input_url,
)
from convo.providers.telefoon_voice_webhook import phone_or_sip
from convo.voice.instructions import DTMF_KEYS, Instruction
from convo.voice.twiml import XML_CONTENT_TYPE, Limits, prepare, render_xml

#: TTS locales Twilio's ``<Say>`` speaks (its Amazon Polly and Google voices); a flow's
#: locale outside this list falls back (``convo.voice.locales``).
TTS_LANGUAGES: tuple[str, ...] = (
    "ar-AE", "cy-GB", "da-DK", "de-AT", "de-CH", "de-DE", "en-AU", "en-CA", "en-GB",
    "en-IE", "en-IN", "en-NZ", "en-US", "en-ZA", "es-ES", "es-MX", "es-US", "fi-FI",
    "fr-BE", "fr-CA", "fr-FR", "hi-IN", "is-IS", "it-IT", "ja-JP", "ko-KR", "nb-NO",
    "nl-BE", "nl-NL", "pl-PL", "pt-BR", "pt-PT", "ro-RO", "ru-RU", "sv-SE", "tr-TR",
    "zh-CN",
)  # fmt: skip
#: The call progress events our status webhook asks for.
CALL_EVENTS = ("initiated", "ringing", "answered", "completed")
_STATUSES = {status.value: status for status in CallStatus}
_OUTBOUND = ("outbound-api", "outbound-dial")
#: Twilio spellings that are not call statuses: a status callback's event names, and a Dial
#: whose callee answered.
_ALIASES = {
    "CallStatus": {"initiated": CallStatus.QUEUED, "answered": CallStatus.IN_PROGRESS},
    "DialCallStatus": {"answered": CallStatus.COMPLETED},
}


class TwilioVoice:
    """The Twilio Voice adapter (a :class:`~convo.providers.base.VoiceProvider`)."""

    kind: ClassVar[str] = "twilio_voice"
    channel: ClassVar[Channel] = "voice"
    config_options: ClassVar[frozenset[str]] = ACCOUNT_OPTIONS | {
        "supported_languages",
        "locale_fallbacks",
        "rate_limit",
    }
    routes: ClassVar[tuple[str, ...]] = VOICE_ROUTES
    #: ``start_call`` options beyond ``ring_timeout`` (``convo.dialer.CallOptions``).
    call_options: ClassVar[frozenset[str]] = frozenset({"record"})

    def __init__(
        self,
        name: str,
        client: httpx.AsyncClient,
        account: TwilioAccount,
        *,
        allow_unsigned: bool = False,
        supported_languages: Sequence[str] = TTS_LANGUAGES,
        locale_fallbacks: Mapping[str, Sequence[str]] | None = None,
        public_url: str = "",
        rate_limit: float = 1.0,
    ) -> None:
        self.name = name
        self.account = account
        self.allow_unsigned = allow_unsigned
        self.supported_languages = tuple(supported_languages)
        self.locale_fallbacks = {k: tuple(v) for k, v in (locale_fallbacks or {}).items()}
        self.limits = Limits(languages=frozenset(self.supported_languages))
        self.public_url = public_url.rstrip("/")
        self.rate_limit = rate_limit
        self._client = client

    def __repr__(self) -> str:  # no credentials, ever
        return f"TwilioVoice(name={self.name!r}, account={self.account!r})"

    @classmethod
    def from_config(
        cls,
        name: str,
        options: Mapping[str, Any],
        client: httpx.AsyncClient,
        *,
        public_url: str = "",
    ) -> Self:
        """Build from ``[providers.NAME]``; ``ConfigError`` names the bad key."""
        opts = ProviderOptions(name, options, cls.config_options)
        return cls(
            name,
            client,
            TwilioAccount.from_options(opts),
            allow_unsigned=opts.boolean("allow_unsigned", False),
            supported_languages=opts.locales("supported_languages", TTS_LANGUAGES),
            locale_fallbacks=opts.locale_table("locale_fallbacks"),
            public_url=public_url,
            rate_limit=opts.number("rate_limit", 1.0),
        )

    # -- webhooks (pure) -------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> bool:
        """``X-Twilio-Signature`` by the one signature rule; True when signed."""
        return self.account.verify(request, allow_unsigned=self.allow_unsigned, provider=self.name)

    def parse_call(self, request: WebhookRequest) -> CallEvent:
        """The call event of a voice webhook; ``MalformedWebhook`` names the bad field."""
        what = f"{self.name}: call webhook"
        fields = form_fields(request, what)
        direction = required(fields, "Direction", what)
        if direction != "inbound" and direction not in _OUTBOUND:
            raise MalformedWebhook(
                f"{what}: field 'Direction' must be inbound, outbound-api or outbound-dial, "
                f"got {direction[:40]!r}"
            )
        status = _status(fields, "CallStatus", what, required_=True)
        assert status is not None
        from_number = phone_or_sip(required(fields, "From", what), "From", self.name)
        to_number = phone_or_sip(required(fields, "To", what), "To", self.name)
        inbound = direction == "inbound"
        return CallEvent(
            provider=self.name,
            call_id=required(fields, "CallSid", what),
            line=to_number if inbound else from_number,
            caller=from_number if inbound else to_number,
            direction="inbound" if inbound else "outbound",
            status=status,
            digits=_digits(fields, what),
            speech=fields.get("SpeechResult", "").strip() or None,
            confidence=_seconds(fields, "Confidence", what, upper=1.0),
            recording_url=_url(fields, "RecordingUrl", what),
            recording_duration=_seconds(fields, "RecordingDuration", what),
            duration=_seconds(fields, "CallDuration", what),
            dial_status=_status(fields, "DialCallStatus", what),
        )

    def prepare(self, instructions: Sequence[object]) -> list[Instruction]:
        """The instructions as rendered: actions filled, locales resolved, limits checked
        (``convo.voice.twiml.prepare``). Raises ``RenderError``."""
        return prepare(
            instructions,
            provider=self.name,
            input_url=voice_input_url(self.public_url, self.name),
            supported=self.supported_languages,
            fallbacks=self.locale_fallbacks,
            limits=self.limits,
        )

    def render(self, instructions: Sequence[object]) -> tuple[bytes, str]:
        """The TwiML ``<Response>`` answering a webhook; ``RenderError`` if impossible."""
        return render_xml(self.prepare(instructions), "twilio"), XML_CONTENT_TYPE

    # -- REST API --------------------------------------------------------------------

    async def start_call(
        self,
        *,
        to: str,
        line: str,
        answer_url: str = "",
        status_url: str = "",
        ring_timeout: float = 30.0,
        record: bool = False,
    ) -> str:
        """``POST .../Calls.json`` from ``line`` to ``to``; Twilio's call SID. The URLs
        default to this provider's webhooks under ``public_url``."""
        answer = answer_url or callback_url(self.public_url, self.name, VOICE_ANSWER)
        status = status_url or callback_url(self.public_url, self.name, VOICE_STATUS)
        form: dict[str, str | list[str]] = {
            "To": to,
            "From": line,
            "Url": answer,
            "Method": "POST",
            "StatusCallback": status,
            "StatusCallbackMethod": "POST",
            "StatusCallbackEvent": list(CALL_EVENTS),
            "Timeout": str(min(600, max(5, math.ceil(ring_timeout)))),
        }
        if record:
            form["Record"] = "true"
        response = await self.account.request(
            self._client, "POST", "Calls.json", provider=self.name, data=form
        )
        sid, _ = answered_id(response, "sid", provider=self.name, what="a call request")
        return sid

    async def end_call(self, call_id: str) -> None:
        """Hang up: ``POST .../Calls/{sid}.json`` with ``Status=completed``."""
        await self.account.request(
            self._client,
            "POST",
            f"Calls/{quote(call_id, safe='')}.json",
            provider=self.name,
            data={"Status": "completed"},
        )

    async def start(self) -> None:
        """Nothing to check at start."""

    async def aclose(self) -> None:
        """Nothing to release: the httpx client belongs to the caller."""


def _status(
    fields: Mapping[str, str], key: str, what: str, *, required_: bool = False
) -> CallStatus | None:
    raw = fields.get(key, "").strip()
    if not raw:
        if required_:
            raise MalformedWebhook(f"{what}: field {key!r} is missing or empty")
        return None
    if raw in _ALIASES.get(key, {}):
        return _ALIASES[key][raw]
    status = _STATUSES.get(raw)
    if status is None:
        raise MalformedWebhook(
            f"{what}: field {key!r} must be one of {', '.join(_STATUSES)}, got {raw[:40]!r}"
        )
    return status


def _digits(fields: Mapping[str, str], what: str) -> str | None:
    raw = fields.get("Digits", "").strip()
    if not raw or raw == "hangup":
        return None
    if not set(raw) <= DTMF_KEYS:
        raise MalformedWebhook(f"{what}: field 'Digits' has keys other than 0-9 * #")
    return raw


def _url(fields: Mapping[str, str], key: str, what: str) -> str | None:
    raw = fields.get(key, "").strip()
    if not raw:
        return None
    if not raw.startswith(("http://", "https://")):
        raise MalformedWebhook(f"{what}: field {key!r} is not an http(s) URL")
    return raw


def _seconds(
    fields: Mapping[str, str], key: str, what: str, upper: float | None = None
) -> float | None:
    raw = fields.get(key, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise MalformedWebhook(f"{what}: field {key!r} is not a number: {raw[:40]!r}") from None
    if not math.isfinite(value) or value < 0 or (upper is not None and value > upper):
        bound = f"0..{upper:g}" if upper is not None else ">= 0"
        raise MalformedWebhook(f"{what}: field {key!r} must be {bound}, got {raw[:40]!r}")
    return value

"""Vonage Voice API adapter (``[providers.vonage_voice]``).

Call instructions are NCCOs (:mod:`convo.voice.ncco`): ``talk`` with ``language`` and
``style``, ``input`` with DTMF and speech, ``record``, ``connect``, ``conversation``. Locales
Vonage lacks fall back by :mod:`convo.voice.locales`, the table every voice provider uses
(``fr-BE`` -> ``fr-FR``, ``nl-BE`` -> ``nl-NL``). Webhooks are signed JWTs and JSON bodies
(:mod:`convo.providers.vonage_voice_webhooks`); set the application's answer and event URLs
to ``{public_url}/webhooks/NAME/voice/answer`` and ``.../voice/status``, method POST, and
turn signed webhooks on.

Outbound calls: ``POST {base_url}/v1/calls`` with ``Authorization: Bearer`` a JWT signed
RS256 with the application's private key (claims ``application_id``, ``iat``, ``exp``,
``jti``), ``to``/``from`` phone endpoints (digits without ``+``), ``answer_url`` (our answer
webhook with ``?direction=outbound``, see the webhooks module), ``event_url``, both POST,
and ``ringing_timer``. Hanging up: ``PUT /v1/calls/{uuid}`` ``{"action": "hangup"}``. HTTP
errors map by status (``convo.providers.http``: 429 rate limited, 5xx unavailable, 4xx
rejected).

What we assume: a Dial's outcome arrives on the synchronous ``connect``'s ``eventUrl``
(our input URL ``?after=dial``) as the dialled leg's status; a ``record`` action's event
is posted when the recording is ready and its answer is not an NCCO, so on Vonage the call
ends with the recording: the flow's next step runs (the recording saved) but is not heard.

Options: ``application_id`` (required), ``private_key`` (PEM text) or ``private_key_path``
(one of them; checked at start), ``signature_secret`` (required unless ``allow_unsigned =
true``), ``timestamp_window`` (seconds a webhook JWT's ``iat`` may be off; 300),
``base_url`` (``https://api.nexmo.com``), ``supported_languages``, ``locale_fallbacks``,
``rate_limit``, ``allow_unsigned``.
"""

from __future__ import annotations

import dataclasses
import math
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self
from urllib.parse import quote

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from convo.exceptions import ConfigError
from convo.models import CallEvent, Channel, WebhookRequest
from convo.providers import http
from convo.providers._options import ProviderOptions
from convo.providers._wire import answered_id
from convo.providers.callbacks import (
    VOICE_ANSWER,
    VOICE_ROUTES,
    VOICE_STATUS,
    callback_url,
    voice_input_url,
)
from convo.providers.signing import must_check
from convo.providers.vonage_voice_webhooks import CallMemory, bearer, parse_event, verify_jwt
from convo.voice import ncco
from convo.voice.instructions import Instruction
from convo.voice.twiml import prepare

DEFAULT_BASE_URL = "https://api.nexmo.com"
#: TTS locales of Vonage's ``talk`` action; others fall back (``convo.voice.locales``).
TTS_LANGUAGES: tuple[str, ...] = (
    "ar", "ca-ES", "cmn-CN", "cs-CZ", "cy-GB", "da-DK", "de-DE", "el-GR", "en-AU",
    "en-GB", "en-IN", "en-US", "en-ZA", "es-ES", "es-MX", "es-US", "fi-FI", "fr-CA",
    "fr-FR", "hi-IN", "hu-HU", "id-ID", "is-IS", "it-IT", "ja-JP", "ko-KR", "nb-NO",
    "nl-NL", "pl-PL", "pt-BR", "pt-PT", "ro-RO", "ru-RU", "sk-SK", "sv-SE", "th-TH",
    "tr-TR", "uk-UA", "vi-VN",
)  # fmt: skip
TOKEN_LIFETIME = 900  # seconds an API JWT is valid; a fresh one is made per request


class VonageVoice:
    """The Vonage Voice adapter (a :class:`~convo.providers.base.VoiceProvider`)."""

    kind: ClassVar[str] = "vonage_voice"
    channel: ClassVar[Channel] = "voice"
    config_options: ClassVar[frozenset[str]] = frozenset(
        {
            "application_id", "private_key", "private_key_path", "signature_secret",
            "timestamp_window", "base_url", "supported_languages", "locale_fallbacks",
            "rate_limit", "allow_unsigned",
        }
    )  # fmt: skip
    routes: ClassVar[tuple[str, ...]] = VOICE_ROUTES

    def __init__(
        self,
        name: str,
        client: httpx.AsyncClient,
        *,
        application_id: str,
        private_key: RSAPrivateKey,
        signature_secret: str = "",
        allow_unsigned: bool = False,
        timestamp_window: float = 300.0,
        base_url: str = DEFAULT_BASE_URL,
        supported_languages: Sequence[str] = TTS_LANGUAGES,
        locale_fallbacks: Mapping[str, Sequence[str]] | None = None,
        public_url: str = "",
        rate_limit: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.application_id = application_id
        self.allow_unsigned = allow_unsigned
        self.timestamp_window = timestamp_window
        self.base_url = base_url.rstrip("/")
        self.supported_languages = tuple(supported_languages)
        self.locale_fallbacks = {k: tuple(v) for k, v in (locale_fallbacks or {}).items()}
        self.limits = dataclasses.replace(
            ncco.LIMITS, languages=frozenset(self.supported_languages)
        )
        self.public_url = public_url.rstrip("/")
        self.rate_limit = rate_limit
        self.clock = clock
        self.calls = CallMemory()
        self._client = client
        self._private_key = private_key
        self._secret = signature_secret

    def __repr__(self) -> str:  # no keys or secrets, ever
        return f"VonageVoice(name={self.name!r}, application_id={self.application_id!r})"

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
        secret = opts.string("signature_secret")
        allow_unsigned = opts.boolean("allow_unsigned", False)
        if not secret and not allow_unsigned:
            raise ConfigError(
                f"{opts.where('signature_secret')}: missing; webhooks are signed JWTs checked "
                "with it (set allow_unsigned = true to accept unsigned webhooks)"
            )
        return cls(
            name,
            client,
            application_id=opts.string("application_id", required=True),
            private_key=_private_key(opts),
            signature_secret=secret,
            allow_unsigned=allow_unsigned,
            timestamp_window=opts.number("timestamp_window", 300.0),
            base_url=opts.base_url(DEFAULT_BASE_URL),
            supported_languages=opts.locales("supported_languages", TTS_LANGUAGES),
            locale_fallbacks=opts.locale_table("locale_fallbacks"),
            public_url=public_url,
            rate_limit=opts.number("rate_limit", 1.0),
        )

    # -- webhooks ----------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> bool:
        """The signed JWT in ``Authorization: Bearer`` by the one signature rule; True
        when signed and valid."""
        token = bearer(request)
        if not must_check(
            self.name,
            has_secret=bool(self._secret),
            allow_unsigned=self.allow_unsigned,
            signed=bool(token),
            unsigned="webhook has no Authorization: Bearer JWT",
        ):
            return False
        verify_jwt(
            token,
            request.body,
            self._secret,
            provider=self.name,
            now=self.clock(),
            window=self.timestamp_window,
            application_id=self.application_id,
        )
        return True

    def parse_call(self, request: WebhookRequest) -> CallEvent:
        """The call event of a webhook; ``MalformedWebhook`` names the bad field."""
        answer = request.path.endswith(VOICE_ANSWER)
        return parse_event(request, self.name, self.calls, answer=answer)

    def prepare(self, instructions: Sequence[object]) -> list[Instruction]:
        """Actions filled, locales resolved, Vonage's limits checked. ``RenderError``."""
        return prepare(
            instructions,
            provider=self.name,
            input_url=voice_input_url(self.public_url, self.name),
            supported=self.supported_languages,
            fallbacks=self.locale_fallbacks,
            limits=self.limits,
        )

    def render(self, instructions: Sequence[object]) -> tuple[bytes, str]:
        """The NCCO answering a webhook; ``RenderError`` if impossible."""
        return ncco.render(self.prepare(instructions)), ncco.CONTENT_TYPE

    # -- REST API ------------------------------------------------------------------------

    def api_token(self) -> str:
        """A fresh application JWT (RS256) for one API request."""
        now = int(self.clock())
        claims = {
            "application_id": self.application_id,
            "iat": now,
            "exp": now + TOKEN_LIFETIME,
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(claims, self._private_key, algorithm="RS256")

    async def _request(self, method: str, path: str, **kwargs: Any) -> http.ProviderAnswer:
        return await http.call(
            self._client,
            method,
            f"{self.base_url}{path}",
            provider=self.name,
            headers={"Authorization": f"Bearer {self.api_token()}", "Accept": "application/json"},
            **kwargs,
        )

    async def start_call(
        self,
        *,
        to: str,
        line: str,
        answer_url: str = "",
        status_url: str = "",
        ring_timeout: float = 30.0,
    ) -> str:
        """``POST /v1/calls`` from ``line`` to ``to``; Vonage's call uuid."""
        answer = answer_url or callback_url(self.public_url, self.name, VOICE_ANSWER)
        events = status_url or callback_url(self.public_url, self.name, VOICE_STATUS)
        body = {
            "to": [{"type": "phone", "number": to.lstrip("+")}],
            "from": {"type": "phone", "number": line.lstrip("+")},
            "answer_url": [answer + ("&" if "?" in answer else "?") + "direction=outbound"],
            "answer_method": "POST",
            "event_url": [events],
            "event_method": "POST",
            "ringing_timer": min(120, max(1, math.ceil(ring_timeout))),
        }
        response = await self._request("POST", "/v1/calls", json=body, expected=(200, 201))
        call_id, _ = answered_id(response, "uuid", provider=self.name, what="a call request")
        return call_id

    async def end_call(self, call_id: str) -> None:
        """``PUT /v1/calls/{uuid}`` ``{"action": "hangup"}``."""
        await self._request(
            "PUT",
            f"/v1/calls/{quote(call_id, safe='')}",
            json={"action": "hangup"},
            expected=(200, 204),
        )

    async def start(self) -> None:
        """Nothing to check at start (the private key was read when built)."""

    async def aclose(self) -> None:
        """Nothing to release: the httpx client belongs to the caller."""


def _private_key(opts: ProviderOptions) -> RSAPrivateKey:
    """The application's RSA private key, from ``private_key`` (PEM) or
    ``private_key_path``; ``ConfigError`` saying which and why, never the key."""
    pem = opts.string("private_key")
    path = opts.string("private_key_path")
    if bool(pem) == bool(path):
        raise ConfigError(
            f"{opts.where('private_key')}: set exactly one of private_key (PEM text) and "
            "private_key_path (the application's key, for API calls)"
        )
    key_name = "private_key" if pem else "private_key_path"
    if path:
        try:
            pem = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{opts.where(key_name)}: cannot read {path}: {exc}") from None
    try:
        key = load_pem_private_key(pem.encode("utf-8"), password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"{opts.where(key_name)}: not an unencrypted PEM private key") from None
    if not isinstance(key, RSAPrivateKey):
        raise ConfigError(f"{opts.where(key_name)}: expected an RSA key (RS256)")
    return key

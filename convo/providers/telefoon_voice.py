"""Telefoon Voice adapter: places calls and speaks its call-flow webhooks.

API (document ``002``, server ``https://api.telefoon.com/v1/voice``, header ``X-API-Key``):
``POST /calls`` (to, from, url, status_callback, timeout, record, tts_language) -> 201 Call,
``GET /calls`` (status, direction, page, page_size <= 100) -> ``{"calls", "total"}``,
``GET /calls/{id}``, ``DELETE /calls/{id}`` -> 204, ``GET|POST /conferences``.
Call statuses are exactly convo's :class:`~convo.models.CallStatus` values.

What the document leaves open, we assume:

- Webhooks are signed form posts; see ``convo.providers.telefoon_voice_webhook``.
- The webhook answer is TwiML-style XML (default) or its JSON list form
  (``convo.voice.twiml``, option ``format``). Limits other than the TTS languages are not
  documented; we assume TwiML's (``twiml.Limits``).
- ``tts_language`` accepts the four locales the document names (nl-NL, fr-BE, de-DE,
  en-GB); ``supported_languages`` overrides that when Telefoon adds more. Other locales
  fall back (``convo.voice.locales``): fr-FR -> fr-BE, nl-BE -> nl-NL, en-US -> en-GB.
- Recording (``record``) needs the callee's GDPR consent: the flow asks for it before a
  Record; this adapter does not check it.
- Error bodies are undocumented: statuses are mapped by ``convo.providers.http.call``
  (429 -> RateLimited, 5xx -> ProviderUnavailable, other 4xx -> ProviderRejected), and a
  success answer we cannot read is a plain ``ProviderError`` (never retried: a call may
  have been placed).

Options (``[providers.NAME]``): ``api_key`` (required), ``webhook_secret`` (required unless
``allow_unsigned = true``), ``base_url``, ``format`` (``xml``|``json``), ``allow_unsigned``,
``supported_languages`` (list), ``locale_fallbacks`` (table locale -> list of locales),
``rate_limit`` (accepted for uniformity; calls are not throttled here), ``type``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Literal, Self, TypeVar, cast
from urllib.parse import quote

import httpx

from convo.exceptions import ConfigError, ProviderError
from convo.models import CallEvent, CallStatus, Channel, WebhookRequest
from convo.providers import http
from convo.providers._options import ProviderOptions
from convo.providers.callbacks import VOICE_ROUTES, callback_url, voice_input_url
from convo.providers.telefoon_voice_records import (
    CallInfo,
    CallList,
    ConferenceInfo,
    read_call,
    read_call_list,
    read_conference,
    read_conference_list,
)
from convo.providers.telefoon_voice_webhook import parse_call_event, verify_signature
from convo.voice.instructions import Instruction
from convo.voice.locales import resolve_locale
from convo.voice.twiml import (
    JSON_CONTENT_TYPE,
    XML_CONTENT_TYPE,
    Limits,
    RenderError,
    prepare,
    render_json,
    render_xml,
)

T = TypeVar("T")
DEFAULT_BASE_URL = "https://api.telefoon.com/v1/voice"
#: The TTS locales the document names for ``tts_language``.
TTS_LANGUAGES: tuple[str, ...] = ("nl-NL", "fr-BE", "de-DE", "en-GB")
_DIRECTIONS = ("inbound", "outbound")


class TelefoonVoice:
    """The Telefoon Voice adapter (a :class:`~convo.providers.base.VoiceProvider`).

    Build it with :meth:`from_config`; the ``httpx.AsyncClient`` is shared and not closed
    here. Callback URLs default to ``{public_url}/webhooks/{name}/voice/...``.
    """

    kind: ClassVar[str] = "telefoon_voice"
    channel: ClassVar[Channel] = "voice"
    config_options: ClassVar[frozenset[str]] = frozenset(
        {
            "api_key",
            "webhook_secret",
            "base_url",
            "format",
            "allow_unsigned",
            "supported_languages",
            "locale_fallbacks",
            "rate_limit",
        }
    )
    routes: ClassVar[tuple[str, ...]] = VOICE_ROUTES
    #: ``start_call`` options beyond ``ring_timeout`` (``convo.dialer.CallOptions``).
    call_options: ClassVar[frozenset[str]] = frozenset({"record", "tts_language"})

    def __init__(
        self,
        name: str,
        client: httpx.AsyncClient,
        *,
        api_key: str,
        webhook_secret: str = "",
        base_url: str = DEFAULT_BASE_URL,
        document_format: Literal["xml", "json"] = "xml",
        allow_unsigned: bool = False,
        supported_languages: Sequence[str] = TTS_LANGUAGES,
        locale_fallbacks: Mapping[str, Sequence[str]] | None = None,
        public_url: str = "",
        rate_limit: float = 1.0,
    ) -> None:
        self.name = name
        self.rate_limit = rate_limit
        self._client = client
        self._api_key = api_key
        self._secret = webhook_secret.encode("utf-8")
        self.base_url = base_url.rstrip("/")
        self.document_format = document_format
        self.allow_unsigned = allow_unsigned
        self.supported_languages = tuple(supported_languages)
        self.locale_fallbacks = {k: tuple(v) for k, v in (locale_fallbacks or {}).items()}
        self.limits = Limits(languages=frozenset(self.supported_languages))
        self.public_url = public_url.rstrip("/")

    def __repr__(self) -> str:  # no credentials, ever
        return f"TelefoonVoice(name={self.name!r}, base_url={self.base_url!r})"

    @classmethod
    def from_config(
        cls,
        name: str,
        options: Mapping[str, Any],
        client: httpx.AsyncClient,
        *,
        public_url: str = "",
    ) -> Self:
        """Build from ``[providers.NAME]``; ``ConfigError`` names the bad key (never its
        value: many are secrets)."""
        opts = ProviderOptions(name, options, cls.config_options)
        allow_unsigned = opts.boolean("allow_unsigned", False)
        secret = opts.string("webhook_secret")
        if not secret and not allow_unsigned:
            raise ConfigError(
                f"{opts.where('webhook_secret')}: missing; Telefoon Voice webhooks are checked "
                "with it (X-Signature; set allow_unsigned = true to accept unsigned ones)"
            )
        fmt = opts.string("format", "xml")
        if fmt not in ("xml", "json"):
            raise ConfigError(f'{opts.where("format")}: expected "xml" or "json"')
        api_key = opts.string("api_key", required=True)
        base_url = opts.base_url(DEFAULT_BASE_URL)
        languages = opts.locales("supported_languages", TTS_LANGUAGES)
        fallbacks = opts.locale_table("locale_fallbacks")
        rate = opts.number("rate_limit", 1.0)
        return cls(
            name,
            client,
            api_key=api_key,
            webhook_secret=secret,
            base_url=base_url,
            document_format=cast(Literal["xml", "json"], fmt),
            allow_unsigned=allow_unsigned,
            supported_languages=languages,
            locale_fallbacks=fallbacks,
            public_url=public_url,
            rate_limit=rate,
        )

    # -- URLs we hand to Telefoon: from public_url only, never from request data --------

    def webhook_url(self, route: str) -> str:
        """``{public_url}/webhooks/{name}/voice/{route}`` (route: answer, input, status)."""
        return callback_url(self.public_url, self.name, f"voice/{route}")

    # -- webhooks (pure) --------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> bool:
        """Check ``X-Signature`` (hex HMAC-SHA256 of the raw body); ``SignatureError`` when
        wrong, or missing while a ``webhook_secret`` is configured (``allow_unsigned`` only
        matters without one: ``convo.providers.signing``). True when signed."""
        return verify_signature(
            request, self._secret, allow_unsigned=self.allow_unsigned, provider=self.name
        )

    def parse_call(self, request: WebhookRequest) -> CallEvent:
        """The call event in a voice webhook; ``MalformedWebhook`` names the bad field."""
        return parse_call_event(request, self.name)

    def prepare(self, instructions: Sequence[object]) -> list[Instruction]:
        """The instructions as they will be rendered: empty Gather/Record actions set to
        the input URL (when ``public_url`` is known), locales resolved (a replaced one
        kept in ``requested_language``), limits checked. Raises ``RenderError``."""
        return prepare(
            instructions,
            provider=self.name,
            input_url=voice_input_url(self.public_url, self.name),
            supported=self.supported_languages,
            fallbacks=self.locale_fallbacks,
            limits=self.limits,
        )

    def render(self, instructions: Sequence[object]) -> tuple[bytes, str]:
        """``(body, content_type)`` of the webhook answer; ``RenderError`` if impossible."""
        items = self.prepare(instructions)
        if self.document_format == "json":
            return render_json(items, "telefoon"), JSON_CONTENT_TYPE
        return render_xml(items, "telefoon"), XML_CONTENT_TYPE

    # -- REST API -----------------------------------------------------------------------

    async def _request(self, method: str, path: str, **kwargs: Any) -> http.ProviderAnswer:
        """Every API request goes through here (auth header, error mapping)."""
        return await http.call(
            self._client,
            method,
            f"{self.base_url}{path}",
            provider=self.name,
            headers={"X-API-Key": self._api_key, "Accept": "application/json"},
            **kwargs,
        )

    def _read(self, response: http.ProviderAnswer, reader: Callable[[object], T], what: str) -> T:
        """Decode a success answer with ``reader``; one we cannot read is a ProviderError
        (not retried: the request may have taken effect)."""
        try:
            return reader(response.json())
        except ValueError as exc:  # JSONDecodeError is a ValueError too
            raise ProviderError(
                f"{self.name}: {what}: unreadable answer ({exc})",
                provider=self.name,
                code=str(response.status_code),
            ) from None

    async def start_call(
        self,
        *,
        to: str,
        line: str,
        answer_url: str = "",
        status_url: str = "",
        ring_timeout: float = 30.0,
        record: bool = False,
        tts_language: str | None = None,
    ) -> str:
        """``POST /calls`` from ``line`` to ``to``; returns Telefoon's call id.

        ``answer_url``/``status_url`` default to this provider's webhook URLs under
        ``public_url``. ``tts_language`` is resolved to a supported locale (``RenderError``
        if none fits). Raises the ``ProviderError`` tree on failure.
        """
        body: dict[str, Any] = {
            "to": to,
            "from": line,
            "url": answer_url or self.webhook_url("answer"),
            "status_callback": status_url or self.webhook_url("status"),
            "timeout": math.ceil(ring_timeout),
        }
        if record:
            body["record"] = True
        if tts_language:
            try:
                body["tts_language"] = resolve_locale(tts_language, self.supported_languages)
            except ValueError as exc:
                raise RenderError(f"{self.name}: tts_language: {exc}") from None
        response = await self._request("POST", "/calls", json=body, expected=(200, 201))
        return self._read(response, read_call, "initiate call").id

    async def get_call(self, call_id: str) -> CallInfo:
        """``GET /calls/{id}``; ``ProviderRejected`` (code "404") for an unknown call."""
        response = await self._request("GET", f"/calls/{quote(call_id, safe='')}")
        return self._read(response, read_call, "get call")

    async def list_calls(
        self,
        *,
        status: CallStatus | str | None = None,
        direction: Literal["inbound", "outbound"] | None = None,
        page: int | None = None,
        page_size: int | None = None,
    ) -> CallList:
        """``GET /calls`` with the document's filters; ``ValueError`` on a bad filter."""
        params: dict[str, str | int] = {}
        if status is not None:
            params["status"] = CallStatus(status).value
        if direction is not None:
            if direction not in _DIRECTIONS:
                raise ValueError(f"direction must be inbound or outbound, got {direction!r}")
            params["direction"] = direction
        if page is not None:
            if page < 1:
                raise ValueError(f"page must be >= 1, got {page}")
            params["page"] = page
        if page_size is not None:
            if not 1 <= page_size <= 100:
                raise ValueError(
                    f"page_size must be 1..100 (the document's maximum), got {page_size}"
                )
            params["page_size"] = page_size
        response = await self._request("GET", "/calls", params=params)
        return self._read(response, read_call_list, "list calls")

    async def end_call(self, call_id: str) -> None:
        """``DELETE /calls/{id}``: hang up an active or ringing call."""
        await self._request("DELETE", f"/calls/{quote(call_id, safe='')}", expected=(200, 204))

    async def create_conference(
        self,
        *,
        friendly_name: str | None = None,
        max_participants: int | None = None,
        record: bool = False,
    ) -> ConferenceInfo:
        """``POST /conferences``; recording needs every participant's GDPR consent."""
        body: dict[str, Any] = {}
        if friendly_name is not None:
            body["friendly_name"] = friendly_name
        if max_participants is not None:
            body["max_participants"] = max_participants
        if record:
            body["record"] = True
        response = await self._request("POST", "/conferences", json=body, expected=(200, 201))
        return self._read(response, read_conference, "create conference")

    async def list_conferences(self) -> list[ConferenceInfo]:
        """``GET /conferences``."""
        response = await self._request("GET", "/conferences")
        return self._read(response, read_conference_list, "list conferences")

    async def open_conference(self, room: str, *, record: bool) -> None:
        """Create conference ``room`` (``friendly_name``) unless one of that name is not
        yet completed. Two callers reaching an unopened room at the same moment may both
        create it: the document has no unique names or idempotency key to prevent that."""
        for existing in await self.list_conferences():
            if existing.friendly_name == room and existing.status != "completed":
                return
        await self.create_conference(friendly_name=room, record=record)

    async def start(self) -> None:
        """Nothing to check at start."""

    async def aclose(self) -> None:
        """Nothing to release: the HTTP client is shared and closed by its owner."""

"""What convo needs from a telecom provider, as small protocols over neutral values.

Every adapter is a :class:`Provider`: it declares its ``kind`` (the registry's key), the
``channel`` it serves, the ``config_options`` its section accepts and the webhook
``routes`` it is called on (``convo.providers.callbacks``); it is built from its config
section by ``from_config`` with an injected ``httpx.AsyncClient`` (so tests swap in a
transport or point ``base_url`` at a simulator), does its start-up work in ``start`` and
releases what it holds in ``aclose``. Adapters see only neutral values: they never import
the web server. Webhook handling is
pure: ``verify`` and ``parse_*`` take a :class:`~convo.models.WebhookRequest` and return
models or raise :class:`~convo.exceptions.SignatureError` /
:class:`~convo.exceptions.MalformedWebhook`; they never touch the network.
``send`` maps the provider's failures onto the ``ProviderError`` tree once, so the outbox
knows whether to retry (``RateLimited``, ``ProviderUnavailable``) or give up
(``ProviderRejected``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, Self, runtime_checkable

from convo.models import (
    CallEvent,
    CallStatus,
    Channel,
    DeliveryReport,
    InboundMessage,
    OutboundMessage,
    SendResult,
    WebhookRequest,
)

if TYPE_CHECKING:
    import httpx

    # The first provider that lists calls defined the record; another adds its reader.
    from convo.providers.telefoon_voice_records import CallList


@runtime_checkable
class Provider(Protocol):
    """What every adapter is, whatever its channel."""

    #: The registry key of this adapter (``vonage``, ``telefoon_voice``, ...).
    kind: ClassVar[str]
    channel: ClassVar[Channel]
    #: The keys its ``[providers.NAME]`` section may have (besides ``type``).
    config_options: ClassVar[frozenset[str]]
    #: The routes under ``/webhooks/{name}/`` this provider calls.
    routes: ClassVar[tuple[str, ...]]
    #: The config section name; also the webhook path segment.
    name: str

    @classmethod
    def from_config(
        cls,
        name: str,
        options: Mapping[str, Any],
        client: httpx.AsyncClient,
        *,
        public_url: str = "",
    ) -> Self:
        """Validate ``[providers.NAME]`` and build the adapter; ``ConfigError`` names the
        section and key. Acquires nothing (the client is shared)."""

    async def start(self) -> None:
        """Start-up work before the server takes traffic (e.g. checking the account owns a
        configured address). ``ConfigError`` naming the section stops the start; a provider
        that cannot be reached now is only logged (sending retries later)."""

    async def aclose(self) -> None:
        """Release what the adapter holds (never the shared client)."""


@runtime_checkable
class SmsProvider(Provider, Protocol):
    """Sends texts and understands the provider's SMS webhooks."""

    #: Sustained messages per second this provider accepts from us (the outbox honours it).
    rate_limit: float

    def verify(self, request: WebhookRequest) -> bool:
        """Raise ``SignatureError`` unless the webhook is authentic, by the one rule of
        :mod:`convo.providers.signing` (with a secret configured a signature is required;
        ``allow_unsigned`` only matters without one). True when the request was signed and
        matched, False when it was let in unsigned."""

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        """Inbound message(s) in an inbound webhook; raise ``MalformedWebhook`` if unusable."""

    def parse_status(self, request: WebhookRequest) -> list[DeliveryReport]:
        """Delivery report(s) in a status webhook; raise ``MalformedWebhook`` if unusable."""

    async def send(self, message: OutboundMessage) -> SendResult:
        """Send one message; raise a ``ProviderError`` subclass on failure."""


@runtime_checkable
class PollingSmsProvider(SmsProvider, Protocol):
    """A provider without inbound webhooks (Enco): convo polls it at ``poll_interval``."""

    poll_interval: float

    async def poll_inbound(self) -> list[InboundMessage]: ...

    async def poll_status(self) -> list[DeliveryReport]: ...


@runtime_checkable
class VoiceProvider(Provider, Protocol):
    """Places calls and understands the provider's call webhooks.

    ``render`` turns neutral call instructions (``convo.voice.instructions``) into the
    provider's document and returns ``(body, content_type)``.
    """

    def verify(self, request: WebhookRequest) -> bool:
        """As :meth:`SmsProvider.verify`."""

    def parse_call(self, request: WebhookRequest) -> CallEvent: ...

    def render(self, instructions: Sequence[object]) -> tuple[bytes, str]: ...

    async def start_call(
        self, *, to: str, line: str, answer_url: str, status_url: str, ring_timeout: float = 30.0
    ) -> str:
        """Place an outbound call; returns the provider's call id."""

    async def end_call(self, call_id: str) -> None: ...


@runtime_checkable
class DeletesMessages(Protocol):
    """A provider that can delete its copy of a message (GDPR erasure; Telefoon SMS and
    Telefonie SMS). An optional capability beside :class:`SmsProvider`, checked with
    ``isinstance``; ``convo.erasure`` uses it."""

    name: str

    async def delete_message(self, provider_message_id: str) -> None:
        """Delete the provider's record of the message; an id the provider no longer knows
        counts as deleted. Raises a ``ProviderError`` subclass on failure."""


@runtime_checkable
class AcknowledgesInbound(Protocol):
    """A provider that expects a particular body in the answer to its inbound webhook
    (Twilio: an empty TwiML ``<Response/>``, else it logs a warning). An optional
    capability beside :class:`SmsProvider`, checked with ``isinstance``; without it the
    answer is convo's JSON ``{"received": n}``."""

    def inbound_acknowledgement(self) -> tuple[bytes, str]:
        """``(body, content_type)`` answering an accepted inbound webhook."""


@runtime_checkable
class ListsCalls(Protocol):
    """A voice provider that lists its calls (Telefoon Voice's ``GET /calls``). An optional
    capability beside :class:`VoiceProvider`, checked with ``isinstance``; ``convo calls
    list`` uses it."""

    name: str

    async def list_calls(
        self,
        *,
        status: CallStatus | str | None = None,
        direction: Literal["inbound", "outbound"] | None = None,
        page: int | None = None,
        page_size: int | None = None,
    ) -> CallList:
        """One page of calls, newest order as the provider keeps it; ``ValueError`` on a
        bad filter, the ``ProviderError`` tree on failure."""


@runtime_checkable
class OpensConferences(Protocol):
    """A voice provider whose conference rooms are created through its API before callers
    join them by name (Telefoon Voice's ``POST /conferences``). An optional capability
    beside :class:`VoiceProvider`, checked with ``isinstance``; the call webhooks
    (``convo.web.voice``) call it before answering a document with a conference."""

    name: str

    async def open_conference(self, room: str, *, record: bool) -> None:
        """Make sure conference ``room`` is open: create it unless one of that name is
        (``record``: record it; the flow asked the participants' consent). Raises the
        ``ProviderError`` tree on failure."""

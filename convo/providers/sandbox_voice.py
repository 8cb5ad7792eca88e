"""The sandbox's calls: a simulated phone calling our sandbox lines, with no account.

The web console's phone (``convo.web.console``) plays the caller: it hands the call's
events to the same :class:`~convo.flow.calls.CallRunner` the real providers' webhooks
reach, and shows the instructions it gets back as text. Real HTTP clients can use the
``/webhooks/sandbox_voice/voice/...`` routes as well: they take Telefoon Voice's form
fields (``call_id, from, to, direction, status`` and ``digits``, ``speech_result``, ...;
:func:`convo.providers.telefoon_voice_webhook.parse_call_event`) and answer with the JSON
form of the call instructions (:func:`convo.voice.twiml.render_json`).

Webhooks are unsigned unless ``webhook_secret`` is set; then ``X-Signature:
hex(HMAC-SHA256(secret, raw body))`` is required. The sandbox places no calls: an
outbound call (``convo call``) is refused with a ``ProviderRejected`` saying so.
Options (``[providers.sandbox_voice]``, all optional): ``webhook_secret``,
``allow_unsigned`` (accepted for symmetry).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import httpx

from convo.exceptions import ProviderRejected
from convo.models import CallEvent, Channel, WebhookRequest
from convo.providers._options import ProviderOptions
from convo.providers.callbacks import VOICE_ROUTES
from convo.providers.signing import check_body_hmac
from convo.providers.telefoon_voice_webhook import parse_call_event
from convo.voice.instructions import ensure_instructions
from convo.voice.twiml import RenderError, render_json

#: The provider (section) name the default sandbox lines' calls go through.
SANDBOX_VOICE = "sandbox_voice"


class SandboxVoice:
    """``VoiceProvider`` of the sandbox (see module docstring)."""

    kind: ClassVar[str] = SANDBOX_VOICE
    channel: ClassVar[Channel] = "voice"
    config_options: ClassVar[frozenset[str]] = frozenset({"webhook_secret", "allow_unsigned"})
    routes: ClassVar[tuple[str, ...]] = VOICE_ROUTES

    def __init__(self, name: str = SANDBOX_VOICE, *, webhook_secret: str = "") -> None:
        self.name = name
        self._secret = webhook_secret

    def __repr__(self) -> str:
        return f"<SandboxVoice {self.name!r}>"

    @classmethod
    def from_config(
        cls,
        name: str,
        options: Mapping[str, Any],
        client: httpx.AsyncClient,
        *,
        public_url: str = "",
    ) -> Self:
        """Raises ConfigError on unknown or ill-typed options; ``client`` is unused."""
        opts = ProviderOptions(name, options, cls.config_options)
        opts.boolean("allow_unsigned", False)
        return cls(name, webhook_secret=opts.string("webhook_secret"))

    async def start(self) -> None:
        """Nothing to check at start."""

    async def aclose(self) -> None:
        """Nothing to release."""

    def verify(self, request: WebhookRequest) -> bool:
        """Unsigned is fine without a ``webhook_secret``; with one it is required."""
        return check_body_hmac(request, self._secret, allow_unsigned=True, provider=self.name)

    def parse_call(self, request: WebhookRequest) -> CallEvent:
        return parse_call_event(request, self.name)

    def render(self, instructions: Sequence[object]) -> tuple[bytes, str]:
        """The JSON form; ``RenderError`` for something that is not an instruction."""
        try:
            items = ensure_instructions(instructions)
        except TypeError as exc:
            raise RenderError(str(exc)) from None
        return render_json(items), "application/json"

    async def start_call(
        self, *, to: str, line: str, answer_url: str, status_url: str, ring_timeout: float = 30.0
    ) -> str:
        raise ProviderRejected(
            f"{self.name}: the sandbox places no calls; call the line from the web "
            "console's sandbox phone instead",
            provider=self.name,
            code="sandbox",
        )

    async def end_call(self, call_id: str) -> None:
        """Calls end when the console's phone hangs up: nothing to do here."""

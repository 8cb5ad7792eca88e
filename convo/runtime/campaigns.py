"""The campaign runner of a serving runtime, wired to its parts.

:func:`campaign_runner` builds the :class:`~convo.campaigns.runner.CampaignRunner` over the
runtime's store, with:

* a starter that starts one conversation with :func:`convo.outbound.start_conversation`,
  the one way the business starts a conversation (SMS: the first texts are queued in the
  turn's transaction and handed to the outbox at once; voice: the conversation is prepared and
  the line's voice provider places the call). A contact who opted out of the line is
  ``opted_out``; a refused start (bad params, a call the provider refused) is ``failed``
  by the runner;
* the rate limits: a line's SMS provider's ``rate_limit``, or its voice provider's (1 call
  per second when the adapter names none).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from convo.campaigns.runner import CampaignRunner, StartOutcome, StartRequest
from convo.exceptions import ConfigError, OptedOut
from convo.models import Channel
from convo.runtime.wiring import voice_provider_name

if TYPE_CHECKING:
    from convo.config import Settings
    from convo.providers.base import SmsProvider, VoiceProvider
    from convo.runtime.system import Runtime

DEFAULT_CALL_RATE = 1.0  # calls per second, for a voice adapter that names no rate_limit


def line_rate_limit(
    settings: Settings,
    providers: Mapping[str, SmsProvider],
    voice_providers: Mapping[str, VoiceProvider],
    line: str,
    channel: Channel,
) -> float:
    """The most starts per second ``line``'s provider for ``channel`` takes. ConfigError
    for a line that is not configured or has no provider for the channel."""
    for ln in settings.lines:
        if ln.number != line:
            continue
        if channel == "sms" and ln.provider in providers:
            return providers[ln.provider].rate_limit
        name = voice_provider_name(settings, ln) if channel == "voice" else None
        if name is not None and name in voice_providers:
            return float(getattr(voice_providers[name], "rate_limit", DEFAULT_CALL_RATE))
        raise ConfigError(f"line {line} has no {channel} provider")
    raise ConfigError(f"line {line} is not configured")


def campaign_runner(runtime: Runtime) -> CampaignRunner:
    """The runner of a serving ``runtime`` (module docstring), its parts started."""
    from convo.campaigns.storage import campaigns_of
    from convo.outbound import start_conversation

    async def start(request: StartRequest) -> StartOutcome:
        try:
            started = await start_conversation(
                runtime,
                to=request.to,
                flow=request.flow,
                line=request.line,
                channel=request.channel,
                language=request.language,
                params=request.params,
            )
        except OptedOut as exc:
            return StartOutcome("opted_out", error=str(exc))
        # The outbox's fast path: each start's texts are sent as they come, not by the next
        # sweep in bunches, which a provider that allows little burst answers with 429.
        runtime.outbox.submit(started.messages)
        first = started.messages[0].id if started.messages else None
        return StartOutcome("started", message_id=first)

    def rate_limit(line: str, channel: Channel) -> float:
        return line_rate_limit(
            runtime.settings, runtime.providers, runtime.voice_providers, line, channel
        )

    def flow_params(flow: str) -> Collection[str]:
        spec = runtime.flows.get(flow)
        return frozenset(spec.params) if spec is not None else frozenset()

    store = campaigns_of(runtime.store)
    return CampaignRunner(store, start, rate_limit=rate_limit, flow_params=flow_params)

"""Outbound calls: start a flow by calling someone (``convo call``).

:func:`place_call` does two things, in this order:

1. in the configured store, it prepares the conversation ``(line, "voice", to)`` as
   ``pending`` with the flow, its checked params and language
   (:meth:`~convo.flow.calls.CallRunner.prepare_outbound`);
2. it asks the line's voice provider to place the call, handing it
   ``{public_url}/webhooks/P/voice/answer`` and ``.../voice/status``.

When the callee answers, the provider posts to the running server's answer URL and the server
(which shares the store: SQLite in WAL mode works across processes) begins the prepared flow.
If the provider refuses the call, the prepared conversation is ended again and the
``ProviderError`` is raised. A call that is never answered is ended by its final status
webhook (busy, no-answer, failed).

Call options (:class:`CallOptions`): ``ring_timeout`` (seconds the callee's phone rings
before the call counts as not answered; every voice provider takes it), ``record`` (record
the whole call; the callee's GDPR consent is the caller's business, as with ``convo call
--record``) and ``tts_language`` (the locale the provider speaks in by default, e.g.
``nl-NL``). A provider says which of the last two it takes in its ``call_options`` class
attribute (Telefoon Voice: both; Twilio Voice: ``record``); asking a provider for one it
lacks is a ``ConfigError`` before anything is prepared, never an option silently dropped.

The server must know the flow too (it runs the call): the flow is looked up in
``flows.paths`` of the same settings. The line defaults to the first configured line with a
voice provider (see :func:`convo.runtime.wiring.voice_provider_name`). :func:`place_call`
checks the rest through :func:`convo.outbound.start_conversation`, the one way every
conversation is started: a contact who opted out on that line is not called, and the call
speaks the contact's language unless ``lang`` says otherwise; :func:`dial` is the two steps
above, for it. The store, flows, engine, call runner and voice provider
come from a :class:`~convo.runtime.Runtime` (``DIALER`` parts), opened for the call and
closed after.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convo.bot import Bot
from convo.config import LineSettings, Settings
from convo.exceptions import ConfigError, ConvoError, FlowRuntimeError
from convo.models import CallEvent, CallStatus, ConversationKey
from convo.providers.callbacks import VOICE_ANSWER, VOICE_STATUS, callback_url
from convo.runtime import DIALER, Runtime, voice_provider_name

log = logging.getLogger("convo.dialer")


def voice_line(settings: Settings, line: str | None) -> tuple[LineSettings, str]:
    """The line to call from and its voice provider's name.

    ``line`` None picks the first line with a voice provider. Raises ``ConfigError`` when
    the given line is not configured or has no voice provider, or no line has one.
    """
    if line is None:
        for candidate in settings.lines:
            name = voice_provider_name(settings, candidate)
            if name is not None:
                return candidate, name
        raise ConfigError(
            f"{settings.source}: no line has a voice provider (set [[lines]] provider or "
            "voice_provider to a voice provider such as telefoon_voice)"
        )
    from convo.sms.phone import normalize

    number = normalize(line)
    for candidate in settings.lines:
        if candidate.number == number:
            name = voice_provider_name(settings, candidate)
            if name is None:
                raise ConfigError(
                    f"{settings.source}: line {number} has no voice provider "
                    f"(its provider {candidate.provider!r} only sends texts)"
                )
            return candidate, name
    known = ", ".join(ln.number for ln in settings.lines) or "none"
    raise ConfigError(f"{settings.source}: {number} is not one of our lines (lines: {known})")


@dataclass(frozen=True, slots=True)
class CallOptions:
    """How an outbound call is placed (module docstring). ``ValueError`` for a ring
    timeout that is not a positive number of seconds, or an empty ``tts_language``."""

    ring_timeout: float = 30.0
    record: bool = False
    tts_language: str | None = None

    def __post_init__(self) -> None:
        if not (self.ring_timeout > 0 and math.isfinite(self.ring_timeout)):
            raise ValueError(
                f"ring_timeout must be a positive number of seconds, got {self.ring_timeout}"
            )
        if self.tts_language is not None and not self.tts_language.strip():
            raise ValueError("tts_language is empty (give a locale such as nl-NL)")

    def for_provider(self, provider: object, provider_name: str) -> dict[str, Any]:
        """The ``start_call`` keywords for ``provider``; ``ConfigError`` naming the
        provider and what it takes when it lacks an asked option (its ``call_options``
        class attribute lists ``record`` / ``tts_language``; absent = neither)."""
        supported: frozenset[str] = getattr(provider, "call_options", frozenset())
        asked: dict[str, Any] = {}
        if self.record:
            asked["record"] = True
        if self.tts_language is not None:
            asked["tts_language"] = self.tts_language.strip()
        missing = [name for name in asked if name not in supported]
        if missing:
            can = ", ".join(sorted(supported)) or "neither record nor tts_language"
            raise ConfigError(
                f"voice provider {provider_name!r} cannot set {', '.join(missing)} on a call "
                f"(it takes: {can})"
            )
        return {"ring_timeout": self.ring_timeout} | asked


def _flow_id(flow: str, known: Mapping[str, Any]) -> str:
    """A flow id from an id or a flow file path; it must be among the server's flows."""
    flow_id = flow
    path = Path(flow)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        from convo.flow.loader import load_flow

        flow_id = load_flow(path).id
    if flow_id not in known:
        loaded = ", ".join(sorted(known)) or "none"
        raise FlowRuntimeError(
            f"flow {flow_id!r} is not in flows.paths, so the server could not run the call "
            f"(flows found: {loaded})"
        )
    return flow_id


async def place_call(
    settings: Settings,
    flow: str,
    *,
    to: str,
    line: str | None = None,
    params: Mapping[str, Any] | None = None,
    lang: str | None = None,
    bot: Bot | None = None,
    options: CallOptions | None = None,
) -> str:
    """Call ``to`` from ``line`` and run ``flow`` when they answer; returns the provider's
    call id.

    ``to`` and ``line`` may be written in any form ``convo.sms.phone.normalize`` accepts;
    ``options`` are the call options (module docstring; default :class:`CallOptions`()).
    Raises ``InvalidNumber`` (bad number), ``ConfigError`` (no such voice line, an option
    the provider lacks),
    ``FlowRuntimeError`` (unknown flow, flow without the voice channel, unknown language,
    missing or unknown params, contact opted out), ``FlowError`` (flows that do not load),
    ``StoreError`` and the ``ProviderError`` tree (the provider refused the call).
    """
    from convo.outbound import start_conversation
    from convo.sms.phone import normalize

    callee = normalize(to)
    chosen, _ = voice_line(settings, line)
    async with Runtime(settings, parts=DIALER, bot=bot) as runtime:
        started = await start_conversation(
            runtime,
            to=callee,
            flow=_flow_id(flow, runtime.flows),
            line=chosen.number,
            channel="voice",
            language=lang,
            params=params,
            call_options=options,
        )
    assert started.call_id is not None  # a voice start places a call or raises
    return started.call_id


async def dial(
    runtime: Runtime,
    provider_name: str,
    key: ConversationKey,
    flow_id: str,
    *,
    params: Mapping[str, Any] | None = None,
    lang: str | None = None,
    options: CallOptions | None = None,
) -> str:
    """Prepare ``key``'s conversation on ``flow_id`` and have voice provider
    ``provider_name`` call ``key.contact`` from ``key.line`` (steps 1 and 2 of the module
    docstring) as ``options`` say; returns the provider's call id. The caller has checked
    the line, the flow and the contact's opt-out. Raises ``ConfigError`` (an option the
    provider lacks, before anything is prepared), ``FlowRuntimeError`` (bad params) and the
    ``ProviderError`` tree, after ending the prepared conversation."""
    provider = runtime.voice_providers[provider_name]
    how = (options or CallOptions()).for_provider(provider, provider_name)
    runner = runtime.calls
    await runner.prepare_outbound(key, flow_id, params=params, lang=lang)
    public_url = runtime.settings.server.public_url
    try:
        call_id = await provider.start_call(
            to=key.contact,
            line=key.line,
            answer_url=callback_url(public_url, provider_name, VOICE_ANSWER),
            status_url=callback_url(public_url, provider_name, VOICE_STATUS),
            **how,
        )
    except ConvoError:
        # Nobody will ever answer this call: close the prepared conversation.
        failed = CallEvent(
            provider=provider_name,
            call_id="",
            line=key.line,
            caller=key.contact,
            direction="outbound",
            status=CallStatus.FAILED,
        )
        await runner.status(failed)
        raise
    log.info("call %s placed: %s -> %s, flow %s", call_id, key.line, key.contact, flow_id)
    return call_id

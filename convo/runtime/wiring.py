"""What the settings say about providers, lines and flows: pure decisions, no I/O.

Every question "which adapter, which channel, which provider carries this line's calls,
which flows" is answered here, from a :class:`~convo.config.Settings`, so the runtime, the
web app and the dialer agree:

* a provider section's kind comes from ``registry.provider_kind`` and its channel from the
  registry entry of that kind;
* a line's calls go through its ``voice_provider`` when set (a line with ``channels =
  ["sms", "voice"]`` texts through ``provider`` and calls through ``voice_provider``), else
  through ``provider`` itself when that is a voice provider (``provider =
  "telefoon_voice"``), else nowhere (:func:`voice_provider_name`);
* the flows are those of ``flows.paths``, checked against the bot's hooks, and every line's
  flow must be among them (:func:`line_flows`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from convo.exceptions import ConfigError
from convo.providers.registry import create_provider, kinds, lookup, provider_kind

if TYPE_CHECKING:
    import httpx

    from convo.bot import Bot
    from convo.config import LineSettings, Settings
    from convo.flow.spec import FlowSpec
    from convo.models import Channel


def channel_of(settings: Settings, name: str) -> Channel:
    """The channel provider ``name`` serves; ``ConfigError`` for an unknown kind."""
    return lookup(provider_kind(name, settings.providers.get(name))).channel


def build_providers(
    settings: Settings,
    client: httpx.AsyncClient | Callable[[str], httpx.AsyncClient],
    channel: Channel,
) -> dict[str, Any]:
    """The adapter of every configured provider of ``channel``, by name, each with its
    HTTP client: ``client`` for all of them, or ``client(name)`` for each. ``ConfigError``
    names a bad section. Building acquires nothing, so a failure half-way leaks nothing."""
    client_for = client if callable(client) else (lambda _name: client)
    return {
        name: create_provider(
            name,
            settings.providers.get(name, {}),
            client_for(name),
            public_url=settings.server.public_url,
        )
        for name in settings.provider_names()
        if channel_of(settings, name) == channel
    }


def voice_provider_name(settings: Settings, line: LineSettings) -> str | None:
    """The provider carrying ``line``'s calls (module docstring), or None if it has none.
    ``ConfigError`` when ``voice_provider`` names a provider that is not a voice one."""
    if line.voice_provider:
        if channel_of(settings, line.voice_provider) != "voice":
            raise ConfigError(
                f"{settings.source}: line {line.number}: voice_provider "
                f"{line.voice_provider!r} is not a voice provider "
                f"(known: {', '.join(kinds('voice'))})"
            )
        return line.voice_provider
    if channel_of(settings, line.provider) == "voice":
        return line.provider
    return None


def web_extensions(settings: Settings) -> list[str]:
    """The web extension modules (registry) of the kinds our lines use, sorted."""
    found = {lookup(provider_kind(ln.provider, settings.providers.get(ln.provider))).web_extension
             for ln in settings.lines}  # fmt: skip
    return sorted(found - {""})


def line_flows(settings: Settings, bot: Bot | None) -> dict[str, FlowSpec]:
    """The flows of ``flows.paths`` (hooks checked against ``bot``), by id. ``FlowError``
    for flows that do not load; ``ConfigError`` for a line whose flow, or one of whose
    keyword triggers' flows, is not among them."""
    from convo.flow.loader import load_flows

    flows = load_flows(list(settings.flows.paths), hooks=bot.hook_names() if bot else None)
    for line in settings.lines:
        wanted = [("", line.flow)] + [(f"trigger {w!r}: ", f) for w, f in line.triggers]
        for what, flow in wanted:
            if flow not in flows:
                known = ", ".join(sorted(flows)) or "none"
                raise ConfigError(
                    f"{settings.source}: line {line.number}: {what}flow {flow!r} is not in "
                    f"{', '.join(settings.flows.paths)} (flows found: {known})"
                )
    return flows

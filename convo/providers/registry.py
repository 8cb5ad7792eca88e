"""The one table of provider kinds: kind -> adapter class (imported lazily) and channel.

A config section ``[providers.NAME]`` is served by the adapter of its *kind*: its ``type``
option, else its section name (so ``[providers.vonage]`` just works, and
``[providers.backup] type = "vonage"`` is a second Vonage account). :func:`provider_kind`
is the only place that rule is written; config validation, the runtime and the simulator
launcher all ask it.

Each :class:`ProviderKind` names its adapter as ``"module:Class"``, imported on first use
so unused adapters cost nothing, and the channel it serves (``sms`` or ``voice``). The
adapter class declares the same ``kind`` and ``channel`` itself (with its config options
and webhook routes, see :class:`~convo.providers.base.Provider`); :func:`adapter_class`
refuses a class that disagrees with its entry. An entry may also name a *web extension*:
a module whose ``add_routes(app)`` serves extra routes for that kind (the sandbox's
simulated phones). The web app imports it only when a line uses that kind; providers
themselves never import the web layer.

Every adapter class has ``from_config(name, options, client, *, public_url="")``: ``name``
is the section name, ``options`` the section as a mapping (``${ENV}`` already expanded),
``client`` the shared ``httpx.AsyncClient``, ``public_url`` the server's public base URL
(callback URLs come from :func:`convo.providers.callbacks.callback_url`). Unknown or invalid
options raise ``ConfigError`` naming the section and key.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from convo.exceptions import ConfigError
from convo.models import Channel

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True, slots=True)
class ProviderKind:
    """One provider kind convo can serve."""

    kind: str
    channel: Channel
    adapter: str  # "module:Class"
    web_extension: str = ""  # a module with add_routes(app), or "" for none


_KINDS: dict[str, ProviderKind] = {}


def register(entry: ProviderKind) -> None:
    """Add a provider kind (a name already registered is replaced)."""
    _KINDS[entry.kind] = entry


for _entry in (
    ProviderKind(
        "sandbox", "sms", "convo.providers.sandbox:SandboxSms", web_extension="convo.web.sandbox"
    ),
    ProviderKind("sandbox_voice", "voice", "convo.providers.sandbox_voice:SandboxVoice"),
    ProviderKind("vonage", "sms", "convo.providers.vonage:VonageSms"),
    ProviderKind("telefoon_sms", "sms", "convo.providers.telefoon_sms:TelefoonSms"),
    ProviderKind("telefonie_sms", "sms", "convo.providers.telefonie_sms:TelefonieSms"),
    ProviderKind("enco", "sms", "convo.providers.enco:EncoSms"),
    ProviderKind("telefoon_voice", "voice", "convo.providers.telefoon_voice:TelefoonVoice"),
    ProviderKind("twilio", "sms", "convo.providers.twilio_sms:TwilioSms"),
    ProviderKind("twilio_voice", "voice", "convo.providers.twilio_voice:TwilioVoice"),
    ProviderKind("vonage_voice", "voice", "convo.providers.vonage_voice:VonageVoice"),
):
    register(_entry)


def kinds(channel: Channel | None = None) -> list[str]:
    """The registered kinds (of one channel, when given), sorted."""
    return sorted(k for k, e in _KINDS.items() if channel is None or e.channel == channel)


def provider_kind(name: str, section: Mapping[str, Any] | None) -> str:
    """The kind serving ``[providers.NAME]``: its ``type`` option, else ``name`` (also when
    there is no such section: a line may name a kind without configuring it)."""
    if section is None:
        return name
    return str(section.get("type", name))


def lookup(kind: str) -> ProviderKind:
    """The entry of ``kind``; ``ConfigError`` ("unknown provider", with the closest known
    kind as a hint) when convo has no adapter for it."""
    entry = _KINDS.get(kind)
    if entry is None:
        known = kinds()
        close = difflib.get_close_matches(kind, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown provider {kind!r}{hint}; known providers: {', '.join(known)}")
    return entry


def adapter_class(kind: str) -> Any:
    """The adapter class of ``kind``, imported now. ``ConfigError`` for an unknown kind;
    ``TypeError`` when the class does not declare the kind and channel of its entry."""
    entry = lookup(kind)
    module_name, _, attr = entry.adapter.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    if getattr(cls, "kind", None) != entry.kind or getattr(cls, "channel", None) != entry.channel:
        raise TypeError(
            f"{entry.adapter} declares kind {getattr(cls, 'kind', None)!r} and channel "
            f"{getattr(cls, 'channel', None)!r}; its registry entry says {entry.kind!r}, "
            f"{entry.channel!r}"
        )
    return cls


def create_provider(
    name: str,
    options: Mapping[str, Any],
    client: httpx.AsyncClient,
    *,
    public_url: str = "",
) -> Any:
    """Build the adapter for config section ``[providers.NAME]`` (its kind from
    :func:`provider_kind`). Acquires nothing: the client is shared."""
    cls = adapter_class(provider_kind(name, options))
    return cls.from_config(name, options, client, public_url=public_url)

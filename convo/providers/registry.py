"""Provider names -> adapter classes, imported lazily so unused adapters cost nothing.

Every adapter class has ``from_config(name, options, client, *, public_url="")``: ``name``
is the config section name (``[providers.NAME]``), ``options`` that section as a mapping
(``${ENV}`` already expanded), ``client`` the shared ``httpx.AsyncClient``, ``public_url``
the server's public base URL (callback URLs are ``{public_url}/webhooks/{name}/...``, never
built from request data). Unknown or invalid options raise ``ConfigError`` naming the section
and key.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import httpx

from convo.exceptions import ConfigError

SMS_PROVIDERS: dict[str, str] = {
    "sandbox": "convo.providers.sandbox:SandboxSms",
    "vonage": "convo.providers.vonage:VonageSms",
    "telefoon_sms": "convo.providers.telefoon_sms:TelefoonSms",
    "telefonie_sms": "convo.providers.telefonie_sms:TelefonieSms",
    "enco": "convo.providers.enco:EncoSms",
}
VOICE_PROVIDERS: dict[str, str] = {
    "telefoon_voice": "convo.providers.telefoon_voice:TelefoonVoice",
}


def adapter_class(kind: str) -> Any:
    """The adapter class for a provider kind (``vonage``, ``telefoon_voice``, ...)."""
    target = SMS_PROVIDERS.get(kind) or VOICE_PROVIDERS.get(kind)
    if target is None:
        known = ", ".join(sorted(SMS_PROVIDERS | VOICE_PROVIDERS))
        raise ConfigError(f"unknown provider {kind!r}; known providers: {known}")
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def create_provider(
    name: str,
    options: Mapping[str, Any],
    client: httpx.AsyncClient,
    *,
    kind: str | None = None,
    public_url: str = "",
) -> Any:
    """Build the adapter for config section ``[providers.NAME]``. ``kind`` defaults to
    ``options["type"]`` and then to ``name`` (so ``[providers.vonage]`` just works)."""
    kind = kind or str(options.get("type", name))
    return adapter_class(kind).from_config(name, options, client, public_url=public_url)

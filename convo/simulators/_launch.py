"""How ``convo simulator PROVIDER`` picks its simulator, credentials, port and webhook URL.

With a config (``--config``, ``$CONVO_CONFIG`` or ``./convo.toml``, read by
:func:`convo.config.load_settings`) the simulator takes the provider's credentials and
secrets from ``[providers.PROVIDER]`` (or from the one section whose ``type`` is PROVIDER),
so it accepts what ``convo serve`` sends and signs its webhooks the way convo checks them;
the webhook base is ``--webhook-url``, else ``server.public_url``, else
``http://127.0.0.1:8080``; the port is ``--port``, else the port of the section's
``base_url`` when that points at this machine, else 9000. Without a section each simulator
keeps its development defaults. :meth:`Launch.describe` says all this on start, secrets
masked.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from convo.config import Settings, is_secret_key
from convo.exceptions import ConfigError
from convo.providers.callbacks import webhook_path
from convo.providers.registry import kinds, provider_kind
from convo.simulators import SIMULATORS

DEFAULT_WEBHOOK_URL = "http://127.0.0.1:8080"
DEFAULT_PORT = 9000
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0"})  # noqa: S104  # compared, not bound
SMS_KINDS = frozenset(kinds("sms")) & frozenset(SIMULATORS)  # the ones with a control API


def mask(value: str) -> str:
    """A secret as it may be printed: its first two characters at most, never all of it."""
    if not value:
        return "(none)"
    return ("****" if len(value) <= 4 else value[:2] + "******") + f" ({len(value)} chars)"


@dataclass
class Launch:
    """A simulator ready to serve, and where its settings came from."""

    kind: str  # the simulator (provider type)
    name: str  # the config section name, also the webhook path segment
    simulator: Any
    host: str
    port: int
    webhook_url: str
    source: str | None  # "convo.toml [providers.vonage]", or None for the defaults
    section: Mapping[str, Any]
    auto_deliver: bool
    delay: float

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def describe(self) -> list[str]:
        """The start-up banner: what this simulator accepts and where it calls convo."""
        creds = self.simulator.credentials()
        shown = " ".join(f"{k}={mask(v) if is_secret_key(k) else v}" for k, v in creds.items())
        lines = [
            f"{self.kind} simulator on {self.url}",
            f"  settings:    {self.source or 'development defaults (no [providers.' + self.name + '] in the config)'}",  # noqa: E501
            f"  credentials: {shown}",
            f"  webhooks to: {self.webhook_url}{webhook_path(self.name, '...')}",
        ]
        if self.kind in SMS_KINDS:
            deliver = f"after {self.delay:g}s" if self.auto_deliver else "off (--auto-deliver)"
            lines += [
                "  control API: POST /_simulator/inbound {from,to,text} · "
                "POST /_simulator/status {message_id,status} · GET /_simulator/sent",
                f"  auto delivery receipts: {deliver}",
            ]
            if self.kind == "telefonie_sms":
                lines.append(
                    '  inbound MMS: add "media": [{content_type,base64}] to /_simulator/inbound'
                )
        else:
            lines.append(
                "  control API: GET|POST /_simulator/calls {from,to,inputs|live} · "
                "POST /_simulator/calls/ID/keys|say|silence|hangup · "
                "GET /_simulator/calls/ID/transcript · POST /_simulator/answers {to,inputs|live}"
            )
        lines += self._warnings()
        return lines

    def _warnings(self) -> list[str]:
        out = []
        base = str(self.section.get("base_url") or "")
        if self.source and base.rstrip("/") != self.url:
            out.append(
                f"  note: [providers.{self.name}] base_url is {base or '(the real API)'}; "
                f"set it to {self.url} so convo sends here"
            )
        unsigned = "webhooks go unsigned (convo needs allow_unsigned = true)"
        if self.kind == "vonage" and not self.simulator.signature_secret:
            out.append(f"  note: no signature_secret: {unsigned}")
        if self.kind in ("telefoon_sms", "telefonie_sms") and not self.simulator.webhook_secret:
            out.append(f"  note: no webhook_secret: {unsigned}")
        return out


def find_section(provider: str, settings: Settings) -> tuple[str, str, Mapping[str, Any] | None]:
    """``(kind, section name, section or None)`` for the ``convo simulator`` argument."""
    providers = settings.providers
    if provider in providers:
        section = providers[provider]
        return provider_kind(provider, section), provider, section
    if provider in SIMULATORS:
        typed = [n for n, s in providers.items() if provider_kind(n, s) == provider]
        if len(typed) == 1:
            return provider, typed[0], providers[typed[0]]
        return provider, provider, None
    known = ", ".join(sorted(SIMULATORS))
    raise ConfigError(f"no simulator for {provider!r}; known: {known}")


def plan(
    provider: str,
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    webhook_url: str | None = None,
    auto_deliver: bool = False,
    delay: float = 0.5,
) -> Launch:
    """Build the simulator ``convo simulator`` serves (see the module docstring)."""
    kind, name, section = find_section(provider, settings)
    if kind not in SIMULATORS:
        known = ", ".join(sorted(SIMULATORS))
        raise ConfigError(f"[providers.{name}] type {kind!r} has no simulator; known: {known}")
    has_config = settings.source != "<defaults>"
    if webhook_url is None:
        webhook_url = settings.server.public_url if has_config else DEFAULT_WEBHOOK_URL
    webhook_url = webhook_url.rstrip("/")
    if not webhook_url.startswith(("http://", "https://")):
        raise ConfigError(
            f"--webhook-url: expected an http:// or https:// URL, got {webhook_url!r}"
        )
    options: Mapping[str, Any] = section if section is not None else {}
    module_name, _, attr = SIMULATORS[kind].partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    simulator = cls.from_config(
        options,
        webhook_base=webhook_url,
        provider_name=name,
        auto_status=auto_deliver,
        status_delay=delay,
    )
    source = f"{settings.source} [providers.{name}]" if section is not None else None
    return Launch(
        kind=kind,
        name=name,
        simulator=simulator,
        host=host,
        port=port if port is not None else _local_port(options) or DEFAULT_PORT,
        webhook_url=webhook_url,
        source=source,
        section=options,
        auto_deliver=auto_deliver,
        delay=delay,
    )


def _local_port(section: Mapping[str, Any]) -> int | None:
    """The port of the section's ``base_url`` if it points at this machine."""
    try:
        parts = urlsplit(str(section.get("base_url") or ""))
        port = parts.port
    except ValueError:
        return None
    return port if parts.hostname in LOCAL_HOSTS else None

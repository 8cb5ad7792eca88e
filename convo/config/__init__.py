"""convo.toml + environment -> frozen settings objects.

This package is the only place that reads environment variables. :func:`load_settings` finds
the file (an explicit path, else ``$CONVO_CONFIG``, else ``./convo.toml`` when present, else
the embedded defaults), expands ``${VAR}`` in every string from the environment
(:mod:`convo.config.reading`), checks every table, key and type, and returns a
:class:`~convo.config.settings.Settings`. Everything else receives these objects.

Errors are :class:`~convo.exceptions.ConfigError` naming the file, the table and key, and
what was expected: ``convo.toml: [server] port: expected an integer, got 'abc'``. Values of
secret-looking keys are never echoed, in errors or in reprs (:class:`Secret`,
:class:`ProviderSection`).

Tables beyond the basic ones (``[server]``, ``[store]``, ``[flows]``, ``[[lines]]``,
``[providers.NAME]``), all optional:

* ``[webhooks]`` ``max_body`` (bytes, default 1 MiB; larger bodies get 413),
  ``rejected_dir`` (default ``var/rejected``: one JSON file per malformed webhook, kept for
  inspection, see ``convo.web.rejected``), ``rejected_quota`` (bytes those files may take
  together, default 100 MiB, the oldest evicted first; 0 keeps none), ``concat_timeout``
  (seconds to wait for the missing parts of a long text before delivering what arrived,
  default 60), ``max_pending_turns`` (texts acknowledged whose turns have not finished in
  this process, default 10,000: beyond it inbound texts are refused with 503 until the
  turns catch up, see ``convo.backpressure``; 0 turns the limit off);
* ``[outbox]`` ``max_age`` (seconds or a duration such as ``"24h"``, the default: how long
  failed sends are retried before the message is dead-lettered, see ``convo.retry``),
  ``base_delay`` (1.0 s), ``max_delay`` (60 s), ``sweep_interval`` (5 s),
  ``reconcile_after`` (600 s: a message still ``sent`` this long after its last update is
  looked up at its provider, see ``convo.reconcile``), ``concurrency`` (sends in flight to
  each provider; by default enough to hold its ``rate_limit`` at half a second per send, 1 to
  100; it also bounds the replies a crash leaves in doubt and sends twice, see
  ``convo.outbox``), ``claim_lease`` (120 s: how long a reply being sent stays the claiming
  process's; after it another process takes it over, so keep it above a send's timeout,
  20 s); ``max_attempts`` is deprecated and ignored (accepted so older files still load;
  the outbox logs a warning);
  ``max_backlog`` (replies pending, default 10,000) and ``max_lag`` (seconds or a duration,
  default 60: how long the oldest due reply has waited): beyond either, inbound texts are
  refused with 503 until the outbox catches up (``convo.backpressure``); 0 turns a limit off;
* ``[server]`` (:class:`ServerSettings`): ``shutdown_grace`` (seconds a stopping server
  gives the requests, turns and sends in flight, 10; ``shutdown_timeout`` is its older
  name), ``keepalive_timeout`` (15), ``body_timeout`` (30), ``max_connections`` (1000),
  ``event_loop`` (``auto``: uvloop when it is installed, the ``speed`` extra; ``asyncio``;
  ``uvloop``);
  ``workers`` (1: processes of ``convo serve`` on one port; above 1 needs PostgreSQL);
* ``[handoff]`` queue name -> phone number (E.164) or ``sip:`` URI: where a flow's
  ``handoff: {queue: NAME}`` transfers a call (``reception = "+3225550100"``);
* ``[logging]`` (:class:`~convo.logs.LogSettings`): ``level`` (``info``), ``format``
  (``text`` or ``json``), ``access_log`` (true), ``mask_numbers`` (true);
* ``[metrics]`` (:class:`MetricsSettings`): ``port`` (0: ``/metrics`` on the server's port
  behind the admin token), ``host`` (``127.0.0.1``);
* ``[[lines]] voice_provider``: the provider carrying the line's calls when ``provider``
  is its SMS provider (a line with ``provider = "telefoon_voice"`` needs none);
* ``[[lines]] triggers``: keyword -> flow id, ``{"AFSPRAAK" = "appointment"}``: a text
  whose first word is the keyword starts the flow (``convo.flow.triggers``).

With no ``[[lines]]`` the sandbox defaults apply: one line per flow found in
``flows.paths``, sorted by flow id, numbered ``+32460000101``, ``+32460000102``, ..., all
on provider ``sandbox``; the calls of a flow with the ``voice`` channel go through
``sandbox_voice`` (the web console's phone, ``convo.providers.sandbox_voice``).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from convo.config.reading import Table, expand_document, shown
from convo.config.settings import (
    EVENT_LOOPS,
    FlowSettings,
    IPNetwork,
    LineSettings,
    MetricsSettings,
    OutboxSettings,
    ProviderSection,
    Secret,
    ServerSettings,
    Settings,
    StoreSettings,
    WebhookSettings,
    is_secret_key,
)
from convo.exceptions import ConfigError, InvalidNumber
from convo.flow.durations import parse_duration
from convo.logs import FORMATS, LEVELS, LogSettings
from convo.models import CHANNELS, Channel
from convo.store.urls import store_url

__all__ = [
    "FlowSettings",
    "LineSettings",
    "LogSettings",
    "MetricsSettings",
    "OutboxSettings",
    "ProviderSection",
    "Secret",
    "ServerSettings",
    "Settings",
    "StoreSettings",
    "WebhookSettings",
    "is_secret_key",
    "load_settings",
    "parse_settings",
    "sandbox_lines",
]

DEFAULT_FILE = "convo.toml"
SANDBOX_PROVIDER = "sandbox"
SANDBOX_VOICE = "sandbox_voice"
SHORT_CODE = re.compile(r"[1-9][0-9]{2,7}")
#: A ``[providers.NAME]`` name: it becomes a URL path segment and part of file names.
PROVIDER_NAME = re.compile(r"[a-z0-9_]+")


def _line_number(raw: str, where: str) -> str:
    """E.164 for phone numbers; alphanumeric sender names and short codes (3-8 digits, not
    starting with 0: Enco's dedicated addresses such as ``8888``) are kept as they are."""
    if SHORT_CODE.fullmatch(raw):
        return raw
    if any(c.isalpha() for c in raw):
        from convo.sms.phone import is_sender_id

        if not is_sender_id(raw):
            raise ConfigError(
                f"{where}: {raw!r} is neither a phone number nor a sender name "
                "(1-11 letters, digits or spaces)"
            )
        return raw
    from convo.sms.phone import normalize  # imported late: phonenumbers is heavy

    try:
        return normalize(raw)
    except InvalidNumber as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _lines(source: str, raw: object) -> tuple[LineSettings, ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: lines: expected [[lines]] tables, got {shown('lines', raw)}")
    lines: list[LineSettings] = []
    for i, item in enumerate(raw):
        table = Table(
            source,
            f"[[lines]] #{i + 1}",
            item,
            frozenset({"number", "provider", "flow", "channels", "voice_provider", "triggers"}),
        )
        for key in ("number", "provider", "flow"):
            if not table.data.get(key):
                raise ConfigError(f"{table.where(key)}: missing; expected a non-empty string")
        channels = table.strings("channels", ("sms",))
        bad = [c for c in channels if c not in CHANNELS]
        if bad or not channels:
            raise ConfigError(
                f"{table.where('channels')}: expected a non-empty list of "
                f"{' and '.join(CHANNELS)}, got {list(channels)!r}"
            )
        number = _line_number(table.string("number", ""), table.where("number"))
        if any(line.number == number for line in lines):
            raise ConfigError(f"{table.where('number')}: line {number} is configured twice")
        checked = tuple(ch for c in channels for ch in CHANNELS if ch == c)
        provider, flow = table.string("provider", ""), table.string("flow", "")
        voice = table.string("voice_provider", "")
        triggers = _triggers(table)
        lines.append(LineSettings(number, provider, flow, checked, voice, triggers))
    return tuple(lines)


def _triggers(table: Table) -> tuple[tuple[str, str], ...]:
    """A line's ``triggers = {"KEYWORD" = "flow"}``: one word each, no two that read the
    same (case and accents aside); whether the flows exist is checked when they load."""
    raw = table.data.get("triggers", {})
    where = table.where("triggers")
    if not isinstance(raw, dict):
        raise ConfigError(f'{where}: expected a table such as {{"AFSPRAAK" = "appointment"}}')
    from convo.flow.triggers import keyword  # imported late: the flow package is heavy

    seen: dict[str, str] = {}
    for word, flow in raw.items():
        if not isinstance(flow, str) or not flow:
            raise ConfigError(f"{where}: {word!r}: expected a flow id, got {shown(word, flow)}")
        key = keyword(word)
        if not key or len(word.split()) != 1 or not any(c.isalnum() for c in key):
            raise ConfigError(f"{where}: {word!r}: a trigger is one word")
        if key in seen:
            raise ConfigError(f"{where}: {seen[key]!r} and {word!r} are the same keyword")
        seen[key] = word
    return tuple((word, flow) for word, flow in raw.items())


def _providers(source: str, raw: object) -> dict[str, ProviderSection]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: [providers]: expected a table of [providers.NAME] tables")
    out: dict[str, ProviderSection] = {}
    for name, section in raw.items():
        if not PROVIDER_NAME.fullmatch(name):
            raise ConfigError(
                f"{source}: [providers.{json.dumps(name)}]: a provider name may only hold "
                "a-z, 0-9 and _ (it becomes part of webhook URLs and file names)"
            )
        if not isinstance(section, dict):
            raise ConfigError(f"{source}: [providers.{name}]: expected a table")
        out[name] = ProviderSection(section, source)
    return out


def _check_provider_kinds(
    source: str, lines: tuple[LineSettings, ...], providers: Mapping[str, ProviderSection]
) -> None:
    """Every provider a line names, and every [providers.NAME] section, is a kind convo
    has an adapter for (``registry.provider_kind``): a typo fails here, not silently."""
    from convo.providers.registry import lookup, provider_kind

    def check(name: str, where: str) -> None:
        try:
            lookup(provider_kind(name, providers.get(name)))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None

    for name in providers:
        check(name, f"{source}: [providers.{name}]")
    for i, line in enumerate(lines):
        check(line.provider, f"{source}: [[lines]] #{i + 1} provider")
        if line.voice_provider:
            check(line.voice_provider, f"{source}: [[lines]] #{i + 1} voice_provider")


def _networks(where: str, entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """``[server] trusted_proxies``: each an address (``10.0.0.5``) or a network
    (``10.0.0.0/8``, ``fd00::/8``)."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ConfigError(
                f"{where}: {entry!r} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/8)"
            ) from None
    return tuple(networks)


def _store(source: str, raw: object) -> StoreSettings:
    keys = frozenset({"url", "seen_retention", "visits_retention"})
    table = Table(source, "[store]", raw, keys)
    default = StoreSettings()
    url = table.string("url", default.url)
    store_url(url, table.where("url"))  # the store's own decoder: one set of rules
    seen = _retention(table, "seen_retention", default.seen_retention)
    visits = _retention(table, "visits_retention", default.visits_retention)
    return StoreSettings(url, seen, visits)


def _retention(table: Table, key: str, default: float) -> float:
    """A duration above 0 (seconds, or e.g. ``"30d"``) at ``key`` of ``table``."""
    try:
        seconds = parse_duration(table.data.get(key, default))
    except ValueError:
        seconds = 0.0
    if seconds <= 0:
        raise table._bad(key, "a duration above 0 (seconds, or e.g. 12h, 30d)")
    return seconds


def _handoff(source: str, raw: object) -> dict[str, str]:
    """``[handoff]``: queue -> E.164 number (or a ``sip:`` URI, kept as it is)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: [handoff]: expected a table of queue = number")
    out: dict[str, str] = {}
    for queue, number in raw.items():
        where = f"{source}: [handoff] {queue}"
        if not isinstance(number, str) or not number:
            raise ConfigError(f"{where}: expected a phone number, got {shown(queue, number)}")
        if number.lower().startswith(("sip:", "sips:")):
            out[queue] = number
            continue
        from convo.sms.phone import normalize

        try:
            out[queue] = normalize(number)
        except InvalidNumber as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return out


def _logging(source: str, raw: object) -> LogSettings:
    table = Table(
        source, "[logging]", raw, frozenset({"level", "format", "access_log", "mask_numbers"})
    )
    default = LogSettings()
    level = table.string("level", default.level).lower()
    if level not in LEVELS:
        raise table._bad("level", f"one of {', '.join(LEVELS)}")
    kind = table.string("format", default.format)
    if kind not in FORMATS:
        raise table._bad("format", "text or json")
    flags = {}
    for key in ("access_log", "mask_numbers"):
        flags[key] = table.data.get(key, getattr(default, key))
        if not isinstance(flags[key], bool):
            raise table._bad(key, "true or false")
    return LogSettings(level, "json" if kind == "json" else "text", **flags)


def _metrics(source: str, raw: object) -> MetricsSettings:
    table = Table(source, "[metrics]", raw, frozenset({"port", "host"}))
    return MetricsSettings(
        table.integer("port", 0, maximum=65535), table.string("host", MetricsSettings().host)
    )


def sandbox_lines(flow_paths: tuple[str, ...]) -> tuple[LineSettings, ...]:
    """The default lines: one sandbox line per flow id found in ``flow_paths``, sorted."""
    import yaml

    from convo.flow.loader import discover

    found: dict[str, tuple[Channel, ...]] = {}
    for path in discover([p for p in flow_paths if Path(p).exists()]):
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue  # the flow loader reports broken files with their position
        if isinstance(doc, dict) and isinstance(doc.get("flow"), str):
            declared = doc.get("channels")
            listed = declared if isinstance(declared, list) else ["sms"]
            channels = tuple(ch for c in listed for ch in CHANNELS if ch == c) or ("sms",)
            found[doc["flow"]] = channels
    return tuple(
        LineSettings(
            f"+3246000{101 + i:04d}",
            SANDBOX_PROVIDER,
            flow_id,
            found[flow_id],
            SANDBOX_VOICE if "voice" in found[flow_id] else "",
        )
        for i, flow_id in enumerate(sorted(found))
    )


def parse_settings(
    data: Mapping[str, Any], *, source: str = DEFAULT_FILE, env: Mapping[str, str] | None = None
) -> Settings:
    """Settings from an already-parsed TOML document (see module docstring)."""
    env = dict(os.environ) if env is None else env
    known = {
        *("server", "store", "flows", "lines", "providers", "webhooks", "outbox", "handoff"),
        *("logging", "metrics"),
    }
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"{source}: unknown table [{unknown[0]}]; expected one of {', '.join(sorted(known))}"
        )
    doc = expand_document(dict(data), env, source)

    srv = Table(
        source,
        "[server]",
        doc.get("server", {}),
        frozenset(
            {
                *("host", "port", "public_url", "api_token", "shutdown_grace"),
                *("shutdown_timeout", "keepalive_timeout", "body_timeout", "max_connections"),
                *("event_loop", "workers", "trusted_proxies"),
            }
        ),
    )
    host = srv.string("host", "127.0.0.1")
    port = srv.integer("port", 8080, maximum=65535)
    public_url = srv.string("public_url", f"http://{host}:{port}").rstrip("/")
    if not public_url.startswith(("http://", "https://")):
        raise ConfigError(f"{srv.where('public_url')}: expected an http:// or https:// URL")
    token = srv.string("api_token", "") if "api_token" in srv.data else ""
    if "shutdown_grace" in srv.data and "shutdown_timeout" in srv.data:
        raise ConfigError(
            f"{srv.where('shutdown_timeout')}: the older name of shutdown_grace; give one of them"
        )
    grace_key = "shutdown_timeout" if "shutdown_timeout" in srv.data else "shutdown_grace"
    defaults = ServerSettings()
    server = ServerSettings(
        host,
        port,
        public_url,
        Secret(token) if token else None,
        srv.number(grace_key, defaults.shutdown_grace),
        srv.number("keepalive_timeout", defaults.keepalive_timeout),
        srv.number("body_timeout", defaults.body_timeout),
        srv.integer("max_connections", defaults.max_connections, minimum=1),
        srv.choice("event_loop", defaults.event_loop, EVENT_LOOPS),
        srv.integer("workers", defaults.workers, minimum=1),
        _networks(srv.where("trusted_proxies"), srv.strings("trusted_proxies", ())),
    )

    store = _store(source, doc.get("store", {}))

    flo = Table(source, "[flows]", doc.get("flows", {}), frozenset({"paths"}))
    flows = FlowSettings(flo.strings("paths", ("flows",)))

    hooks = Table(
        source,
        "[webhooks]",
        doc.get("webhooks", {}),
        frozenset(
            {"max_body", "rejected_dir", "concat_timeout", "rejected_quota", "max_pending_turns"}
        ),
    )
    webhooks = WebhookSettings(
        hooks.integer("max_body", 1024 * 1024, minimum=1),
        hooks.string("rejected_dir", "var/rejected"),
        hooks.number("concat_timeout", 60.0),
        hooks.integer("rejected_quota", 100 * 1024 * 1024),
        hooks.integer("max_pending_turns", WebhookSettings().max_pending_turns),
    )

    box = Table(
        source,
        "[outbox]",
        doc.get("outbox", {}),
        frozenset(
            {
                *("max_attempts", "base_delay", "max_delay", "sweep_interval"),
                *("reconcile_after", "max_age", "concurrency", "claim_lease"),
                *("max_backlog", "max_lag"),
            }
        ),
    )
    try:
        max_age = parse_duration(box.data.get("max_age", OutboxSettings().max_age))
    except ValueError:
        max_age = 0.0
    if max_age <= 0:
        raise box._bad("max_age", "a duration above 0 (seconds, or e.g. 24h, 2d)")
    try:
        max_lag = parse_duration(box.data.get("max_lag", OutboxSettings().max_lag))
    except ValueError:
        max_lag = -1.0
    if max_lag < 0:
        raise box._bad("max_lag", "a duration of 0 or more (seconds, or e.g. 90s, 2m)")
    outbox = OutboxSettings(
        box.integer("max_attempts", 5, minimum=1) if "max_attempts" in box.data else None,
        box.number("base_delay", 1.0),
        box.number("max_delay", 60.0),
        box.number("sweep_interval", 5.0),
        box.number("reconcile_after", 600.0),
        max_age,
        box.integer("concurrency", 1, minimum=1) if "concurrency" in box.data else None,
        max_backlog=box.integer("max_backlog", OutboxSettings().max_backlog),
        max_lag=max_lag,
        claim_lease=box.number("claim_lease", OutboxSettings().claim_lease),
    )
    if outbox.claim_lease <= 0:
        raise box._bad("claim_lease", "a number of seconds above 0")

    providers = _providers(source, doc.get("providers", {}))
    lines = _lines(source, doc["lines"]) if "lines" in doc else sandbox_lines(flows.paths)
    handoff = _handoff(source, doc.get("handoff", {}))
    _check_provider_kinds(source, lines, providers)
    return Settings(
        server,
        store,
        flows,
        lines,
        providers,
        webhooks,
        outbox,
        source,
        handoff=handoff,
        logging=_logging(source, doc.get("logging", {})),
        metrics=_metrics(source, doc.get("metrics", {})),
    )


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read settings: ``path``, else ``$CONVO_CONFIG``, else ``./convo.toml`` if it exists,
    else the embedded defaults. ``env`` defaults to ``os.environ``.

    Raises ConfigError for a missing explicit file, invalid TOML (with its line), unknown
    keys, wrong types and unset ``${VAR}`` references.
    """
    env = dict(os.environ) if env is None else env
    explicit = path if path is not None else env.get("CONVO_CONFIG") or None
    if explicit is None:
        if not Path(DEFAULT_FILE).is_file():
            return parse_settings({}, source="<defaults>", env=env)
        explicit = DEFAULT_FILE
    file = Path(explicit)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file}: configuration file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read configuration: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: invalid TOML: {exc}") from None
    return parse_settings(data, source=str(file), env=env)

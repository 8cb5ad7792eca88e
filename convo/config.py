"""convo.toml + environment -> frozen settings objects.

This is the only module that reads environment variables. :func:`load_settings` finds the
file (an explicit path, else ``$CONVO_CONFIG``, else ``./convo.toml`` when present, else the
embedded defaults), expands ``${VAR}`` in every string from the environment, checks every
key and type, and returns a :class:`Settings`. Everything else receives these objects.

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
  default 60);
* ``[outbox]`` ``max_age`` (seconds or a duration such as ``"24h"``, the default: how long
  failed sends are retried before the message is dead-lettered, see ``convo.retry``),
  ``base_delay`` (1.0 s), ``max_delay`` (60 s), ``sweep_interval`` (5 s),
  ``reconcile_after`` (600 s: a message still ``sent`` this long after its last update is
  looked up at its provider, see ``convo.reconcile``); ``max_attempts`` is deprecated and
  ignored (accepted so older files still load; the outbox logs a warning);
* ``[server]`` (:class:`ServerSettings`): ``shutdown_grace`` (seconds a stopping server
  gives the requests, turns and sends in flight, 10; ``shutdown_timeout`` is its older
  name), ``keepalive_timeout`` (15), ``body_timeout`` (30), ``max_connections`` (1000);
* ``[handoff]`` queue name -> phone number (E.164) or ``sip:`` URI: where a flow's
  ``handoff: {queue: NAME}`` transfers a call (``reception = "+3225550100"``);
* ``[[lines]] voice_provider``: the provider carrying the line's calls when ``provider``
  is its SMS provider (a line with ``provider = "telefoon_voice"`` needs none).

With no ``[[lines]]`` the sandbox defaults apply: one line per flow found in
``flows.paths``, sorted by flow id, numbered ``+32460000101``, ``+32460000102``, ..., all
on provider ``sandbox``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convo.exceptions import ConfigError, InvalidNumber
from convo.flow.durations import parse_duration
from convo.models import CHANNELS, Channel
from convo.store.urls import store_url

DEFAULT_FILE = "convo.toml"
ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
SECRET_WORDS = ("secret", "key", "token", "password", "passwd")
SANDBOX_PROVIDER = "sandbox"
SHORT_CODE = re.compile(r"[1-9][0-9]{2,7}")
#: A ``[providers.NAME]`` name: it becomes a URL path segment and part of file names.
PROVIDER_NAME = re.compile(r"[a-z0-9_]+")


def is_secret_key(key: str) -> bool:
    """True for option names whose values must never be shown (``api_secret``, ...)."""
    return any(word in key.lower() for word in SECRET_WORDS)


class Secret:
    """A secret string: ``reveal()`` gives it; ``repr``/``str`` never do."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class ProviderSection(Mapping[str, Any]):
    """One ``[providers.NAME]`` table as adapters read it (plain values), whose repr masks
    secret-looking keys so settings can be logged. ``source`` is the file it came from, for
    the adapters' error messages."""

    def __init__(self, values: Mapping[str, Any], source: str = "") -> None:
        self._values = dict(values)
        self.source = source

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        shown = {k: "********" if is_secret_key(k) else v for k, v in self._values.items()}
        return f"ProviderSection({shown!r})"


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """``[server]``. Besides where it listens:

    * ``shutdown_grace``: on SIGTERM/SIGINT, the seconds the requests, turns and sends in
      flight get to finish, all together (what is left stays queued for the next start);
      ``shutdown_timeout`` is accepted as its older name;
    * ``keepalive_timeout``: a connection is closed when no complete request head arrives
      this many seconds after it opened or after its previous answer (idle keep-alive
      connections, and clients that send a head slowly);
    * ``body_timeout``: seconds a request's body may take to arrive once its head is in;
    * ``max_connections``: open connections beyond this many are closed as they arrive.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = "http://127.0.0.1:8080"
    api_token: Secret | None = None
    shutdown_grace: float = 10.0
    keepalive_timeout: float = 15.0
    body_timeout: float = 30.0
    max_connections: int = 1000

    @property
    def shutdown_timeout(self) -> float:
        """The older name of :attr:`shutdown_grace`."""
        return self.shutdown_grace


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """``[store]``: ``url`` names the store (checked at load by :func:`convo.store.store_url`);
    ``seen_retention`` is how long, in seconds, the ids that drop retries and replays are
    kept before the server prunes them (seen tokens, and the tombstones erasure leaves of
    erased messages' provider ids): seconds or a duration such as ``"30d"``, default 30
    days."""

    url: str = "sqlite:///var/convo.db"
    seen_retention: float = 30 * 86400.0


@dataclass(frozen=True, slots=True)
class FlowSettings:
    paths: tuple[str, ...] = ("flows",)


@dataclass(frozen=True, slots=True)
class LineSettings:
    """A number (or alphanumeric sender name) we own, its provider and its flow."""

    number: str
    provider: str
    flow: str
    channels: tuple[Channel, ...] = ("sms",)
    voice_provider: str = ""  # calls go here; "" = ``provider`` if it is a voice provider


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    max_body: int = 1024 * 1024
    rejected_dir: str = "var/rejected"
    concat_timeout: float = 60.0
    rejected_quota: int = 100 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class OutboxSettings:
    max_attempts: int | None = None  # deprecated, ignored: max_age ends retrying
    base_delay: float = 1.0
    max_delay: float = 60.0
    sweep_interval: float = 5.0
    reconcile_after: float = 600.0
    max_age: float = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    flows: FlowSettings = field(default_factory=FlowSettings)
    lines: tuple[LineSettings, ...] = ()
    providers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    source: str = "<defaults>"  # the file these came from, for messages
    handoff: Mapping[str, str] = field(default_factory=dict)  # queue -> number

    @property
    def rejected_dir(self) -> Path:
        return Path(self.webhooks.rejected_dir)

    def provider_names(self) -> list[str]:
        """Every provider to start: configured sections plus those lines refer to."""
        names = dict.fromkeys(self.providers)
        names.update(dict.fromkeys(line.provider for line in self.lines))
        names.update(
            dict.fromkeys(line.voice_provider for line in self.lines if line.voice_provider)
        )
        return list(names)

    def with_server(self, *, host: str | None = None, port: int | None = None) -> Settings:
        """A copy with ``host``/``port`` overridden (None keeps them). A ``public_url`` that
        was derived from host and port follows them."""
        old = self.server
        new = dataclasses.replace(
            old,
            host=host if host is not None else old.host,
            port=port if port is not None else old.port,
        )
        if old.public_url == f"http://{old.host}:{old.port}":
            new = dataclasses.replace(new, public_url=f"http://{new.host}:{new.port}")
        return dataclasses.replace(self, server=new)


# -- reading ---------------------------------------------------------------------------------


class _Table:
    """Typed getters over one TOML table; ``where`` is ``convo.toml: [server]``."""

    def __init__(self, source: str, label: str, data: object, known: frozenset[str]) -> None:
        self.source, self.label = source, label
        if not isinstance(data, dict):
            raise ConfigError(f"{self.where()}: expected a table, got {_shown(label, data)}")
        self.data: dict[str, Any] = data
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"{self.where(unknown[0])}: unknown key; expected one of {', '.join(sorted(known))}"
            )

    def where(self, key: str | None = None) -> str:
        return f"{self.source}: {self.label}" + (f" {key}" if key else "")

    def _bad(self, key: str, expected: str) -> ConfigError:
        return ConfigError(
            f"{self.where(key)}: expected {expected}, got {_shown(key, self.data[key])}"
        )

    def string(self, key: str, default: str) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str):
            raise self._bad(key, "a string")
        return value

    def integer(
        self, key: str, default: int, *, minimum: int = 0, maximum: int | None = None
    ) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._bad(key, "an integer")
        if value < minimum or (maximum is not None and value > maximum):
            top = f" and at most {maximum}" if maximum is not None else ""
            raise ConfigError(f"{self.where(key)}: expected at least {minimum}{top}, got {value}")
        return value

    def number(self, key: str, default: float) -> float:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise self._bad(key, "a number greater than 0")
        return float(value)

    def strings(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.data.get(key, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._bad(key, "a list of strings")
        return tuple(value)


def _shown(key: str, value: object) -> str:
    """How a bad value appears in an error: its repr, unless the key looks secret."""
    if is_secret_key(key):
        return f"a {type(value).__name__}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _expand(value: Any, env: Mapping[str, str], where: str) -> Any:
    """``${VAR}`` expanded in every string of ``value`` (recursively)."""
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise ConfigError(f"{where}: environment variable {name} is not set")
            return env[name]

        return ENV_VAR.sub(sub, value)
    if isinstance(value, dict):
        return {
            k: _expand(v, env, f"{where}.{k}" if "[" not in where else f"{where} {k}")
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_expand(v, env, where) for v in value]
    return value


def _expand_document(data: dict[str, Any], env: Mapping[str, str], source: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for top, value in data.items():
        if top == "providers" and isinstance(value, dict):
            out[top] = {
                name: {
                    k: _expand(v, env, f"{source}: [providers.{name}] {k}") for k, v in sec.items()
                }
                if isinstance(sec, dict)
                else sec
                for name, sec in value.items()
            }
        elif top == "lines" and isinstance(value, list):
            out[top] = [
                {k: _expand(v, env, f"{source}: [[lines]] #{i + 1} {k}") for k, v in line.items()}
                if isinstance(line, dict)
                else line
                for i, line in enumerate(value)
            ]
        elif isinstance(value, dict):
            out[top] = {k: _expand(v, env, f"{source}: [{top}] {k}") for k, v in value.items()}
        else:
            out[top] = _expand(value, env, f"{source}: {top}")
    return out


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
        raise ConfigError(f"{source}: lines: expected [[lines]] tables, got {_shown('lines', raw)}")
    lines: list[LineSettings] = []
    for i, item in enumerate(raw):
        table = _Table(
            source,
            f"[[lines]] #{i + 1}",
            item,
            frozenset({"number", "provider", "flow", "channels", "voice_provider"}),
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
        lines.append(LineSettings(number, provider, flow, checked, voice))
    return tuple(lines)


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


def _store(source: str, raw: object) -> StoreSettings:
    table = _Table(source, "[store]", raw, frozenset({"url", "seen_retention"}))
    default = StoreSettings()
    url = table.string("url", default.url)
    store_url(url, table.where("url"))  # the store's own decoder: one set of rules
    retention = table.data.get("seen_retention", default.seen_retention)
    try:
        seconds = parse_duration(retention)
    except ValueError:
        seconds = 0.0
    if seconds <= 0:
        raise table._bad("seen_retention", "a duration above 0 (seconds, or e.g. 12h, 30d)")
    return StoreSettings(url, seconds)


def _handoff(source: str, raw: object) -> dict[str, str]:
    """``[handoff]``: queue -> E.164 number (or a ``sip:`` URI, kept as it is)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: [handoff]: expected a table of queue = number")
    out: dict[str, str] = {}
    for queue, number in raw.items():
        where = f"{source}: [handoff] {queue}"
        if not isinstance(number, str) or not number:
            raise ConfigError(f"{where}: expected a phone number, got {_shown(queue, number)}")
        if number.lower().startswith(("sip:", "sips:")):
            out[queue] = number
            continue
        from convo.sms.phone import normalize

        try:
            out[queue] = normalize(number)
        except InvalidNumber as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return out


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
        LineSettings(f"+3246000{101 + i:04d}", SANDBOX_PROVIDER, flow_id, found[flow_id])
        for i, flow_id in enumerate(sorted(found))
    )


def parse_settings(
    data: Mapping[str, Any], *, source: str = DEFAULT_FILE, env: Mapping[str, str] | None = None
) -> Settings:
    """Settings from an already-parsed TOML document (see module docstring)."""
    env = dict(os.environ) if env is None else env
    known = {"server", "store", "flows", "lines", "providers", "webhooks", "outbox", "handoff"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"{source}: unknown table [{unknown[0]}]; expected one of {', '.join(sorted(known))}"
        )
    doc = _expand_document(dict(data), env, source)

    srv = _Table(
        source,
        "[server]",
        doc.get("server", {}),
        frozenset(
            {
                *("host", "port", "public_url", "api_token", "shutdown_grace"),
                *("shutdown_timeout", "keepalive_timeout", "body_timeout", "max_connections"),
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
    )

    store = _store(source, doc.get("store", {}))

    flo = _Table(source, "[flows]", doc.get("flows", {}), frozenset({"paths"}))
    flows = FlowSettings(flo.strings("paths", ("flows",)))

    hooks = _Table(
        source,
        "[webhooks]",
        doc.get("webhooks", {}),
        frozenset({"max_body", "rejected_dir", "concat_timeout", "rejected_quota"}),
    )
    webhooks = WebhookSettings(
        hooks.integer("max_body", 1024 * 1024, minimum=1),
        hooks.string("rejected_dir", "var/rejected"),
        hooks.number("concat_timeout", 60.0),
        hooks.integer("rejected_quota", 100 * 1024 * 1024),
    )

    box = _Table(
        source,
        "[outbox]",
        doc.get("outbox", {}),
        frozenset(
            {
                *("max_attempts", "base_delay", "max_delay", "sweep_interval"),
                *("reconcile_after", "max_age"),
            }
        ),
    )
    try:
        max_age = parse_duration(box.data.get("max_age", OutboxSettings().max_age))
    except ValueError:
        max_age = 0.0
    if max_age <= 0:
        raise box._bad("max_age", "a duration above 0 (seconds, or e.g. 24h, 2d)")
    outbox = OutboxSettings(
        box.integer("max_attempts", 5, minimum=1) if "max_attempts" in box.data else None,
        box.number("base_delay", 1.0),
        box.number("max_delay", 60.0),
        box.number("sweep_interval", 5.0),
        box.number("reconcile_after", 600.0),
        max_age,
    )

    providers = _providers(source, doc.get("providers", {}))
    lines = _lines(source, doc["lines"]) if "lines" in doc else sandbox_lines(flows.paths)
    handoff = _handoff(source, doc.get("handoff", {}))
    _check_provider_kinds(source, lines, providers)
    return Settings(
        server, store, flows, lines, providers, webhooks, outbox, source, handoff=handoff
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

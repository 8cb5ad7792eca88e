"""The settings objects convo.toml becomes: frozen dataclasses, one per table, and
:class:`Secret` / :class:`ProviderSection`, which never show a secret-looking value."""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convo.logs import LogSettings
from convo.models import Channel

EVENT_LOOPS = ("auto", "asyncio", "uvloop")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
SECRET_WORDS = ("secret", "key", "token", "password", "passwd")


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
    * ``max_connections``: open connections beyond this many are closed as they arrive
      (per process);
    * ``event_loop``: what runs ``convo serve``: ``auto`` (uvloop when it is installed, the
      ``speed`` extra, else asyncio's own), ``asyncio`` or ``uvloop``;
    * ``workers``: how many ``convo serve`` processes share the port (``--workers``
      overrides it; above 1 needs a store several processes share, see
      :mod:`convo.web.workers`);
    * ``trusted_proxies``: the reverse proxies in front of convo (addresses or networks):
      a request from one of them comes from the client its ``X-Forwarded-For`` names
      (:mod:`convo.web.clients`); from any other peer that header is ignored.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = "http://127.0.0.1:8080"
    api_token: Secret | None = None
    shutdown_grace: float = 10.0
    keepalive_timeout: float = 15.0
    body_timeout: float = 30.0
    max_connections: int = 1000
    event_loop: str = "auto"
    workers: int = 1
    trusted_proxies: tuple[IPNetwork, ...] = ()

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
    days. ``visits_retention`` is how long the step visits the console's flow graphs count
    are kept (same form, default 90 days: longer than the console's longest period)."""

    url: str = "sqlite:///var/convo.db"
    seen_retention: float = 30 * 86400.0
    visits_retention: float = 90 * 86400.0


@dataclass(frozen=True, slots=True)
class FlowSettings:
    paths: tuple[str, ...] = ("flows",)


@dataclass(frozen=True, slots=True)
class LineSettings:
    """A number (or alphanumeric sender name) we own, its provider and its flow.
    ``triggers`` are its keyword triggers, ``(keyword, flow id)`` pairs as written."""

    number: str
    provider: str
    flow: str
    channels: tuple[Channel, ...] = ("sms",)
    voice_provider: str = ""  # calls go here; "" = ``provider`` if it is a voice provider
    triggers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """``[webhooks]``; ``max_pending_turns``: texts acknowledged whose turns have not
    finished in this process beyond which inbound texts are refused (0: no limit;
    :mod:`convo.backpressure`)."""

    max_body: int = 1024 * 1024
    rejected_dir: str = "var/rejected"
    concat_timeout: float = 60.0
    rejected_quota: int = 100 * 1024 * 1024
    max_pending_turns: int = 10_000


@dataclass(frozen=True, slots=True)
class OutboxSettings:
    """``[outbox]``: retries (:mod:`convo.retry`), sweeps, reconciliation, and the limits
    beyond which inbound texts are refused (``max_backlog`` replies pending, ``max_lag``
    seconds the oldest due reply has waited; 0: no limit; :mod:`convo.backpressure`)."""

    max_attempts: int | None = None  # deprecated, ignored: max_age ends retrying
    base_delay: float = 1.0
    max_delay: float = 60.0
    sweep_interval: float = 5.0
    reconcile_after: float = 600.0
    max_age: float = 24 * 3600.0
    # Sends in flight to each provider (None: from its rate limit): the throughput bound, and
    # the bound on the replies a SIGKILL leaves in doubt and sends again (convo.outbox).
    concurrency: int | None = None
    max_backlog: int = 10_000
    max_lag: float = 60.0
    claim_lease: float = 120.0  # convo.store.base.CLAIM_LEASE


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """``[metrics]``: ``GET /metrics`` (Prometheus text format). With ``port`` 0 (the
    default) it is served on the server's port behind the admin token (off without one);
    with a port, on ``host``:``port`` of its own, without a token (bind it where only
    Prometheus reaches it)."""

    port: int = 0
    host: str = "127.0.0.1"


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
    logging: LogSettings = field(default_factory=LogSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)

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

"""Prometheus metrics of one running convo.

Every :class:`~convo.runtime.Runtime` has its own :class:`Metrics` with its own
``CollectorRegistry`` (never prometheus-client's global one), so a process may run several
(the tests build many apps) and each reports only its own traffic. The web app serves it
at ``GET /metrics`` (``convo.web.metrics``).

Counted as it happens (labels in braces):

============================================  ===========================================
``convo_webhooks_total{provider,route,status}``  provider webhooks answered (route:
                                              ``inbound``, ``status``, ``voice_answer``,
                                              ``voice_input``, ``voice_status``)
``convo_webhook_duration_seconds{provider,route}``  time to answer them (histogram)
``convo_turn_duration_seconds{channel}``      one turn: run, present, commit (histogram)
``convo_turn_failures_total{channel}``        turns that failed (a hook or template raised)
``convo_sends_total{provider,result}``        send attempts: ``sent``, ``retried`` (a
                                              transient failure, tried again later),
                                              ``failed`` (refused for good), ``dead``
``convo_store_duration_seconds{operation}``   each store call (histogram; operation is
                                              the store method)
``convo_flow_reloads_total{result}``          flow reloads: ``ok``, ``failed`` (some file
                                              did not validate; its old version stays)
============================================  ===========================================

Read from the store when Prometheus scrapes (:meth:`Metrics.refresh`): cheaper than
tracking, and right across restarts and processes sharing a store:

* ``convo_outbox_depth{status}``: replies ``queued`` or ``sending``;
* ``convo_outbox_oldest_age_seconds``: age of the oldest of them (0 when none);
* ``convo_dead_letters``: replies that kept failing for ``[outbox] max_age``;
* ``convo_conversations{flow,step,status}``: open conversations (not ended);
* ``convo_timers_pending{flow}``: step timeouts waiting to fire;
* ``convo_flow_versions{flow}``: versions of a flow in memory (the current one, and
  older ones live conversations still run on);
* ``convo_turns_pending``: texts this process acknowledged whose turns have not finished
  (read from the intake: beyond ``[webhooks] max_pending_turns`` texts are refused).
"""

from __future__ import annotations

import inspect
import math
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, cast

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from convo.models import Direction, MessageStatus
from convo.store.base import MessageQuery, Store

__all__ = ["CONTENT_TYPE", "CallTimes", "Metrics", "TimedStore"]

#: The content type of Prometheus' text exposition format (version 0.0.4).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Turn and webhook durations: a turn takes about a millisecond, a slow one a second.
_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The metrics of one runtime (module docstring). The ``observe_*`` methods are what
    the engine, the outbox and the web app call; they never raise."""

    def __init__(self) -> None:
        # No "_created" series beside every counter and histogram: they double what a
        # scrape carries and no dashboard here reads them (a process-wide switch).
        disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in the library
        self.registry = registry = CollectorRegistry(auto_describe=True)
        # The labelled counters of webhooks and sends, each found once: Counter.labels
        # validates and locks on every call (~2 us; once per webhook and once per send).
        # Their label values are few (configured providers, routes, statuses, results).
        self._counted: dict[tuple[object, ...], Counter] = {}
        self.webhooks = Counter(
            "convo_webhooks",
            "Provider webhooks answered, by provider, route and HTTP status.",
            ["provider", "route", "status"],
            registry=registry,
        )
        self.webhook_seconds = CallTimes(
            "convo_webhook_duration_seconds",
            "Time to answer a provider webhook.",
            ("provider", "route"),
            _FAST,
            registry,
        )
        self.turn_seconds = CallTimes(
            "convo_turn_duration_seconds",
            "One conversation turn: run the flow, present the replies, commit to the store.",
            ("channel",),
            _FAST,
            registry,
        )
        self.turn_failures = Counter(
            "convo_turn_failures",
            "Turns that failed (a hook or template raised): the contact got the error text.",
            ["channel"],
            registry=registry,
        )
        self.sends = Counter(
            "convo_sends",
            "Send attempts to providers, by result: sent, retried, failed, dead.",
            ["provider", "result"],
            registry=registry,
        )
        self.store_seconds = CallTimes(
            "convo_store_duration_seconds",
            "Store calls, by store method.",
            ("operation",),
            _FAST,
            registry,
        )
        self.reloads = Counter(
            "convo_flow_reloads",
            "Flow reloads (SIGHUP, --reload): ok, or failed (a file did not validate).",
            ["result"],
            registry=registry,
        )
        self.outbox_depth = Gauge(
            "convo_outbox_depth",
            "Replies waiting to be sent, by status (queued, sending).",
            ["status"],
            registry=registry,
        )
        self.outbox_oldest = Gauge(
            "convo_outbox_oldest_age_seconds",
            "Age of the oldest reply waiting to be sent (0 when none waits).",
            registry=registry,
        )
        self.dead_letters = Gauge(
            "convo_dead_letters",
            "Replies that kept failing for [outbox] max_age (dead letters).",
            registry=registry,
        )
        self.conversations = Gauge(
            "convo_conversations",
            "Open conversations (not ended), by flow, step and status.",
            ["flow", "step", "status"],
            registry=registry,
        )
        self.timers = Gauge(
            "convo_timers_pending",
            "Step timeouts waiting to fire, by flow.",
            ["flow"],
            registry=registry,
        )
        self.flow_versions = Gauge(
            "convo_flow_versions",
            "Versions of a flow held in memory (the current one and older ones still in use).",
            ["flow"],
            registry=registry,
        )
        self.turns_pending = Gauge(
            "convo_turns_pending",
            "Texts this process acknowledged whose turns have not finished.",
            registry=registry,
        )

    # -- as it happens ------------------------------------------------------------------

    def observe_webhook(self, provider: str, route: str, status: int, seconds: float) -> None:
        self._child(self.webhooks, provider, route, str(status)).inc()
        self.webhook_seconds.series(provider, route).observe(seconds)

    def observe_turn(self, channel: str, seconds: float, failed: bool) -> None:
        self.turn_seconds.series(channel).observe(seconds)
        if failed:
            self.turn_failures.labels(channel).inc()

    def observe_send(self, provider: str, result: str) -> None:
        self._child(self.sends, provider, result).inc()

    def _child(self, counter: Counter, *values: str) -> Counter:
        """``counter.labels(*values)``, found once (``_counted``)."""
        key = (counter, *values)
        child = self._counted.get(key)
        if child is None:
            child = self._counted[key] = counter.labels(*values)
        return child

    def observe_reload(self, ok: bool) -> None:
        self.reloads.labels("ok" if ok else "failed").inc()

    # -- at scrape time -----------------------------------------------------------------

    async def refresh(
        self,
        store: Store,
        flow_versions: Mapping[str, int],
        *,
        turns_pending: int = 0,
        now: float | None = None,
    ) -> None:
        """Set the gauges read from the store (module docstring), the flow versions held
        in memory (``flow id -> how many``) and the turns pending in this process."""
        now = time.time() if now is None else now
        self.turns_pending.set(turns_pending)
        for pending in (MessageStatus.QUEUED, MessageStatus.SENDING):
            _, total = await store.list_messages(
                MessageQuery(direction=Direction.OUTBOUND, status=pending, page_size=1)
            )
            self.outbox_depth.labels(pending.value).set(total)
        oldest = await store.pending_outbound(limit=1)
        self.outbox_oldest.set(max(0.0, now - oldest[0].created_at) if oldest else 0.0)
        _, dead = await store.dead_letters(1, 1)
        self.dead_letters.set(dead)

        conversations: dict[tuple[str, str, str], int] = {}
        timers: dict[str, int] = {}
        for count in await store.session_counts():
            key = (count.flow, count.step, count.status.value)
            conversations[key] = conversations.get(key, 0) + count.conversations
            timers[count.flow] = timers.get(count.flow, 0) + count.timers
        self.conversations.clear()  # a step nobody is on any more is no series at all
        for (flow, step, status), n in conversations.items():
            self.conversations.labels(flow, step, status).set(n)
        self.timers.clear()
        for flow, n in timers.items():
            self.timers.labels(flow).set(n)
        self.flow_versions.clear()
        for flow, n in flow_versions.items():
            self.flow_versions.labels(flow).set(n)

    def exposition(self) -> bytes:
        """Everything in Prometheus' text format."""
        return generate_latest(self.registry)


class TimedStore:
    """``store`` with every coroutine method timed into ``convo_store_duration_seconds``
    (labelled by method name); everything else is the store's own. :meth:`wrap` gives it
    as the :class:`Store` it stands for."""

    def __init__(self, store: Store, metrics: Metrics) -> None:
        self._store = store
        self._times = metrics.store_seconds

    def __repr__(self) -> str:
        return f"<TimedStore {self._store!r}>"

    @classmethod
    def wrap(cls, store: Store, metrics: Metrics) -> Store:
        # The other methods are reached through __getattr__, which mypy cannot see: the
        # cast is the one place that says so.
        return cast(Store, cls(store, metrics))

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if not inspect.ismethod(attr):
            return attr  # a plain attribute (``shared``): the store's, read each time
        if inspect.iscoroutinefunction(attr):
            attr = _timed(attr, self._times.series(name))
        # Built once per method: the engine asks for some on every text (``turn_idle``,
        # ``lock``), and the coroutine check costs more than the call.
        setattr(self, name, attr)
        return attr


def _timed(method: Callable[..., Awaitable[Any]], series: _Series) -> Callable[..., Awaitable[Any]]:
    observe = series.observe

    async def call(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await method(*args, **kwargs)
        finally:
            observe(time.perf_counter() - started)

    return call


class _Series:
    """One label value's histogram: per-bucket counts and the sum, no lock (module
    docstring of :class:`CallTimes`)."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one: above every bound (+Inf)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.total += seconds


class CallTimes(Collector):
    """A histogram of durations observed on every turn (turns, store calls, webhooks).

    prometheus-client's ``Histogram.observe`` takes a lock and walks the buckets for each
    observation: with the store's three to five calls a turn that was a fifth of a
    memory-store turn's CPU time (``bench/metrics_overhead.py``). Observations here come
    from the event loop's thread only, so they need no lock: a bisect and two additions.
    Prometheus sees the same histogram (``_bucket``, ``_count``, ``_sum``) at scrape time.
    Registered in ``registry`` when one is given."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labels: tuple[str, ...],
        bounds: tuple[float, ...],
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.name, self.documentation, self.labels = name, documentation, labels
        self.bounds = tuple(sorted(bounds))
        self._series: dict[tuple[str, ...], _Series] = {}
        if registry is not None:
            registry.register(self)

    def series(self, *values: str) -> _Series:
        """The series of one value per label (made on first use)."""
        found = self._series.get(values)
        if found is None:
            if len(values) != len(self.labels):
                raise ValueError(f"{self.name}: expected values for {', '.join(self.labels)}")
            found = self._series[values] = _Series(self.bounds)
        return found

    def describe(self) -> Iterable[Metric]:
        return [HistogramMetricFamily(self.name, self.documentation, labels=list(self.labels))]

    def collect(self) -> Iterable[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=list(self.labels))
        for values, series in sorted(self._series.items()):
            cumulative, buckets = 0, []
            for bound, count in zip((*self.bounds, math.inf), series.counts, strict=True):
                cumulative += count
                buckets.append(("+Inf" if math.isinf(bound) else repr(bound), cumulative))
            family.add_metric(list(values), buckets, series.total)
        return [family]

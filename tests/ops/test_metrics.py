"""GET /metrics after real traffic: signed Vonage webhooks from its simulator, a turn, a
send, a delivery receipt, a forged webhook; convo's real server on SQLite."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.sms_world import LINE, PHONE, TOKEN, Vonage, World, running_world

ROOT = Path(__file__).resolve().parents[2]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(world: World, token: str | None = TOKEN) -> tuple[int, Samples]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=world.url, headers=headers) as client:
        response = await client.get("/metrics")
    if response.status_code != 200:
        return response.status_code, {}
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return 200, samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def test_metrics_after_real_traffic(tmp_path: Path) -> None:
    provider = Vonage()
    async with running_world(tmp_path, provider) as world:
        assert (await scrape(world, token=None))[0] == 401  # behind the admin token
        assert (await scrape(world, token="wrong"))[0] == 401

        await provider.text_in("hello")
        assert await world.reply(0) == "Hi! What is your name?"
        await provider.delivered(0)
        await world.outbound_with_status(provider.message_id(0), "delivered")
        async with httpx.AsyncClient(base_url=world.url) as client:  # a forged webhook
            forged = await client.post(
                "/webhooks/vonage/inbound",
                json={"msisdn": PHONE[1:], "to": LINE[1:], "text": "x", "messageId": "f1"},
            )
            assert forged.status_code == 401
            assert (await client.post("/webhooks/nobody/inbound")).status_code == 404

        status, samples = await scrape(world)
        assert status == 200
        webhooks = "convo_webhooks_total"
        assert value(samples, webhooks, provider="vonage", route="inbound", status="200") == 1
        assert value(samples, webhooks, provider="vonage", route="inbound", status="401") == 1
        assert value(samples, webhooks, provider="vonage", route="status", status="200") == 1
        assert value(samples, webhooks, provider="unknown", route="inbound", status="404") == 1
        assert value(samples, "convo_turn_duration_seconds_count", channel="sms") == 1
        assert value(samples, "convo_sends_total", provider="vonage", result="sent") == 1
        assert value(samples, "convo_outbox_depth", status="queued") == 0
        assert value(samples, "convo_outbox_oldest_age_seconds") == 0
        assert value(samples, "convo_dead_letters") == 0
        conversation = {"flow": "sms_two_questions", "step": "colour", "status": "active"}
        assert value(samples, "convo_conversations", **conversation) is None  # not yet
        assert value(samples, "convo_conversations", flow="sms_two_questions", step="name",
                     status="active") == 1  # fmt: skip
        assert value(samples, "convo_timers_pending", flow="sms_two_questions") == 0
        assert value(samples, "convo_flow_versions", flow="sms_two_questions") == 1
        assert value(samples, "convo_turns_pending") == 0  # the turn finished
        assert (
            value(samples, "convo_store_duration_seconds_count", operation="save_turn") or 0
        ) >= 1

        await provider.text_in("Ann")
        await world.reply(1)
        _, samples = await scrape(world)
        assert value(samples, "convo_conversations", **conversation) == 1
        assert value(samples, "convo_conversations", flow="sms_two_questions", step="name",
                     status="active") is None  # fmt: skip
        assert value(samples, "convo_turn_duration_seconds_count", channel="sms") == 2

        # Each runtime counts its own traffic only: a restarted server starts from zero.
        await world.restart()
        _, samples = await scrape(world)
        assert value(samples, "convo_sends_total", provider="vonage", result="sent") is None
        assert value(samples, "convo_conversations", **conversation) == 1  # from the store


def test_the_grafana_dashboard_uses_only_metrics_convo_exposes() -> None:
    from convo.metrics import Metrics

    exposed = set()
    for family in Metrics().registry.collect():
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_count", "_sum"),
        }.get(family.type, ("",))
        exposed.update(family.name + suffix for suffix in suffixes)
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "convo.json").read_text("utf-8"))
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bconvo_[a-z_]+", target["expr"])
    }
    assert used and used <= exposed, sorted(used - exposed)
    # every metric family is on the dashboard somewhere
    families = {family.name for family in Metrics().registry.collect()}
    assert {f for f in families if not any(u.startswith(f) for u in used)} == set()


def test_store_call_times_are_a_prometheus_histogram() -> None:
    from convo.metrics import Metrics

    metrics = Metrics()
    for seconds in (0.0004, 0.003, 0.003, 7.0):
        metrics.store_seconds.series("save_turn").observe(seconds)
    samples: Samples = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        if family.name == "convo_store_duration_seconds":
            assert family.type == "histogram"
            for s in family.samples:
                samples[(s.name, frozenset(s.labels.items()))] = s.value
    name = "convo_store_duration_seconds"
    assert value(samples, f"{name}_bucket", operation="save_turn", le="0.0005") == 1
    assert value(samples, f"{name}_bucket", operation="save_turn", le="0.0025") == 1
    assert value(samples, f"{name}_bucket", operation="save_turn", le="0.005") == 3
    assert value(samples, f"{name}_bucket", operation="save_turn", le="5.0") == 3
    assert value(samples, f"{name}_bucket", operation="save_turn", le="+Inf") == 4
    assert value(samples, f"{name}_count", operation="save_turn") == 4
    assert value(samples, f"{name}_sum", operation="save_turn") == pytest.approx(7.0064)


async def test_a_timed_store_times_coroutines_and_passes_the_rest_through(
    tmp_path: Path,
) -> None:
    from convo.metrics import Metrics, TimedStore
    from convo.models import ConversationKey
    from convo.store.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "convo.db")
    await store.open()
    try:
        metrics = Metrics()
        timed = TimedStore.wrap(store, metrics)
        assert await timed.pending_outbound(limit=1) == []
        assert await timed.pending_outbound(limit=1) == []
        assert sum(metrics.store_seconds.series("pending_outbound").counts) == 2
        # A plain method is the store's own, found once; it is not timed.
        key = ConversationKey("+3225550120", "sms", "+32470000001")
        assert timed.turn_idle is timed.turn_idle
        assert timed.turn_idle(key) is store.turn_idle(key)
        assert sum(metrics.store_seconds.series("turn_idle").counts) == 0
        # A plain attribute is read from the store each time.
        shared = store.shared
        store.shared = not shared  # type: ignore[misc]
        assert timed.shared is (not shared)
        store.shared = shared  # type: ignore[misc]
        assert timed.shared is shared
    finally:
        await store.close()

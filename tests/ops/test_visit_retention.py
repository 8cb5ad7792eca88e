"""``[store] visits_retention``: the step visits the console's flow graphs count are pruned
by the server's prune loop once older than it. A real runtime on a real SQLite file."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from convo.config import parse_settings
from convo.exceptions import ConfigError
from convo.models import ConversationKey, Session
from convo.runtime import Runtime
from convo.store.base import StepCount
from convo.store.sqlite import SqliteStore
from tests.e2e.sms_world import eventually

DATA = Path(__file__).parent.parent / "web" / "data"
LINE = "+32460000101"


def visit(contact: str, at: float) -> Session:
    return Session(
        key=ConversationKey(LINE, "sms", contact),
        flow="greet",
        flow_version="1",
        step="ask",
        lang="en",
        created_at=at,
        updated_at=at,
    )


async def test_the_prune_loop_forgets_visits_older_than_the_retention(tmp_path: Path) -> None:
    db = tmp_path / "convo.db"
    now = time.time()
    store = SqliteStore(db)
    await store.open()
    await store.save_turn(visit("+32470000001", now - 3 * 86400))  # older than 2 days
    await store.save_turn(visit("+32470000002", now - 3600))
    await store.close()
    config = parse_settings(
        {
            "server": {"public_url": "http://127.0.0.1:9", "shutdown_timeout": 2},
            # a short seen_retention makes the prune loop tick every 50 ms
            "store": {"url": f"sqlite:///{db}", "seen_retention": 1, "visits_retention": "2d"},
            "flows": {"paths": [str(DATA)]},
            "lines": [{"number": LINE, "provider": "sandbox", "flow": "greet"}],
            "webhooks": {"rejected_dir": str(tmp_path / "rejected")},
        },
        source="test.toml",
        env={},
    )
    async with Runtime(config) as runtime:

        async def pruned() -> bool:
            counts = await runtime.store.step_counts("greet", 0.0, now + 60, idle_before=0.0)
            return counts == [StepCount("ask", reached=1, ended=0, abandoned=0)]

        await eventually(pruned, "the visit of three days ago to be pruned")


def test_visits_retention_defaults_to_90_days_and_takes_a_duration() -> None:
    assert parse_settings({}, env={}).store.visits_retention == 90 * 86400.0
    store = parse_settings({"store": {"visits_retention": "7d"}}, env={}).store
    assert store.visits_retention == 7 * 86400.0
    with pytest.raises(ConfigError, match=r"c.toml: \[store\] visits_retention: expected a dur"):
        parse_settings({"store": {"visits_retention": "soon"}}, source="c.toml", env={})

"""The flow sources every store keeps (``FlowSources``): memory, SQLite in tmp_path and
PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from convo.models import ConversationKey, ConversationStatus, Session
from convo.store import Store
from convo.store.base import FlowSource
from tests.conftest import BACKENDS, open_backend

V1 = FlowSource("survey", "aaaa11112222", "flows/survey.yaml", "flow: survey\n# one é\n")
V2 = FlowSource("survey", "bbbb33334444", "flows/survey.yaml", "flow: survey\n# two\n")


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with open_backend(request.param, tmp_path) as backend:
        yield backend


def on(version: str, status: ConversationStatus = ConversationStatus.ACTIVE) -> Session:
    return Session(
        key=ConversationKey("+32470000100", "sms", "+32470000001"),
        flow="survey",
        flow_version=version,
        step="q1",
        lang="en",
        status=status,
        created_at=1.0,
        updated_at=1.0,
    )


async def test_a_source_is_kept_once_and_read_back(store: Store) -> None:
    assert await store.flow_source("survey", V1.version) is None
    assert await store.save_flow_source(V1, 100.0) is True
    # the same version again (another process, a restart): nothing new, the text stays
    assert await store.save_flow_source(dataclasses.replace(V1, name="other.yaml"), 200.0) is False
    assert await store.flow_source("survey", V1.version) == V1
    assert await store.flow_source("other", V1.version) is None
    assert await store.flow_source("survey", V2.version) is None


async def test_unused_versions_are_pruned_after_their_last_mark(store: Store) -> None:
    await store.save_flow_source(V1, 100.0)
    await store.save_flow_source(V2, 100.0)
    await store.save_flow_source(V2, 500.0)  # still current somewhere: marked again
    assert await store.prune_flow_sources(300.0) == 1
    assert await store.flow_source("survey", V1.version) is None
    assert await store.flow_source("survey", V2.version) == V2
    # a mark never moves back: an older one does not make the version prunable
    await store.save_flow_source(V2, 150.0)
    assert await store.prune_flow_sources(300.0) == 0


async def test_a_version_an_open_conversation_runs_on_is_kept(store: Store) -> None:
    await store.save_flow_source(V1, 100.0)
    await store.save_turn(on(V1.version))
    assert await store.prune_flow_sources(1000.0) == 0
    assert await store.flow_source("survey", V1.version) == V1
    await store.save_turn(on(V1.version, ConversationStatus.ENDED))  # it ends
    assert await store.prune_flow_sources(1000.0) == 1
    assert await store.flow_source("survey", V1.version) is None

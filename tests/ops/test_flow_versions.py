"""Flow versions: a live conversation stays on the version it started on, `renamed:` moves
it forward, and a conversation on a step that no longer exists is never restarted."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from convo.config import parse_settings
from convo.exceptions import FlowError
from convo.flow.engine import Engine
from convo.flow.loader import load_flow_text
from convo.flow.outputs import LoadedFlow
from convo.flow.spec import FlowSpec
from convo.models import ConversationKey, InboundMessage
from convo.runtime import Runtime
from convo.store.base import FlowSource
from convo.store.memory import MemoryStore

LINE = "+32460000101"
ALICE = "+32470000001"
BOB = "+32470000002"


def quiz_text(first: str, first_text: str, *, last: str = "Bye.", renamed: str = "") -> str:
    return f"""
flow: quiz
languages: [en]
error_text: "Sorry, that went wrong."
start: {first}
{renamed}
steps:
  {first}:
    ask: {{text: "{first_text}", expect: text, save_as: a}}
    then: second
  second:
    ask: {{text: "Second question?", expect: text, save_as: b}}
    then: done
  done:
    say: "{last}"
    end: true
"""


def quiz(first: str, first_text: str, *, last: str = "Bye.", renamed: str = "") -> FlowSpec:
    return load_flow_text(quiz_text(first, first_text, last=last, renamed=renamed), "quiz.yaml")


V1_TEXT = quiz_text("first", "First question?")
V1 = quiz("first", "First question?")
V2 = quiz("one", "Question one?", last="Bye from v2.")  # `first` renamed, no renamed: key
V3 = quiz("one", "Question one?", last="Bye from v3.", renamed="renamed: {first: one}")


async def say(engine: Engine, who: str, text: str, n: list[int] = [0]) -> list[str]:  # noqa: B006
    n[0] += 1
    message = InboundMessage(line=LINE, sender=who, text=text, provider="sandbox",
                             provider_message_id=f"m{n[0]}")  # fmt: skip
    assert await engine.receive(message)
    return [m.text for m in await engine.process(message)]


def engine_on(store: MemoryStore, spec: FlowSpec) -> Engine:
    return Engine({"quiz": spec}, store, lines={LINE: "quiz"})


async def test_a_live_conversation_stays_on_its_version_until_renamed_moves_it() -> None:
    store = MemoryStore()
    engine = engine_on(store, V1)
    assert await say(engine, ALICE, "hi") == ["First question?"]

    assert engine.versions.replace({"quiz": LoadedFlow.build(V2)}) == ["quiz"]
    assert engine.versions.counts() == {"quiz": 2}
    assert await say(engine, BOB, "hi") == ["Question one?"]  # new ones on v2
    assert await say(engine, ALICE, "a") == ["Second question?"]  # still v1, no restart
    session = await store.get_session(ConversationKey(LINE, "sms", ALICE))
    assert session is not None and session.flow_version == V1.version

    # v3 declares renamed: Alice moves forward at her next turn and ends on v3's text.
    engine.versions.replace({"quiz": LoadedFlow.build(V3)})
    assert await say(engine, ALICE, "b") == ["Bye from v3."]
    assert await say(engine, BOB, "a") == ["Second question?"]  # v2 -> v3, same step names

    counts = await store.session_counts()
    engine.versions.keep_only({(c.flow, c.flow_version) for c in counts})
    assert engine.versions.counts() == {"quiz": 1}  # nobody on v1 or v2 any more


async def test_a_version_kept_in_the_store_is_read_back_after_a_restart(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="convo.flow")
    store = MemoryStore()
    engine = engine_on(store, V1)
    assert await engine.versions.save_current(100.0) == 1  # what the runtime does at start
    assert await engine.versions.save_current(160.0) == 0  # and every minute: kept once
    assert await say(engine, ALICE, "hi") == ["First question?"]
    assert await say(engine, BOB, "hi") == ["First question?"]
    assert await say(engine, BOB, "a") == ["Second question?"]

    restarted = engine_on(store, V2)  # v2 has no `first`, and another end after `second`
    assert await say(restarted, ALICE, "a") == ["Second question?"]  # v1, read back
    assert await say(restarted, BOB, "b") == ["Bye."]  # v1's end, not v2's
    assert await say(restarted, ALICE, "b") == ["Bye."]
    assert await say(restarted, ALICE, "hi") == ["Question one?"]  # anew: v2
    assert restarted.versions.counts() == {"quiz": 2}
    assert any("read back from the store" in r.getMessage() for r in caplog.records)


async def test_a_kept_source_is_used_only_when_it_loads_as_the_version_asked_for(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryStore()
    broken_text = V1_TEXT.replace("expect: text, save_as: a", "expect: telepathy, save_as: a")
    broken = hashlib.sha256(broken_text.encode()).hexdigest()[:12]
    await store.save_flow_source(FlowSource("quiz", broken, "quiz.yaml", broken_text), 1.0)
    await store.save_flow_source(FlowSource("quiz", "0123456789ab", "quiz.yaml", V1_TEXT), 1.0)
    versions = engine_on(store, V2).versions
    assert not await versions.recall("quiz", broken)  # no longer valid
    assert not await versions.recall("quiz", "0123456789ab")  # not that version's text
    assert not await versions.recall("quiz", "ffffffffffff")  # not kept at all
    assert versions.counts() == {"quiz": 1}
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("does not load" in e and "telepathy" in e for e in errors), errors
    assert any(f"is flow quiz version {V1.version}" in e for e in errors), errors


async def test_after_a_restart_a_conversation_on_a_gone_step_is_not_restarted() -> None:
    # (its version's source is not in the store: the engine alone never saves it)
    store = MemoryStore()
    assert await say(engine_on(store, V1), ALICE, "hi") == ["First question?"]

    restarted = engine_on(store, V2)  # v1 is not in memory; v2 has no step `first`
    key = ConversationKey(LINE, "sms", ALICE)
    assert await say(restarted, ALICE, "a") == ["Sorry, that went wrong."]
    session = await store.get_session(key)
    assert session is not None and (session.step, session.flow_version) == ("first", V1.version)

    # Declaring the rename lets it continue where it was.
    fixed = engine_on(store, V3)
    assert await say(fixed, ALICE, "a") == ["Second question?"]
    session = await store.get_session(key)
    assert session is not None and (session.step, session.flow_version) == ("second", V3.version)


async def test_after_a_restart_a_step_that_is_still_there_continues_on_the_new_version() -> None:
    store = MemoryStore()
    engine = engine_on(store, V1)
    await say(engine, ALICE, "hi")
    assert await say(engine, ALICE, "a") == ["Second question?"]
    assert await say(engine_on(store, V2), ALICE, "b") == ["Bye from v2."]


def test_renamed_is_checked_when_the_flow_loads() -> None:
    with pytest.raises(FlowError) as err:
        quiz("one", "Q?", renamed="renamed: {first: nowhere, second: one}")
    text = str(err.value)
    assert "quiz.yaml:6:18:" in text and "renamed.first: unknown step 'nowhere'" in text
    assert "renamed: 'second' is still a step of this flow" in text


async def test_a_runtime_reload_keeps_a_broken_file_out_and_says_where(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "quiz.yaml").write_text(V1_TEXT, encoding="utf-8")
    settings = parse_settings(
        {
            "store": {"url": "memory://"},
            "flows": {"paths": [str(flows)]},
            "lines": [{"number": LINE, "provider": "sandbox", "flow": "quiz"}],
        },
        env={},
    )
    async with Runtime(settings) as runtime:
        (flows / "quiz.yaml").write_text(
            V1_TEXT.replace("text, save", "telepathy, save", 1), "utf-8"
        )
        errors = await runtime.reload_flows()
        assert [f"{e.file}:{e.line}" for e in errors] == [f"{flows / 'quiz.yaml'}:9"]
        assert "unknown expect type 'telepathy'" in errors[0].message
        assert runtime.flow_errors == errors
        assert runtime.flows["quiz"].version == V1.version  # the loaded version stays
        (flows / "quiz.yaml").write_text(V1_TEXT.replace("Bye.", "Bye!"), "utf-8")
        assert await runtime.reload_flows() == [] and runtime.flow_errors == []
        assert runtime.flows["quiz"].version != V1.version
        assert runtime.flow_version_counts() == {"quiz": 1}  # nobody was on the old one
        reloads = {s.labels["result"]: s.value for s in runtime.metrics.reloads.collect()[0].samples
                   if s.name.endswith("_total")}  # fmt: skip
        assert reloads == {"failed": 1.0, "ok": 1.0}

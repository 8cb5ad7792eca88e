"""The engine end to end over real stores: turns, ordering, timers, hooks, opt-out."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from convo.bot import Bot, Conversation
from convo.exceptions import FlowRuntimeError, StoreError
from convo.flow.engine import Engine
from convo.flow.loader import discover, load_flow_text
from convo.flow.outputs import LoadedFlow
from convo.models import ConversationKey, ConversationStatus, InboundMessage, MessageStatus
from convo.store.base import MessageQuery, Store
from convo.store.sqlite import SqliteStore

LINE = "+3200000000"
ALICE = "+32470000001"
BOB = "+32470000002"

FLOW = """
flow: order
languages: [en, nl]
start: count
params:
  shop: {default: "the shop"}
anytime:
  - when: {keywords: {en: [STOP], nl: [STOP]}}
    do: [opt_out]
    goto: stopped
steps:
  count:
    ask:
      text: {en: "How many at {{ params.shop }}?", nl: "Hoeveel bij {{ params.shop }}?"}
      expect: number
      save_as: count
      reprompt: [{en: "A number please.", nl: "Een getal alstublieft."}]
      max_attempts: 2
      on_max_attempts: stopped
      timeout: 1h
      on_timeout: nudge
    then: sure
  nudge:
    ask:
      text: {en: "Still there? How many?", nl: "Nog daar? Hoeveel?"}
      expect: number
      save_as: count
    then: sure
  sure:
    ask:
      text: {en: "{{ count }}, sure?", nl: "{{ count }}, zeker?"}
      expect: yes_no
      save_as: sure
    then:
      - if: "sure"
        goto: done
      - goto: count
  done:
    say: {en: "Done: {{ count }}.", nl: "Klaar: {{ count }}."}
    end: true
  stopped:
    say: {en: "Bye.", nl: "Dag."}
    end: true
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def engine_for(store: Store, clock: Clock | None = None, bot: Bot | None = None) -> Engine:
    spec = load_flow_text(FLOW, "order.yaml", hooks=set())
    return Engine({"order": spec}, store, lines={LINE: "order"}, clock=clock or Clock(), bot=bot)


def msg(text: str, sender: str = ALICE, pid: str = "") -> InboundMessage:
    return InboundMessage(line=LINE, sender=sender, text=text, provider_message_id=pid)


async def texts(engine: Engine, text: str, sender: str = ALICE) -> list[str]:
    return [m.text for m in await engine.handle(msg(text, sender))]


async def test_a_stranger_starts_the_line_flow_and_answers(any_store: Store) -> None:
    engine = engine_for(any_store)
    assert await texts(engine, "hello") == ["How many at the shop?"]
    assert await texts(engine, "twelve") == ["12, sure?"]
    assert await texts(engine, "yes") == ["Done: 12."]
    session = await any_store.get_session(ConversationKey(LINE, "sms", ALICE))
    assert session is not None
    assert session.status is ConversationStatus.ENDED
    assert session.slots == {"count": 12, "sure": True}


async def test_replies_are_queued_in_the_log_with_the_turn(any_store: Store) -> None:
    engine = engine_for(any_store)
    await texts(engine, "hello")
    pending = await any_store.pending_outbound()
    assert [(r.text, r.status) for r in pending] == [
        ("How many at the shop?", MessageStatus.QUEUED)
    ]
    assert await any_store.unprocessed_inbound() == []
    page, total = await any_store.list_messages(MessageQuery(number=ALICE))
    assert total == 2
    assert [r.direction.value for r in page] == ["outbound", "inbound"]  # newest first


async def test_duplicate_provider_message_is_processed_once(any_store: Store) -> None:
    engine = engine_for(any_store)
    assert len(await engine.handle(msg("hi", pid="p-1"))) == 1
    assert await engine.handle(msg("hi", pid="p-1")) == []
    assert len(await any_store.pending_outbound()) == 1


async def test_two_texts_arriving_together_are_both_handled_in_order(any_store: Store) -> None:
    engine = engine_for(any_store)
    await texts(engine, "hello")
    first, second = msg("3"), msg("yes")
    assert await engine.receive(first) and await engine.receive(second)
    results = await asyncio.gather(engine.process(first), engine.process(second))
    assert [m.text for m in results[0]] == ["3, sure?"]
    assert [m.text for m in results[1]] == ["Done: 3."]


async def test_unusable_answers_reprompt_then_give_up(any_store: Store) -> None:
    engine = engine_for(any_store)
    await texts(engine, "hello")
    assert await texts(engine, "") == ["A number please."]
    assert await texts(engine, "🙂" * 500) == ["Bye."]


async def test_bad_input_never_crashes_a_turn(any_store: Store) -> None:
    engine = engine_for(any_store)
    await texts(engine, "hello")
    for text in ["", " ", "x" * 2000, "🎉🎉", "\x00\x07", "{{ 7*7 }}", "ja"]:
        replies = await texts(engine, text, sender=ALICE)
        assert replies, text
        await any_store.set_suppressed(LINE, ALICE, False)


async def test_step_timeout_is_durable_across_a_restart(tmp_path: Path) -> None:
    clock = Clock()
    store = SqliteStore(tmp_path / "t.db")
    await store.open()
    await texts(engine_for(store, clock), "hello")
    await store.close()

    clock.now += 3601
    store = SqliteStore(tmp_path / "t.db")  # a new process: new store, new engine
    await store.open()
    engine = engine_for(store, clock)
    fired = await engine.fire_due()
    assert [[m.text for m in batch] for batch in fired] == [["Still there? How many?"]]
    assert await engine.fire_timers() == 0  # fired once only
    assert await texts(engine, "4") == ["4, sure?"]
    await store.close()


async def test_a_timer_that_cannot_fire_does_not_stop_the_others(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    store = SqliteStore(tmp_path / "t.db")
    await store.open()
    try:
        engine = engine_for(store, clock)
        await texts(engine, "hello", sender=ALICE)
        clock.now += 1
        await texts(engine, "hello", sender=BOB)  # due after Alice's
        cx = sqlite3.connect(tmp_path / "t.db", isolation_level=None)  # Alice's row is damaged
        cx.execute("UPDATE sessions SET slots = '{broken' WHERE contact = ?", (ALICE,))
        cx.close()
        clock.now += 3601
        with caplog.at_level("ERROR", "convo.engine"):
            fired = await engine.fire_due()
            assert await engine.fire_timers() == 0  # still due, still broken: logged once
    finally:
        await store.close()
    assert [[(m.to, m.text) for m in batch] for batch in fired] == [
        [(BOB, "Still there? How many?")]
    ]
    broken = [r for r in caplog.records if "cannot fire" in r.getMessage()]
    assert len(broken) == 1 and ALICE in broken[0].getMessage()


async def test_an_answer_before_the_timeout_cancels_it(any_store: Store) -> None:
    clock = Clock()
    engine = engine_for(any_store, clock)
    await texts(engine, "hello")
    await texts(engine, "5")
    clock.now += 7200
    assert await engine.fire_timers() == 0


async def test_opt_out_sends_the_confirmation_then_nothing_until_start(any_store: Store) -> None:
    engine = engine_for(any_store)
    assert await texts(engine, "STOP") == ["Bye."]
    assert await any_store.is_suppressed(LINE, ALICE)
    assert await texts(engine, "hello?") == []
    key = ConversationKey(LINE, "sms", ALICE)
    assert await engine.start(key, "order") == []
    assert await texts(engine, "START") == ["How many at the shop?"]
    assert not await any_store.is_suppressed(LINE, ALICE)


async def test_an_opt_out_is_kept_with_its_confirmation_or_not_at_all(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "t.db")
    await store.open()
    try:
        engine = engine_for(store)
        cx = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
        # The suppression list cannot be written (a real SQLite error, from a trigger).
        cx.execute(
            "CREATE TRIGGER broken BEFORE INSERT ON suppressions "
            "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
        )
        stop = msg("STOP")
        assert await engine.receive(stop)
        with pytest.raises(StoreError):
            await engine.process(stop)
        # Nothing half-done: no "Bye." queued for someone still on the list.
        assert await store.pending_outbound() == []
        assert not await store.is_suppressed(LINE, ALICE)
        cx.execute("DROP TRIGGER broken")
        cx.close()
        [again] = await store.unprocessed_inbound()  # what recovery turns
        assert [m.text for m in await engine.process(again.to_inbound())] == ["Bye."]
        assert await store.is_suppressed(LINE, ALICE)
    finally:
        await store.close()


async def test_outbound_start_checks_params(any_store: Store) -> None:
    engine = engine_for(any_store)
    key = ConversationKey(LINE, "sms", ALICE)
    with pytest.raises(FlowRuntimeError, match="unknown param"):
        await engine.start(key, "order", params={"shopp": "x"})
    replies = await engine.start(key, "order", params={"shop": "Bakkerij"}, lang="nl")
    assert [m.text for m in replies] == ["Hoeveel bij Bakkerij?"]


async def test_a_hook_that_raises_leaves_the_conversation_where_it_was(any_store: Store) -> None:
    bot = Bot("t")

    @bot.validator("t.check")
    async def check(conv: Conversation, value: object) -> bool:
        raise RuntimeError("backend down")

    flow = FLOW.replace(
        "      save_as: count\n      reprompt",
        "      validate: t.check\n      save_as: count\n      reprompt",
        1,
    )
    spec = load_flow_text(flow, "order.yaml", hooks={"t.check"})
    engine = Engine({"order": spec}, any_store, lines={LINE: "order"}, bot=bot)
    await texts(engine, "hello")
    replies = await texts(engine, "3")
    assert replies == ["Sorry, something went wrong on our side. Please try again later."]
    session = await any_store.get_session(ConversationKey(LINE, "sms", ALICE))
    assert session is not None and session.step == "count" and session.slots == {}


def test_one_machine_per_flow_shared_by_all_conversations() -> None:
    spec = load_flow_text(FLOW, "order.yaml")
    loaded = LoadedFlow.build(spec)
    machine = loaded.machine
    assert machine.move("count", "sure") == "sure"
    assert machine.move("done", "stopped") == "stopped"  # anytime goto: legal everywhere
    with pytest.raises(FlowRuntimeError, match="no move from step 'count' to 'done'"):
        machine.move("count", "done")


def test_graph_is_mermaid() -> None:
    spec = load_flow_text(FLOW, "order.yaml")
    graph = LoadedFlow.build(spec).machine.mermaid()
    assert graph.startswith("stateDiagram-v2\n    [*] --> count\n")
    assert "    count --> nudge\n" in graph
    assert "    done --> [*]\n" in graph


NEEDS_PARAMS = """
flow: remind
languages: [en]
start: hello
params:
  date: {type: date, required: true}
steps:
  hello:
    say: "Your appointment is on {{ params.date | date }}."
    end: true
"""


async def test_a_stranger_cannot_start_a_flow_that_needs_params(any_store: Store) -> None:
    spec = load_flow_text(NEEDS_PARAMS, "remind.yaml")
    engine = Engine({"remind": spec}, any_store, lines={LINE: "remind"})
    assert await texts(engine, "hi") == [
        "Sorry, something went wrong on our side. Please try again later."
    ]
    assert await any_store.unprocessed_inbound() == []
    assert await any_store.get_session(ConversationKey(LINE, "sms", ALICE)) is None


async def test_a_strangers_first_stop_opts_out_even_of_a_flow_that_needs_params(
    any_store: Store,
) -> None:
    flow = NEEDS_PARAMS.replace(
        "steps:\n",
        "anytime:\n  - when: {keywords: [STOP]}\n    do: [opt_out]\n    goto: stopped\n"
        'steps:\n  stopped:\n    say: "No more messages."\n    end: true\n',
    )
    engine = Engine(
        {"remind": load_flow_text(flow, "remind.yaml")}, any_store, lines={LINE: "remind"}
    )
    assert await texts(engine, "stop") == ["No more messages."]
    assert await any_store.is_suppressed(LINE, ALICE)
    # Anything else from a stranger still cannot start it.
    assert await texts(engine, "hi", sender="+32470000002") == [
        "Sorry, something went wrong on our side. Please try again later."
    ]
    assert not await any_store.is_suppressed(LINE, "+32470000002")


async def test_a_template_failing_at_runtime_costs_one_reply_not_the_message(
    any_store: Store,
) -> None:
    flow = NEEDS_PARAMS.replace("required: true", "required: false")
    engine = Engine(
        {"remind": load_flow_text(flow, "remind.yaml")}, any_store, lines={LINE: "remind"}
    )
    # `date` is None for a stranger: the date filter fails inside the template.
    assert await texts(engine, "hi") == [
        "Sorry, something went wrong on our side. Please try again later."
    ]
    assert await any_store.unprocessed_inbound() == []


EXAMPLE_FLOWS = Path(__file__).resolve().parents[2] / "flows"


@pytest.mark.parametrize("flow_file", discover([EXAMPLE_FLOWS]), ids=lambda p: p.stem)
def test_move_table_agrees_with_the_transitions_machine(flow_file: Path) -> None:
    import itertools

    from convo.flow.loader import load_flow

    machine = LoadedFlow.build(load_flow(flow_file)).machine
    steps = list(machine.spec.steps)
    legal = 0
    for current, dest in itertools.product(steps, steps):
        try:
            by_table = machine.move(current, dest)
        except FlowRuntimeError:
            by_table = None
        try:
            by_trigger = machine.fire(current, dest)
        except FlowRuntimeError:
            by_trigger = None
        assert by_table == by_trigger, (current, dest)
        legal += by_table is not None
    assert legal > 0


async def test_more_timers_than_a_batch_fire_in_one_call(any_store: Store) -> None:
    clock = Clock()
    engine = engine_for(any_store, clock)
    people = [f"+3247000{i:04d}" for i in range(250)]  # 2.5 batches of due timers
    for person in people:
        await texts(engine, "hello", sender=person)
    clock.now += 3601
    fired = await engine.fire_due()
    assert len(fired) == 250
    assert {batch[0].to for batch in fired} == set(people)
    assert await engine.fire_timers() == 0

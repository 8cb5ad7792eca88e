"""A text to a conversation with no turn running is stored and its turn loaded in one SQLite
job (``Engine.receive_held``): one store round trip fewer per text. The conversation's lock
is taken where the text is stored and released by its turn, whatever happens to it: these
tests check that nothing is left holding it (a later text of the same conversation would
then never be turned) and that a contact's texts are still turned in order.

Real parts: a SQLite file, the real engine and intake; a failing store write is a SQLite
trigger's ``RAISE(ABORT)``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from convo.intake import Intake
from convo.metrics import Metrics, TimedStore
from convo.models import ConversationKey
from convo.store.sqlite import SqliteStore
from tests.echo_world import ALICE, LINE, echo_engine, replies, text

KEY = ConversationKey(LINE, "sms", ALICE)


async def caught_up(store: SqliteStore) -> tuple[Intake, Metrics]:
    metrics = Metrics()
    timed = TimedStore.wrap(store, metrics)
    intake = Intake(echo_engine(timed))
    await intake.recover()  # as the runtime does at start: the intake turns texts now
    return intake, metrics


def calls(metrics: Metrics, method: str) -> int:
    return sum(metrics.store_seconds.series(method).counts)


async def test_a_text_is_stored_with_its_turn_loaded_in_one_store_call(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "convo.db")
    await store.open()
    try:
        intake, metrics = await caught_up(store)
        for n, body in enumerate(["hi", "one", "two"]):
            task = await intake.accept(text(n, body))
            assert task is not None
            await task
        assert await replies(store) == ["ready", "got one", "got two"]
        assert calls(metrics, "add_inbound_loading") == 3
        assert calls(metrics, "add_inbound") == calls(metrics, "load_turn") == 0
        assert store.turn_idle(KEY)  # every turn let go of the lock

        # A duplicate is stored once, turned never, and lets go of the lock too.
        assert await intake.accept(text(2, "two")) is None
        assert store.turn_idle(KEY)
        assert await replies(store) == ["ready", "got one", "got two"]
    finally:
        await store.close()


async def test_texts_arriving_while_a_turn_runs_are_turned_in_order(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "convo.db")
    await store.open()
    try:
        intake, metrics = await caught_up(store)
        # All stored before the first turn ran: the first takes the lock with its store
        # job, the others find the conversation busy and queue on the lock.
        tasks = [await intake.accept(text(n, body)) for n, body in enumerate("abcd")]
        assert all(task is not None for task in tasks)
        assert await intake.wait(10)
        assert await replies(store) == ["ready", "got b", "got c", "got d"]
        assert calls(metrics, "add_inbound_loading") >= 1
        assert calls(metrics, "load_turn") >= 1  # the queued ones loaded under the lock
        assert store.turn_idle(KEY)
    finally:
        await store.close()


async def test_a_failed_turn_lets_go_of_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "convo.db"
    store = SqliteStore(path)
    await store.open()
    try:
        intake, _ = await caught_up(store)
        first = await intake.accept(text(1, "hi"))
        assert first is not None
        await first
        with sqlite3.connect(path) as cx:  # the next turn's save fails in SQLite itself
            cx.execute(
                "CREATE TRIGGER no_save BEFORE UPDATE ON sessions "
                "BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
            )
        failed = await intake.accept(text(2, "lost"))
        assert failed is not None
        assert await failed == []  # left unprocessed, for recovery
        assert store.turn_idle(KEY)
        with sqlite3.connect(path) as cx:
            cx.execute("DROP TRIGGER no_save")
        assert await intake.recover() == 1  # the failed text, turned now
        assert await intake.wait(10)
        assert await replies(store) == ["ready", "got lost"]
        assert store.turn_idle(KEY)
    finally:
        await store.close()


async def test_a_turn_cancelled_before_it_ran_lets_go_of_the_lock(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "convo.db")
    await store.open()
    try:
        intake, _ = await caught_up(store)
        task = await intake.accept(text(1, "hi"))
        assert task is not None
        assert not store.turn_idle(KEY)  # held for the turn, which has not run yet
        await intake.cancel()  # cancelled before its first step: its body never runs
        assert task.cancelled()
        await asyncio.sleep(0)
        assert store.turn_idle(KEY)
        restarted, _ = await caught_up(store)  # the text is still there, unprocessed
        assert await restarted.wait(10)
        assert await replies(store) == ["ready"]
    finally:
        await store.close()


async def test_a_corrupt_session_never_undoes_storing_the_text(tmp_path: Path) -> None:
    path = tmp_path / "convo.db"
    store = SqliteStore(path)
    await store.open()
    try:
        intake, _ = await caught_up(store)
        first = await intake.accept(text(1, "hi"))
        assert first is not None
        await first
        with sqlite3.connect(path) as cx:
            cx.execute("UPDATE sessions SET slots = '{broken'")
        turn = await intake.accept(text(2, "kept"))  # stored: the webhook may say 200
        assert turn is not None
        assert await turn == []  # the turn reports the corrupt session (and is logged)
        assert store.turn_idle(KEY)
        waiting = await store.unprocessed_of(KEY)
        assert [m.text for m in waiting] == ["kept"]
    finally:
        await store.close()

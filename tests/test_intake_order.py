"""After a crash, a contact's texts are turned in the order they arrived, even when the
provider resends a later one before recovery has turned the earlier one.

The crash is real in effect: the first text is in the SQLite file, unprocessed (stored and
acknowledged, its turn never saved), and a new intake starts on that file, as a restarted
server does. Without the order rule the resent second text started the conversation and
the first was then taken as the answer to its question (found by bench/faults.py's
SIGKILL scenario: "ready", "got hello", and the reply to the second text never came).
"""

from __future__ import annotations

from pathlib import Path

from convo.intake import Intake
from convo.models import MessageRecord
from convo.store.sqlite import SqliteStore
from tests.echo_world import echo_engine, replies, text


async def test_a_text_resent_after_a_crash_waits_for_the_older_one(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "convo.db")
    await store.open()
    try:
        await store.add_inbound(MessageRecord.inbound(text(1, "hello")))  # then the crash
        intake = Intake(echo_engine(store))  # the restarted server

        assert await intake.accept(text(2, "m1")) is None  # stored, left to recovery
        assert await intake.recover() == 2
        assert await intake.wait(5)
        assert await replies(store) == ["ready", "got m1"]

        # Caught up: the next text is turned as it comes.
        task = await intake.accept(text(3, "m2"))
        assert task is not None
        assert [m.text for m in await task] == ["got m2"]
    finally:
        await store.close()

"""The reminder-call bot driven from Python, as a phone call (no provider, no HTTP)."""

from __future__ import annotations

from pathlib import Path

from convo.bot import load_bot
from convo.testing import FlowTester
from convo.voice.instructions import Dial, Gather, Hangup, Say

HERE = Path(__file__).parent


async def test_pressing_2_hands_the_call_to_reception() -> None:
    bot = load_bot(HERE / "bot.py")
    tester = FlowTester.load(HERE / "reminder_call.yaml", bot=bot)
    call = tester.call(lang="en", params={"patient": "An", "date": "2026-12-01"})
    first = await call.answer()
    assert isinstance(first[0], Gather)
    assert isinstance(first[0].prompts[0], Say)
    assert first[0].prompts[0].language == "en-GB"
    document = await call.press("2")
    said = [i.text for i in document if isinstance(i, Say)]
    assert said == ["No problem, we are putting you through to reception."]
    # No number configured for the "reception" queue in a bare test: convo hangs up politely.
    assert isinstance(document[-1], Hangup)
    assert not any(isinstance(i, Dial) for i in document)
    assert bot.actions["reminder.request_move"] is not None


async def test_confirming_records_the_outcome() -> None:
    bot = load_bot(HERE / "bot.py")
    module_outcomes = bot.actions["reminder.confirm"].__globals__["OUTCOMES"]
    tester = FlowTester.load(HERE / "reminder_call.yaml", bot=bot)
    call = tester.call(
        number="+32470000099", lang="nl", params={"patient": "An", "date": "2026-12-01"}
    )
    await call.answer()
    await call.press("1")
    assert module_outcomes["+32470000099"] == "confirmed"
    assert call.ended

"""The dentist bot tested from Python with convo.testing (no HTTP, no provider)."""

from __future__ import annotations

from pathlib import Path

import pytest

from convo.bot import Bot
from convo.testing import FlowTester

HERE = Path(__file__).parent


@pytest.fixture
def bot() -> Bot:
    from convo.bot import load_bot

    return load_bot(HERE / "bot.py")


async def test_books_a_free_weekday(bot: Bot) -> None:
    chat = FlowTester.load(HERE / "booking.yaml", bot=bot).dialogue(lang="en")
    assert "Which day" in (await chat.start())[0]
    replies = await chat.send("2027-01-20")
    assert replies[0].startswith("Booked for 20 January 2027, reference B")
    assert chat.ended
    assert chat.slots["booking"].startswith("B")


async def test_a_failing_hook_keeps_the_conversation_where_it_was(bot: Bot) -> None:
    broken = Bot("dentist")
    broken.validators.update(bot.validators)

    @broken.action("dentist.book")
    async def book(conv: object) -> None:
        raise ConnectionError("agenda down")

    chat = FlowTester.load(HERE / "booking.yaml", bot=broken).dialogue(lang="nl")
    await chat.start()
    replies = await chat.send("2027-01-20")
    assert replies == ["Sorry, onze agenda is nu niet bereikbaar. Bel 02 123 45 67."]
    assert chat.step == "greet"
    assert "new_date" not in chat.slots
    assert not chat.ended

"""Long texts in parts, from the webhook's intake into the store, and erased from there.

The intake names each group as it likes; the store knows a group's contact only because
the intake says whose it is. These run the real intake, engine and store (both backends).
"""

from __future__ import annotations

from convo.flow.engine import Engine
from convo.flow.loader import load_flow_text
from convo.intake import Intake
from convo.models import Direction, InboundMessage, MessagePart
from convo.store.base import MessageQuery, Store

LINE = "+32470000100"
ALICE = "+32470000001"
BOB = "+32470000002"
FLOW = """
flow: echo
languages: [en]
start: hello
steps:
  hello:
    say: {en: "Hello."}
    end: true
"""


def part(sender: str, index: int, text: str) -> InboundMessage:
    return InboundMessage(
        line=LINE,
        sender=sender,
        text=text,
        provider="sandbox",
        provider_message_id=f"{sender}-{index}",
        part=MessagePart("ref-1", index, 3),
    )


def intake_on(store: Store) -> Intake:
    engine = Engine({"echo": load_flow_text(FLOW, "echo.yaml")}, store, lines={LINE: "echo"})
    return Intake(engine, clock=lambda: 1000.0)


async def test_erasing_a_contact_drops_its_pending_long_texts_only(any_store: Store) -> None:
    intake = intake_on(any_store)
    for message in (part(ALICE, 1, "Hel"), part(ALICE, 3, "lo"), part(BOB, 2, "b")):
        assert await intake.accept(message) is None  # waiting for the other parts

    erased = await any_store.erase_contact(ALICE)

    assert erased.fragments == 2
    assert erased.messages == 0  # nothing was logged: the text is not whole yet
    intake.clock = lambda: 10**10
    assert await intake.expire_fragments() == 1  # Bob's part is still there
    assert await intake.wait(5)
    inbound = MessageQuery(direction=Direction.INBOUND)
    [delivered], total = await any_store.list_messages(inbound)
    assert total == 1 and (delivered.contact, delivered.text) == (BOB, "b")


async def test_a_retried_part_is_kept_once(any_store: Store) -> None:
    intake = intake_on(any_store)
    for message in (part(ALICE, 1, "Hel"), part(ALICE, 1, "Hel")):
        assert await intake.accept(message) is None
    assert (await any_store.erase_contact(ALICE)).fragments == 1

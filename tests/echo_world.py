"""An echo flow and texts to it, for the tests of how texts are turned (intake order, held
turns, stores several processes share): one contact, one line, a flow that answers
"ready" and then "got <what was said>" to every text."""

from __future__ import annotations

from convo.flow.engine import Engine
from convo.flow.loader import load_flow_text
from convo.models import Direction, InboundMessage
from convo.store.base import MessageQuery, Store

LINE, ALICE = "+32470000100", "+32470000001"
FLOW = """
flow: echo
languages: [en]
start: first
steps:
  first:
    ask: {text: {en: "ready"}, expect: text, save_as: said}
    then: again
  again:
    ask: {text: {en: "got {{ slots.said }}"}, expect: text, save_as: said}
    then: again
"""


def text(n: int, body: str) -> InboundMessage:
    """Alice's ``n``-th text (its provider id and time follow from ``n``)."""
    return InboundMessage(
        line=LINE,
        sender=ALICE,
        text=body,
        provider="vonage",
        provider_message_id=f"m{n}",
        received_at=1000.0 + n,
    )


def echo_engine(store: Store) -> Engine:
    """An engine running the echo flow on ``LINE``."""
    return Engine({"echo": load_flow_text(FLOW, "echo.yaml")}, store, lines={LINE: "echo"})


async def replies(store: Store) -> list[str]:
    """The texts of the replies queued in ``store``, oldest first."""
    found, _ = await store.list_messages(MessageQuery(direction=Direction.OUTBOUND))
    return [r.text for r in reversed(found)]

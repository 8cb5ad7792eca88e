"""A call's turns in the message log, so a contact's transcript shows calls beside texts.

Each call turn logs (in its ``save_turn``, ``call_log=``) up to two voice messages on the
conversation's key: what the caller did, inbound with status ``received`` (the keys they
pressed, what they said, silence, a recording, or how a dialled number answered; an
answered call logs none), and what the call said and did next, outbound with status
``delivered`` (each prompt's text, then the instruction it waits on or ends with, one per
line, e.g. ``[waits for 1 key]``). Neither is ever turned or sent: they are the record.
Their provider is the call's provider; their provider id stays empty (they are not the
provider's messages), with the call id in ``metadata`` as ``call_id``.
"""

from __future__ import annotations

from collections.abc import Sequence

from convo.flow.pipeline import Dialled, Event, Recorded, Reply, Silence
from convo.models import CallEvent, Direction, MessageRecord, MessageStatus, new_id, now
from convo.voice.heard import heard
from convo.voice.instructions import Instruction


def caller_did(event: Event) -> str | None:
    """What the caller did, as the transcript shows it; None for an answered call."""
    match event:
        case Reply():
            return event.text
        case Silence():
            return "(silence)"
        case Recorded():
            return "(left a recording)"
        case Dialled():
            return "(the dialled number answered)" if event.ok else "(no answer)"
        case _:
            return None


def call_said(instructions: Sequence[Instruction]) -> str:
    """What the call said and did, one line each: prompts as text, the rest in brackets."""
    lines = [h.text if h.kind == "say" else f"[{h.text}]" for h in heard(instructions)[0]]
    return "\n".join(line for line in lines if line)


def call_records(
    call: CallEvent, event: Event, instructions: Sequence[Instruction]
) -> list[MessageRecord]:
    """The turn's call log (module docstring), oldest first."""
    key, at = call.key, now()

    def record(direction: Direction, text: str, status: MessageStatus) -> MessageRecord:
        return MessageRecord(
            id=new_id(),
            direction=direction,
            line=key.line,
            contact=key.contact,
            text=text,
            status=status,
            channel=key.channel,
            provider=call.provider,
            created_at=at,
            updated_at=at,
            metadata={"call_id": call.call_id},
        )

    records = []
    did = caller_did(event)
    if did is not None:
        records.append(record(Direction.INBOUND, did, MessageStatus.RECEIVED))
    said = call_said(instructions)
    if said:
        records.append(record(Direction.OUTBOUND, said, MessageStatus.DELIVERED))
    return records

"""What a caller hears of a call's instructions, as text: the sandbox phone shows it, and
the message log keeps it as a call's transcript (``convo.flow.call_log``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from convo.voice.instructions import (
    Conference,
    Dial,
    Gather,
    Hangup,
    Instruction,
    Pause,
    Play,
    Record,
    Redirect,
    Say,
)


@dataclass(frozen=True, slots=True)
class Heard:
    """One thing the caller hears or sees happen, as text."""

    kind: str  # say, play, pause, wait, dial, record, conference, hangup
    text: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class CallState:
    """What the call waits for after an answer: ``after`` is "" when it has ended."""

    after: str
    num_digits: int | None = None


def heard(instructions: Sequence[Instruction]) -> tuple[list[Heard], CallState]:
    """The instructions as the caller experiences them, and what the call waits for."""
    out: list[Heard] = []
    state = CallState("")
    for item in instructions:
        match item:
            case Say():
                out.append(Heard("say", item.text, item.language))
            case Play():
                out.append(Heard("play", item.url))
            case Pause():
                out.append(Heard("pause", f"{item.seconds:g} s of silence"))
            case Gather():
                out.extend(heard(list(item.prompts))[0])
                keys = f"{item.num_digits} key(s)" if item.num_digits else "keys, then #"
                speech = " or speech" if "speech" in item.input else ""
                out.append(Heard("wait", f"waits for {keys}{speech}", f"{item.timeout:g} s"))
                state = CallState("gather", item.num_digits)
            case Record():
                out.append(Heard("record", f"records a message (at most {item.max_length} s)"))
                state = CallState("record")
            case Dial():
                recorded = " (the call is recorded)" if item.record else ""
                out.append(Heard("dial", f"puts you through to {item.target}{recorded}"))
                state = CallState("dial")
            case Conference():
                out.append(Heard("conference", f"joins conference room {item.room}"))
            case Redirect():
                pass  # where a provider goes when a Gather gets no input: "Say nothing"
            case Hangup():
                out.append(Heard("hangup", "hangs up"))
                return out, CallState("")
    return out, state

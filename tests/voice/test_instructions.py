"""Neutral call instructions: construction checks and helpers."""

from __future__ import annotations

import re

import pytest

from convo.voice.instructions import (
    Conference,
    Dial,
    Gather,
    Hangup,
    Pause,
    Play,
    Record,
    Redirect,
    Say,
    ensure_instructions,
    fill_actions,
)


def test_defaults_are_sensible() -> None:
    gather = Gather(prompts=(Say("Kies 1", language="nl-NL"),))
    assert gather.input == frozenset({"dtmf"})
    assert gather.finish_on_key == "#"
    assert gather.action == ""
    assert Say("hi").requested_language is None
    assert Record().beep is True


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Say("  "), "Say: text is empty"),
        (lambda: Say("hi", loop=0), "Say: loop must be an integer >= 1"),
        (lambda: Say("hi", loop=True), "Say: loop must be an integer >= 1"),
        (lambda: Play("ftp://x/a.wav"), "Play: url"),
        (lambda: Pause(0), "Pause: seconds must be a number > 0"),
        (lambda: Gather(input=frozenset()), "Gather: input must be a non-empty subset"),
        (lambda: Gather(input=frozenset({"fax"})), "Gather: input must be a non-empty subset"),
        (lambda: Gather(input="dtmf"), "Gather: input must be a set"),  # type: ignore[arg-type]  # the bug under test
        (lambda: Gather(num_digits=0), "Gather: num_digits must be an integer >= 1"),
        (lambda: Gather(finish_on_key="x"), "Gather: finish_on_key must be one of"),
        (lambda: Gather(timeout=-1), "Gather: timeout must be a number > 0"),
        (lambda: Gather(prompts=(Hangup(),)), "Gather: prompts[0] must be Say, Play or Pause"),  # type: ignore[arg-type]  # the bug under test
        (lambda: Record(max_length=0), "Record: max_length"),
        (lambda: Record(finish_on_key="##"), "Record: finish_on_key"),
        (lambda: Dial(""), "Dial: target is empty"),
        (lambda: Dial("+3212345678", time_limit=0), "Dial: time_limit"),
        (lambda: Conference(" "), "Conference: room is empty"),
        (lambda: Redirect("/relative"), "Redirect: url '/relative' is not an absolute"),
    ],
)
def test_bad_values_name_the_instruction_and_field(build: object, message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        build()  # type: ignore[operator]  # parametrised callables


def test_dial_knows_sip_targets() -> None:
    assert Dial("sip:reception@pbx.example.com").is_sip
    assert Dial("SIPS:desk@pbx.example.com").is_sip
    assert not Dial("+3212345678").is_sip


def test_ensure_instructions_names_the_foreign_item() -> None:
    assert ensure_instructions([Hangup()]) == [Hangup()]
    with pytest.raises(TypeError, match=r"instruction 1: .* got str"):
        ensure_instructions([Say("hi"), "<Say>hi</Say>"])


def test_fill_actions_only_fills_empty_gather_and_record_actions() -> None:
    kept = Gather(action="https://bot.example.com/custom")
    filled = fill_actions(
        [Gather(), kept, Record(), Dial("+3212345678"), Say("x")],
        "https://bot.example.com/webhooks/tv/voice/input",
    )
    assert filled[0] == Gather(action="https://bot.example.com/webhooks/tv/voice/input")
    assert filled[1] is kept
    assert isinstance(filled[2], Record)
    assert filled[2].action == "https://bot.example.com/webhooks/tv/voice/input"
    assert filled[3] == Dial("+3212345678")

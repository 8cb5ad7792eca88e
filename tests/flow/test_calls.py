"""One flow serving SMS and calls, and what a call's turns become as instructions."""

from __future__ import annotations

import re

from convo.flow.loader import load_flow_text
from convo.testing import FlowTester
from convo.voice.instructions import Gather, Hangup, Redirect, Say

BOTH = """
flow: opening
languages: [en, nl]
channels: [sms, voice]
start: ask
voice:
  en: {locale: en-GB, voice: Amy}
  nl: {locale: nl-BE, fallbacks: [nl-NL]}
steps:
  ask:
    ask:
      text:
        sms: {en: "Open tomorrow? Reply YES or NO.", nl: "Morgen open? Antwoord JA of NEE."}
        voice:
          en: "Should we open tomorrow? Press 1 for yes, 2 for no."
          nl: "Morgen open? Druk 1 voor ja, 2 voor nee."
      expect: yes_no
      save_as: open
      max_attempts: 2
      on_max_attempts: bye
    then: bye
  bye:
    say:
      en: "Thanks{% if open %}, we open{% endif %}."
      nl: "Bedankt{% if open %}, we openen{% endif %}."
    end: true
"""


async def test_one_flow_speaks_per_channel_texts() -> None:
    tester = FlowTester(load_flow_text(BOTH, "opening.yaml"))
    sms = tester.dialogue(lang="en")
    assert await sms.start() == ["Open tomorrow? Reply YES or NO."]
    assert await sms.send("yes") == ["Thanks, we open."]

    call = tester.call(number="+32470000002", lang="nl")
    first = await call.answer()
    gather, redirect = first
    assert isinstance(gather, Gather) and isinstance(redirect, Redirect)
    assert gather.num_digits == 1 and gather.input == frozenset({"dtmf", "speech"})
    assert gather.speech_language == "nl-BE"
    [prompt] = gather.prompts
    assert isinstance(prompt, Say)
    assert (prompt.text, prompt.language, prompt.language_fallbacks) == (
        "Morgen open? Druk 1 voor ja, 2 voor nee.",
        "nl-BE",
        ("nl-NL",),
    )
    assert re.search(r"/voice/input\?after=gather&turn=[\w-]+$", gather.action)
    last = await call.press("1")  # DTMF 1 = yes on a call
    assert [type(i) for i in last] == [Say, Hangup]
    assert isinstance(last[0], Say) and last[0].text == "Bedankt, we openen."
    assert call.ended and call.slots == {"open": True}


async def test_silence_counts_as_an_unusable_answer_on_a_call() -> None:
    tester = FlowTester(load_flow_text(BOTH, "opening.yaml"))
    call = tester.call(lang="en")
    await call.answer()
    again = await call.silence()
    assert isinstance(again[0], Gather)
    assert isinstance(again[0].prompts[0], Say) and again[0].prompts[0].voice == "Amy"
    end = await call.silence()  # second unusable answer: max_attempts reached
    assert isinstance(end[0], Say) and end[0].text == "Thanks."
    assert isinstance(end[-1], Hangup)


async def test_a_hangup_step_ends_the_call_with_one_hangup() -> None:
    flow = load_flow_text(
        "flow: bye\nlanguages: [en]\nchannels: [voice]\nstart: hello\nsteps:\n"
        "  hello:\n    say: 'Goodbye.'\n    goto: stop\n"
        "  stop:\n    hangup: true\n",
        "bye.yaml",
    )
    call = FlowTester(flow).call()
    document = await call.answer()
    assert [type(i) for i in document] == [Say, Hangup]

"""The turn pipeline on its own: an event in, a TurnResult (outputs, session, effects) out,
and what each channel's presenter makes of the same outputs."""

from __future__ import annotations

from typing import get_args

from convo.flow.loader import load_flow_text
from convo.flow.outputs import AwaitInput, LoadedFlow, Utterance
from convo.flow.pipeline import Begin, Effects, Reply, new_session, run_turn
from convo.flow.present_sms import present_sms
from convo.flow.present_voice import instructions
from convo.flow.spec import VERBS, Verb, VerbKeyword
from convo.flow.verbs_reader import MAIN_VERBS, VOICE_VERBS
from convo.models import ConversationKey, ConversationStatus, Session
from convo.voice.instructions import Gather, Hangup, Redirect, Say

NOW = 1_800_000_000.0
SMS = ConversationKey("+3200000000", "sms", "+32470000001")

FLOW = """
flow: desk
languages: [en, fr]
channels: [sms, voice]
start: menu
params:
  gdpr_consent_ref: {default: "ref-1"}
anytime:
  - when: {keywords: [stop]}
    do: [opt_out]
    goto: bye
steps:
  menu:
    choose:
      text: {en: "1 for French, 2 for a person.", fr: "1 pour le français, 2 pour une personne."}
      options:
        - {key: "1", set_lang: fr, goto: name}
        - {key: "2", goto: person}
  name:
    ask:
      text: {en: "Your name?", fr: "Votre nom ?"}
      save_as: who
      timeout: 1h
    then: bye
  person:
    handoff: {queue: reception, say: "A person will answer."}
  bye:
    say: {en: "Bye {{ who }}.", fr: "Au revoir {{ who }}."}
    end: true
"""


def loaded() -> LoadedFlow:
    return LoadedFlow.build(load_flow_text(FLOW, "desk.yaml"))


def clock() -> float:
    return NOW


def started(flow: LoadedFlow, key: ConversationKey = SMS) -> Session:
    return new_session(key, flow.spec, lang="en", params={"gdpr_consent_ref": "ref-1"})


async def test_a_turn_reports_its_language_change_and_timer_as_effects() -> None:
    flow = loaded()
    session = started(flow)
    first = await run_turn(flow, session, Begin(), bot=None, clock=clock)
    assert first.effects == Effects()
    assert isinstance(first.outputs[-1], AwaitInput)
    second = await run_turn(flow, session, Reply("1"), bot=None, clock=clock)
    assert second.session is session and session.step == "name"
    assert second.effects == Effects(lang="fr", timer_due=NOW + 3600)
    assert [o.text for o in second.outputs if isinstance(o, Utterance)] == ["Votre nom ?"]


async def test_an_opt_out_and_a_handoff_are_effects() -> None:
    flow = loaded()
    session = started(flow)
    await run_turn(flow, session, Begin(), bot=None, clock=clock)
    stop = await run_turn(flow, session, Reply("STOP"), bot=None, clock=clock)
    assert stop.effects.suppress is True and session.status is ConversationStatus.ENDED
    other = started(flow)
    await run_turn(flow, other, Begin(), bot=None, clock=clock)
    handed = await run_turn(flow, other, Reply("2"), bot=None, clock=clock)
    assert handed.effects.handoff == "reception" and handed.effects.suppress is None


async def test_a_failed_turn_carries_no_session_and_says_the_error_text() -> None:
    broken = load_flow_text(
        "flow: broken\nlanguages: [fr]\nstart: hello\nparams:\n  day: {}\nsteps:\n"
        '  hello:\n    say: "Le {{ params.day | date }}."\n    end: true\n',
        "broken.yaml",
    )
    flow = LoadedFlow.build(broken)
    session = new_session(SMS, broken, params={"day": "not a date"})
    result = await run_turn(flow, session, Begin(), bot=None, clock=clock)
    assert result.failed and result.session is None and result.effects == Effects()
    [said] = result.outputs
    assert isinstance(said, Utterance) and said.text.startswith("Désolé")
    assert [m.text for m in present_sms(result)] == [said.text]


async def test_the_presenters_give_texts_and_call_instructions_for_the_same_outputs() -> None:
    flow = loaded()
    session = started(flow)
    sms = present_sms(await run_turn(flow, session, Begin(), bot=None, clock=clock))
    assert [(m.text, m.to, m.metadata) for m in sms] == [
        ("1 for French, 2 for a person.", SMS.contact, {"gdpr_consent_ref": "ref-1"})
    ]
    call = started(flow, ConversationKey(SMS.line, "voice", SMS.contact))
    result = await run_turn(flow, call, Begin(), bot=None, clock=clock)
    document = instructions(flow.spec, result.outputs, input_url="https://x.test/in")
    gather, redirect = document
    assert isinstance(gather, Gather) and isinstance(redirect, Redirect)
    assert gather.num_digits == 1 and gather.action == "https://x.test/in?after=gather"
    assert [p.text for p in gather.prompts if isinstance(p, Say)] == [
        "1 for French, 2 for a person."
    ]
    assert instructions(flow.spec, (), input_url="u") == [Hangup()]


def test_every_verb_has_its_own_yaml_keyword() -> None:
    keywords = [verb.keyword for verb in VERBS]
    assert sorted(keywords) == sorted(get_args(VerbKeyword)) == sorted(MAIN_VERBS)
    assert len(set(keywords)) == len(VERBS) == len(get_args(Verb))
    assert sorted(VOICE_VERBS) == ["conference", "dial", "hangup", "record"]

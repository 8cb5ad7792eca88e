"""A flow's ``dial`` step with ``record`` and ``tts_language``: load errors, what a call
is told, and each provider's document for it."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from convo.flow.loader import load_flow_text
from convo.flow.spec import Dial as DialStep
from convo.flow.spec import Text
from convo.testing import FlowTester
from convo.testing.runner import check_call
from convo.voice import codec, ncco
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
)
from convo.voice.twiml import Limits, RenderError, prepare, render_json, render_xml
from tests.flow.test_loader import found

INPUT_URL = "https://bot.example.com/webhooks/telefoon_voice/voice/input"
TELEFOON_LOCALES = ("nl-NL", "fr-BE", "de-DE", "en-GB")

RECORDED = """
    flow: transfer
    languages: [en, nl]
    channels: [voice]
    start: connect
    steps:
      connect:
        dial:
          to: "+3225550199"
          record: true
          consent: {en: "This call is recorded.", nl: "Dit gesprek wordt opgenomen."}
          say: {en: "Putting you through.", nl: "We verbinden u door."}
          tts_language: nl-BE
          timeout: 20s
        then: bye
      bye:
        say: {en: "Bye.", nl: "Dag."}
        end: true
"""


def flow_text(steps: str) -> str:
    head = "flow: d\nlanguages: [en]\nchannels: [voice]\nstart: a\nsteps:\n"
    return head + textwrap.indent(textwrap.dedent(steps).strip(), "  ") + "\n"


# -- loading ----------------------------------------------------------------------------------


def test_a_recorded_dial_loads_with_its_consent_and_locale() -> None:
    spec = load_flow_text(textwrap.dedent(RECORDED), "transfer.yaml")
    verb = spec.steps["connect"].verb
    assert isinstance(verb, DialStep)
    assert (verb.record, verb.tts_language, verb.timeout) == (True, "nl-BE", 20.0)
    assert isinstance(verb.consent, Text)


def test_a_recorded_dial_without_consent_is_a_load_error(tmp_path: Path) -> None:
    messages = found(
        tmp_path,
        flow_text(
            """
            a:
              dial: {to: "+3225550199", record: true}
              goto: b
            b:
              dial: {to: "+3225550199", record: true, consent: false}
              end: true
            """
        ),
    )
    assert messages == [
        "7:5: error: steps.a.dial: a recorded dial needs consent (GDPR): add consent: true or a "
        'consent text (hint: e.g. consent: "This call is recorded. Hang up if you do not '
        'agree.")',
        "10:54: error: steps.b.dial: a recorded dial needs consent (GDPR): add consent: true or "
        'a consent text (hint: e.g. consent: "This call is recorded. Hang up if you do not '
        'agree.")',
    ]


def test_a_consent_text_needs_every_language(tmp_path: Path) -> None:
    text = textwrap.dedent(RECORDED).replace(', nl: "Dit gesprek wordt opgenomen."', "")
    messages = found(tmp_path, text)
    assert len(messages) == 1 and "dial.consent" in messages[0] and "nl" in messages[0]
    assert messages[0].startswith("10:")


def test_consent_without_recording_is_a_warning(tmp_path: Path) -> None:
    [message] = found(
        tmp_path, flow_text('a: {dial: {to: "+3225550199", consent: true}, end: true}')
    )
    assert message.startswith("6:33: warning: steps.a.dial: consent without record: true")


@pytest.mark.parametrize("locale", ["nl_NL", "nederlands!", "n", "nl-"])
def test_tts_language_must_be_a_locale(tmp_path: Path, locale: str) -> None:
    [message] = found(
        tmp_path,
        flow_text(f'a: {{dial: {{to: "+3225550199", tts_language: "{locale}"}}, end: true}}'),
    )
    assert message.startswith(f"6:47: error: steps.a.dial.tts_language: {locale!r} is not a locale")


# -- what the call is told --------------------------------------------------------------------


async def test_the_call_hears_the_notice_in_the_dial_locale_then_a_recorded_dial() -> None:
    tester = FlowTester(load_flow_text(textwrap.dedent(RECORDED), "transfer.yaml"))
    instructions = await tester.call(number="+32470000002", lang="nl").answer()
    consent, say, dial = instructions
    assert consent == Say("Dit gesprek wordt opgenomen.", "nl-BE")
    assert say == Say("We verbinden u door.", "nl-BE")
    assert isinstance(dial, Dial)
    assert (dial.target, dial.record, dial.language, dial.timeout) == (
        "+3225550199",
        True,
        "nl-BE",
        20.0,
    )
    assert "?after=dial&turn=" in dial.action


async def test_a_dial_without_record_or_locale_is_as_before() -> None:
    spec = load_flow_text(flow_text('a: {dial: "+3225550199", goto: b}\nb: {hangup: true}'), "d")
    [dial] = await FlowTester(spec).call(number="+32470000002").answer()
    assert isinstance(dial, Dial) and (dial.record, dial.language) == (False, "")


# -- each provider's document -----------------------------------------------------------------


RECORDED_DIAL = Dial("+3225550199", timeout=20, action=f"{INPUT_URL}?after=dial", record=True,
                     language="de-DE")  # fmt: skip


def test_telefoon_dial_takes_record_and_tts_language_as_its_call_resource_names_them() -> None:
    assert render_xml([RECORDED_DIAL], "telefoon") == (
        b"<?xml version='1.0' encoding='utf-8'?>\n<Response>"
        b'<Dial action="' + INPUT_URL.encode() + b'?after=dial" method="POST" timeout="20" '
        b'record="true" tts_language="de-DE"><Number>+3225550199</Number></Dial>'
        b"</Response>"
    )
    [node] = json.loads(render_json([RECORDED_DIAL], "telefoon"))
    assert (node["record"], node["tts_language"]) == (True, "de-DE")


def test_twilio_dial_records_from_answer_and_has_no_language() -> None:
    doc = render_xml([RECORDED_DIAL], "twilio")
    assert b'record="record-from-answer"' in doc and b"tts_language" not in doc
    assert b"record=" not in render_xml([Dial("+3225550199")], "twilio")


def test_vonage_records_a_dial_with_a_record_action_before_the_connect() -> None:
    record, connect = ncco.to_ncco([RECORDED_DIAL])
    assert record == {"action": "record", "beepStart": False}  # no end: until the call ends
    assert connect["action"] == "connect" and "language" not in connect
    assert [a["action"] for a in ncco.to_ncco([Dial("+3225550199")])] == ["connect"]


def test_a_dial_locale_falls_back_like_a_say() -> None:
    asked = Dial("+3225550199", language="nl-BE")
    [dial] = prepare([asked], provider="telefoon_voice", input_url="",
                     supported=TELEFOON_LOCALES, fallbacks={}, limits=Limits())  # fmt: skip
    assert isinstance(dial, Dial)
    assert (dial.language, dial.requested_language) == ("nl-NL", "nl-BE")
    japanese = [Dial("+3225550199", language="ja-JP")]
    with pytest.raises(RenderError, match="instruction 0 \\(Dial\\) language"):
        prepare(japanese, provider="telefoon_voice", input_url="",
                supported=TELEFOON_LOCALES, fallbacks={}, limits=Limits())  # fmt: skip


def test_a_conversation_test_checks_a_dial_record_and_locale() -> None:
    document = [Say("Dit gesprek wordt opgenomen.", "nl-BE"), RECORDED_DIAL]
    assert check_call({"dial": {"record": True, "tts_language": "de-DE"}}, document) is None
    assert check_call({"dial": {"record": False}}, document) == (
        "expected dial record = False, got True"
    )


# -- stored answers ---------------------------------------------------------------------------


def test_every_instruction_is_stored_and_read_back_equal() -> None:
    document = [
        Say("Hallo", "nl-BE", "Lotte", 2, ("nl-NL",), "nl-BE"),
        Play("https://cdn.example.com/a.wav", loop=3),
        Pause(2.5),
        Gather(frozenset({"dtmf", "speech"}), 1, "", 7, "fr-BE", ("oui", "non"),
               (Say("Oui ou non?", "fr-BE"), Pause(1)), f"{INPUT_URL}?after=gather&turn=x"),
        Record(60, "*", False, 3, f"{INPUT_URL}?after=record"),
        RECORDED_DIAL,
        Conference("room-1", start_on_enter=False, end_on_exit=True, muted=True, record=True),
        Redirect(f"{INPUT_URL}?after=gather&turn=x"),
        Hangup(),
    ]  # fmt: skip
    assert codec.loads(codec.dumps(document)) == document


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON"),
        ('{"kind": "Say"}', "must be a JSON list"),
        ('[{"kind": "Shout", "text": "hi"}]', r"\[0\]: expected an object whose kind"),
        ('[{"kind": "Say", "text": ""}]', r"\[0\]: Say: text is empty"),
    ],
)
def test_a_stored_answer_that_cannot_be_read_says_why(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        codec.loads(text)

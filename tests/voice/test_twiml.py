"""TwiML-style rendering (Telefoon Voice): exact documents, escaping, JSON form, limits."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

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
)
from convo.voice.twiml import (
    Limits,
    Node,
    RenderError,
    check_limits,
    parse_document,
    render_json,
    render_xml,
)

INPUT_URL = "https://bot.example.com/webhooks/telefoon_voice/voice/input"
HOSTILE = [
    "</Say><Dial>+900123</Dial>",
    "Tom & Jerry <3",
    "she said \"yes\" and 'no'",
    "]]><Hangup/><![CDATA[",
    "<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]>&a;",
]


def test_gather_with_nested_say_exact_xml() -> None:
    doc = render_xml(
        [
            Gather(
                num_digits=1,
                timeout=5,
                action=INPUT_URL,
                prompts=(Say("Druk 1 voor Nederlands.", language="nl-NL"), Pause(1)),
            ),
            Say("We hoorden niets.", language="nl-NL", loop=2),
            Hangup(),
        ]
    )
    assert doc == (
        b"<?xml version='1.0' encoding='utf-8'?>\n"
        b"<Response>"
        b'<Gather input="dtmf" action="' + INPUT_URL.encode() + b'" method="POST" '
        b'numDigits="1" finishOnKey="#" timeout="5">'
        b'<Say language="nl-NL">Druk 1 voor Nederlands.</Say><Pause length="1" />'
        b"</Gather>"
        b'<Say language="nl-NL" loop="2">We hoorden niets.</Say>'
        b"<Hangup />"
        b"</Response>"
    )


def test_every_verb_exact_xml() -> None:
    doc = render_xml(
        [
            Play("https://cdn.example.com/jingle.mp3"),
            Gather(
                input=frozenset({"speech", "dtmf"}),
                speech_language="fr-BE",
                hints=("oui", "non"),
                timeout=4.2,
            ),
            Record(max_length=60, beep=False, silence_timeout=3, action=INPUT_URL),
            Dial("+3225551234", caller_id="+32470000100", timeout=20, time_limit=600),
            Dial("sip:desk@pbx.example.com"),
            Conference("support", end_on_exit=True, record=True),
            Redirect("https://bot.example.com/webhooks/telefoon_voice/voice/answer"),
        ]
    ).decode()
    assert doc.split("\n", 1)[1] == (
        "<Response>"
        "<Play>https://cdn.example.com/jingle.mp3</Play>"
        '<Gather input="dtmf speech" finishOnKey="#" timeout="5" language="fr-BE" '
        'hints="oui,non" />'
        f'<Record action="{INPUT_URL}" method="POST" maxLength="60" finishOnKey="#" '
        'playBeep="false" timeout="3" />'
        '<Dial timeout="20" callerId="+32470000100" timeLimit="600">'
        "<Number>+3225551234</Number></Dial>"
        '<Dial timeout="30"><Sip>sip:desk@pbx.example.com</Sip></Dial>'
        '<Dial><Conference startConferenceOnEnter="true" endConferenceOnExit="true" '
        'muted="false" record="record-from-start">support</Conference></Dial>'
        '<Redirect method="POST">https://bot.example.com/webhooks/telefoon_voice/voice/answer'
        "</Redirect>"
        "</Response>"
    )


@pytest.mark.parametrize("text", HOSTILE)
def test_caller_text_stays_text_in_xml(text: str) -> None:
    doc = render_xml(
        [
            Say(text, language="nl-NL", voice=text),
            Gather(prompts=(Say(text),), action=f"{INPUT_URL}?said={text}", hints=("a",)),
            Conference(text),
        ]
    )
    root = ET.fromstring(doc)  # our own output
    assert root.tag == "Response"
    assert [child.tag for child in root] == ["Say", "Gather", "Dial"]  # nothing injected
    say, gather, dial = root
    assert say.text == text
    assert say.get("voice") == text
    assert gather.get("action") == f"{INPUT_URL}?said={text}"
    assert [c.tag for c in gather] == ["Say"]
    assert gather[0].text == text
    assert dial[0].tag == "Conference"
    assert dial[0].text == text
    assert b"<Dial>+900123" not in doc


def test_characters_xml_cannot_carry_are_dropped() -> None:
    text = "a\x00b\x0bc\ud800d\tend"
    doc = render_xml([Say(text)])
    root = ET.fromstring(doc)  # our own output
    assert root[0].text == "abcd\tend"


def test_json_form_carries_the_same_instructions() -> None:
    instructions = [
        Gather(
            num_digits=4,
            action=INPUT_URL,
            prompts=(Say("</Say><Dial>+900123</Dial> & ]]>", language="en-GB"),),
        ),
        Dial("+3225551234", caller_id="+32470000100"),
        Hangup(),
    ]
    doc = json.loads(render_json(instructions))
    assert doc == [
        {
            "verb": "Gather",
            "input": "dtmf",
            "action": INPUT_URL,
            "method": "POST",
            "numDigits": 4,
            "finishOnKey": "#",
            "timeout": 5,
            "children": [
                {"verb": "Say", "language": "en-GB", "text": "</Say><Dial>+900123</Dial> & ]]>"}
            ],
        },
        {
            "verb": "Dial",
            "timeout": 30,
            "callerId": "+32470000100",
            "children": [{"verb": "Number", "number": "+3225551234"}],
        },
        {"verb": "Hangup"},
    ]
    # Both forms read back to the same tree (attribute values compared in XML spelling).
    from_xml = parse_document(render_xml(instructions), "application/xml")
    from_json = parse_document(render_json(instructions), "application/json")

    def shape(nodes: list[Node]) -> list[object]:
        return [
            (n.verb, {k: n.get(k) for k in n.attrs}, n.text, shape(list(n.children))) for n in nodes
        ]

    assert shape(from_xml) == shape(from_json)


@pytest.mark.parametrize(
    ("body", "ctype", "message"),
    [
        (b"<Response><Say>", "application/xml", "not well-formed XML"),
        (b"<Document/>", "text/xml", "root is <Document>"),
        (b"{", "application/json", "not valid JSON"),
        (b'{"verb": "Say"}', "application/json", "must be a list"),
        (b'[{"text": "hi"}]', "application/json", r"\[0\]: expected an object"),
    ],
)
def test_parse_document_rejects_bad_documents(body: bytes, ctype: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_document(body, ctype)


LIMITS = Limits(languages=frozenset({"nl-NL", "fr-BE", "de-DE", "en-GB"}))


@pytest.mark.parametrize(
    ("instructions", "message"),
    [
        ([Say("x" * 4097)], r"instruction 0 \(Say\): Say text is 4097 characters; at most 4096"),
        ([Hangup(), Say("hi", language="es-ES")], r"instruction 1 \(Say\): Say language 'es-ES'"),
        ([Say("hi", loop=11)], "Say loop is 11; at most 10"),
        ([Gather(num_digits=33)], "numDigits is 33; allowed 1..32"),
        ([Gather(timeout=61)], "Gather timeout of 61 s is outside 1..60 s"),
        ([Gather(timeout=0.5)], None),  # rounds up to 1 s: fine
        ([Gather(prompts=(Say("a"), Say("b" * 5000)))], r"instruction 0 \(Gather\): prompt 1 "),
        ([Gather(hints=("yes, please",), input=frozenset({"speech"}))], "may not contain ','"),
        (
            [Gather(input=frozenset({"speech"}), speech_language="es-ES")],
            "speech language 'es-ES'",
        ),
        ([Pause(301)], "Pause of 301 s is outside 1..300 s"),
        ([Record(max_length=14401)], "Record maxLength of 14401 s"),
        ([Record(silence_timeout=61)], "Record silence timeout of 61 s"),
        ([Dial("0470 12 34 56")], "neither an E.164 number nor a sip: URI"),
        ([Dial("+3225551234", caller_id="bank")], "callerId 'bank' is not an E.164"),
        ([Dial("+3225551234", timeout=2)], "Dial timeout of 2 s is outside 5..600 s"),
        ([Dial("+3225551234", time_limit=14401)], "Dial timeLimit of 14401 s"),
        ([Hangup()] * 101, "101 instructions in one document; at most 100"),
    ],
)
def test_limits(instructions: list[object], message: str | None) -> None:
    if message is None:
        check_limits(instructions, LIMITS)
        return
    with pytest.raises(RenderError, match=message) as info:
        check_limits(instructions, LIMITS)
    if len(instructions) <= 2:
        assert info.value.index == len(instructions) - 1


def test_limits_without_languages_accept_any_locale() -> None:
    check_limits([Say("Hola", language="es-ES")], Limits())

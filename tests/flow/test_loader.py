"""Flow loader: a flow using every feature loads into the expected spec; every error kind is
found at load time with its exact ``file:line:col``; all errors of a file are reported
together."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path
from typing import Any

import pytest

from convo.bot import Bot
from convo.exceptions import Diagnostic, FlowError
from convo.flow.loader import (
    check_flow,
    discover,
    load_flow,
    load_flow_text,
    load_flows,
    parse_duration,
)
from convo.flow.spec import (
    Ask,
    Branch,
    Choose,
    Conference,
    Dial,
    FlowSpec,
    Handoff,
    Hangup,
    Record,
    Say,
    Text,
)

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parents[2]
HOOKS = {"dentist.slot_free", "dentist.book"}


Hooks = set[str] | dict[str, str] | None


def check(
    tmp_path: Path, text: str, *, hooks: Hooks = None, name: str = "flow.yaml"
) -> tuple[FlowSpec | None, list[Diagnostic]]:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return check_flow(path, hooks=hooks)


def found(tmp_path: Path, text: str, *, hooks: Hooks = None) -> list[str]:
    """Each diagnostic as ``line:col: severity: message (hint: ...)``; the file is checked."""
    path = tmp_path / "flow.yaml"
    _, diagnostics = check(tmp_path, text, hooks=hooks)
    assert all(str(d).startswith(f"{path}:") for d in diagnostics)
    return [str(d).removeprefix(f"{path}:") for d in diagnostics]


def only(tmp_path: Path, text: str, *, hooks: Hooks = None) -> str:
    """The one diagnostic ``text`` gives."""
    diagnostics = found(tmp_path, text, hooks=hooks)
    assert len(diagnostics) == 1, diagnostics
    return diagnostics[0]


# -- the valid, full flow ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def spec() -> FlowSpec:
    spec, diagnostics = check_flow(DATA / "appointment.yaml", hooks=HOOKS)
    assert diagnostics == []
    assert spec is not None
    return spec


def test_top_level(spec: FlowSpec) -> None:
    raw = (DATA / "appointment.yaml").read_bytes()
    assert spec.id == "appointment"
    assert spec.path == str(DATA / "appointment.yaml")
    assert spec.version == hashlib.sha256(raw).hexdigest()[:12]
    assert spec.description == "Confirm or move a dental appointment."
    assert spec.languages == ("nl", "en")
    assert spec.default_lang == "nl"
    assert spec.channels == ("sms", "voice")
    assert spec.start == "confirm"
    assert (spec.pos.line, spec.pos.col) == (1, 7)
    assert spec.voice["nl"].locale == "nl-NL"
    assert (spec.voice["en"].voice, spec.voice["en"].fallbacks) == ("Amy", ("en-US",))
    assert spec.params["patient"].required
    assert (spec.params["date"].type, spec.params["date"].required) == ("date", True)
    assert list(spec.steps) == [
        "confirm", "pick_date", "reminder", "menu", "hours", "done", "human", "stopped",
        "language", "call_desk", "voicemail", "team_room", "bye",
    ]  # fmt: skip
    assert sorted(name for name, _ in spec.hook_names()) == ["dentist.book", "dentist.slot_free"]


def test_anytime(spec: FlowSpec) -> None:
    stop, help_, menu = spec.anytime
    assert stop.keywords == {"en": ("STOP",), "nl": ("STOP", "AFMELDEN")}
    assert [(c.name, c.builtin) for c in stop.do] == [("opt_out", True)]
    assert stop.goto == "stopped"
    assert help_.goto is None
    assert help_.say is not None and help_.say.pick("en", "nl") == "Reply YES or NO."
    assert menu.goto == "menu"


def test_ask_step(spec: FlowSpec) -> None:
    step = spec.steps["confirm"]
    ask = step.verb
    assert isinstance(ask, Ask)
    assert ask.text.by_lang["en"].startswith("Hi {{ params.patient }}")
    assert ask.expect.kind == "yes_no"
    assert ask.save_as == "confirmed"
    assert len(ask.retry.reprompt) == 1
    assert ask.retry.reprompt[0].pick("nl", "nl") == "Antwoord alstublieft JA of NEE."
    assert (ask.retry.max_attempts, ask.retry.on_max_attempts) == (3, "human")
    assert (ask.retry.timeout, ask.retry.on_timeout) == (86400.0, "reminder")
    assert [(b.goto, b.condition) for b in step.then] == [
        ("done", "slots.confirmed"),
        ("pick_date", None),
    ]
    assert isinstance(step.then[0], Branch)
    assert (step.pos.line, step.pos.col) == (23, 3)
    pick = spec.steps["pick_date"].verb
    assert isinstance(pick, Ask)
    assert (pick.expect.kind, pick.validate, pick.save_as) == (
        "date",
        "dentist.slot_free",
        "new_date",
    )


def test_say_handoff_and_end(spec: FlowSpec) -> None:
    done = spec.steps["done"]
    assert isinstance(done.verb, Say)
    assert done.end
    assert [c.name for c in done.do] == ["dentist.book"]
    human = spec.steps["human"].verb
    assert isinstance(human, Handoff)
    assert human.queue == "reception"
    assert human.say is not None and human.say.pick("en", "nl") == "A colleague will reply soon."


def test_choose_steps(spec: FlowSpec) -> None:
    menu = spec.steps["menu"].verb
    assert isinstance(menu, Choose)
    assert [(o.key, o.goto) for o in menu.options][:2] == [("1", "hours"), ("2", "human")]
    assert menu.options[0].words == {"en": ("hours",), "nl": ("uren",)}
    language = spec.steps["language"]
    assert isinstance(language.verb, Choose)
    assert language.verb.text.mixed == (
        ("nl", "Voor Nederlands, druk 1."),
        ("en", "For English, press 2."),
    )
    assert [o.set_lang for o in language.verb.options] == ["nl", "en"]
    assert language.verb.save_as == "language"
    assert language.verb.retry.gather_timeout == 5.0
    assert language.then == (Branch("menu", language.then[0].pos),)


def test_voice_verbs(spec: FlowSpec) -> None:
    dial = spec.steps["call_desk"].verb
    assert isinstance(dial, Dial)
    assert (dial.to, dial.timeout, dial.on_fail) == ("+3225550100", 20.0, "voicemail")
    assert (dial.caller_id, dial.time_limit) == ("+3225550199", 3600.0)
    assert dial.text is not None and dial.text.pick("en", "nl") == "Connecting you."
    record = spec.steps["voicemail"].verb
    assert isinstance(record, Record)
    assert isinstance(record.consent, Text)
    assert record.consent.pick("nl", "nl") == "Dit gesprek wordt opgenomen."
    assert (record.max, record.save_as, record.finish_on_key, record.beep) == (
        90.0, "message", "*", False,
    )  # fmt: skip
    conference = spec.steps["team_room"].verb
    assert isinstance(conference, Conference)
    assert conference.room == "dentist-{{ params.patient }}"
    assert (conference.record, conference.muted, conference.start_on_enter) == (True, True, True)
    bye = spec.steps["bye"]
    assert isinstance(bye.verb, Hangup)
    assert bye.verb.text is not None
    assert bye.verb.text.pick("en", "nl") == "Thanks for your message {{ contact.name }}."


def test_text_forms(tmp_path: Path) -> None:
    spec, diagnostics = check(
        tmp_path,
        """
        flow: forms
        languages: [en, nl]
        channels: [sms, voice]
        start: hi
        steps:
          hi:
            say:
              sms: "Hi by text"
              voice: {en: "Hi by phone", nl: "Hallo aan de lijn"}
            media: ["https://example.com/{{ contact.number }}.png"]
            goto: bye
          bye:
            hangup: true
        """,
    )
    assert diagnostics == []
    assert spec is not None
    say = spec.steps["hi"].verb
    assert isinstance(say, Say)
    assert say.text.pick("nl", "en", "sms") == "Hi by text"
    assert say.text.pick("nl", "en", "voice") == "Hallo aan de lijn"
    assert spec.steps["hi"].media == ("https://example.com/{{ contact.number }}.png",)
    hangup = spec.steps["bye"].verb
    assert isinstance(hangup, Hangup)
    assert hangup.text is None


def test_example_flows_of_the_repository_load() -> None:
    flows = load_flows([ROOT / "flows"])
    assert {"appointment", "faq", "survey"} <= set(flows)


def test_load_flow_text_and_load_flow() -> None:
    text = (DATA / "appointment.yaml").read_text(encoding="utf-8")
    spec = load_flow_text(text, "mem.yaml", hooks=HOOKS)
    assert (spec.id, spec.path) == ("appointment", "mem.yaml")
    assert load_flow(DATA / "appointment.yaml", hooks=HOOKS).version == spec.version


# -- one test per error kind --------------------------------------------------------------------


def test_yaml_syntax_error(tmp_path: Path) -> None:
    message = only(tmp_path, "flow: x\nsteps:\n  a: [1, 2\n")
    assert message.startswith("4:1: error: YAML syntax error:")


def test_several_documents_are_a_syntax_error(tmp_path: Path) -> None:
    assert only(tmp_path, "flow: a\n---\nflow: b\n") == (
        "2:1: error: YAML syntax error: expected a single document in the stream, "
        "but found another document"
    )


def test_texts_are_not_yaml_booleans_or_numbers(tmp_path: Path) -> None:
    """The Norway problem: ``no`` is a language, ``yes`` a word and ``1`` a key."""
    spec, diagnostics = check(
        tmp_path,
        """
        flow: norway
        languages: [no, en]
        start: s
        steps:
          s:
            choose:
              text: {no: "Svar 1", en: "Reply 1"}
              options: [{key: 1, words: [yes, on], goto: s}]
        """,
    )
    assert diagnostics == []
    assert spec is not None
    assert spec.languages == ("no", "en")
    menu = spec.steps["s"].verb
    assert isinstance(menu, Choose)
    assert (menu.options[0].key, menu.options[0].words["no"]) == ("1", ("yes", "on"))


def test_empty_file_and_not_a_mapping(tmp_path: Path) -> None:
    assert only(tmp_path, "# nothing\n").startswith("1:1: error: empty flow file")
    assert only(tmp_path, "- a\n- b\n") == (
        "1:1: error: flow file: expected a mapping (flow:, languages:, start:, steps:), "
        "found a list"
    )


def test_duplicate_key(tmp_path: Path) -> None:
    message = only(
        tmp_path,
        """
        flow: dup
        languages: [en]
        start: a
        steps:
          a:
            say: "one"
            say: "two"
            end: true
        """,
    )
    assert message.startswith("7:5: error: duplicate key 'say' (first at line 6)")


def test_unknown_keys_with_did_you_mean(tmp_path: Path) -> None:
    messages = found(
        tmp_path,
        """
        flow: typo
        languages: [en]
        start: a
        chanels: [sms]
        steps:
          a:
            sya: "hi"
            ask: {text: "Name?", expcet: text}
            end: true
        """,
    )
    assert messages == [
        "4:1: error: unknown key 'chanels' in flow file (hint: did you mean 'channels'?)",
        "7:5: error: unknown key 'sya' in steps.a (hint: did you mean 'say'?)",
        "8:26: error: unknown key 'expcet' in steps.a.ask (hint: did you mean 'expect'?)",
    ]


def test_wrong_value_types(tmp_path: Path) -> None:
    messages = found(
        tmp_path,
        """
        flow: types
        languages: en
        start: a
        steps:
          a:
            ask:
              text: [1, 2]
              max_attempts: three
              timeout: soon
            end: maybe
        """,
    )
    assert messages == [
        "7:14: error: steps.a.ask.text segment: expected a mapping, found a number (1)",
        "7:17: error: steps.a.ask.text segment: expected a mapping, found a number (2)",
        "8:21: error: steps.a.ask.max_attempts: expected a whole number, found the text 'three'",
        "9:16: error: steps.a.ask.timeout: bad duration 'soon': use seconds or e.g. 90s, 30m, "
        "24h, 2d, 1h30m",
        "10:10: error: steps.a.end: expected true or false, found the text 'maybe'",
    ]


def test_missing_required_keys(tmp_path: Path) -> None:
    messages = found(
        tmp_path,
        """
        flow: missing
        steps:
          a:
            ask: {expect: text}
        """,
    )
    assert messages == [
        "1:1: error: flow file: missing required key 'languages'",
        "1:1: error: flow file: missing required key 'start'",
        "4:10: error: steps.a.ask: missing required key 'text'",
    ]


def test_unknown_step_with_closest_name(tmp_path: Path) -> None:
    message = only(
        tmp_path,
        """
        flow: refs
        languages: [en]
        start: ask
        steps:
          ask:
            ask: {text: "Ok?", expect: yes_no, on_max_attempts: finsh, max_attempts: 2}
            goto: finish
          finish:
            say: "Bye"
            end: true
        """,
    )
    assert message == "6:57: error: unknown step 'finsh' (hint: did you mean 'finish'?)"


def test_start_not_a_step(tmp_path: Path) -> None:
    messages = found(
        tmp_path,
        """
        flow: start
        languages: [en]
        start: welcom
        steps:
          welcome: {say: "Hi", end: true}
        """,
    )
    assert messages == ["3:8: error: start: unknown step 'welcom' (hint: did you mean 'welcome'?)"]


def test_unreachable_step(tmp_path: Path) -> None:
    message = only(
        tmp_path,
        """
        flow: islands
        languages: [en]
        start: a
        anytime:
          - when: {regex: "^stop$"}
            goto: b
        steps:
          a: {say: "A", end: true}
          b: {say: "B", end: true}
          c: {say: "C", goto: b}
        """,
    )
    assert message.startswith("10:3: error: step 'c' is unreachable")


def test_missing_translation_and_undeclared_language(tmp_path: Path) -> None:
    messages = found(
        tmp_path,
        """
        flow: langs
        languages: [nl, en, fr]
        start: a
        steps:
          a:
            say: {nl: "Hallo", de: "Hallo", en: "Hello"}
            end: true
        """,
    )
    assert messages == [
        "6:10: error: steps.a.say: missing translation for fr "
        '(hint: add fr: "..." or use one plain text for every language)',
        "6:24: warning: steps.a.say: language 'de' is not declared in languages "
        "(hint: declared: nl, en, fr)",
    ]


def test_template_syntax_error_maps_to_the_file_line(tmp_path: Path) -> None:
    messages = found(
        tmp_path,
        """
        flow: tpl
        languages: [en]
        start: a
        steps:
          a:
            say: |
              Hello {{ contact.name }},
              your code is {{ code }
            end: true
          b:
            say: "Bad {% if %}"
            end: true
        """,
    )
    assert messages[0].startswith("8:7: error: template syntax error: unexpected '}'")
    assert messages[1].startswith("10:3: error: step 'b' is unreachable")
    assert messages[2].startswith("11:10: error: template syntax error: Expected an expression")


def test_undeclared_variables(tmp_path: Path) -> None:
    messages = found(
        tmp_path,
        """
        flow: vars
        languages: [en]
        start: a
        params:
          patient: {required: true}
        slots: [booking]
        steps:
          a:
            ask: {text: "Hi {{ patient }} {{ booking }} {{ lang }}", save_as: day}
            then:
              - if: "day == 'monday' and colour"
                goto: b
              - goto: b
          b:
            say: "{{ params.patiant }} {{ slots.dy }} {{ slots.day }} {{ slots.get('x') }}"
            end: true
        """,
    )
    assert messages == [
        "9:24: error: undeclared variable 'patient' in template "
        "(hint: params are used as params.patient)",
        "11:34: error: undeclared variable 'colour' in condition "
        "(hint: declare it under slots: or save it with save_as)",
        "15:14: error: unknown param 'params.patiant' in template (hint: did you mean 'patient'?)",
        "15:35: error: unknown slot 'slots.dy' in template (hint: did you mean 'day'?)",
    ]


def test_unknown_expect_type_and_invalid_regex(tmp_path: Path) -> None:
    messages = found(
        tmp_path,
        """
        flow: expect
        languages: [en]
        start: a
        steps:
          a:
            ask: {text: "Ok?", expect: yesno}
            goto: b
          b:
            ask: {text: "Code?", expect: {type: regex, pattern: "[0-9"}}
            end: true
        """,
    )
    assert messages == [
        "6:32: error: steps.a.ask.expect: unknown expect type 'yesno' (hint: did you mean "
        "'yes_no'? expect types: yes_no, number, digits, date, time, choice, email, text, regex, "
        "media)",
        "9:57: error: steps.b.ask.expect.pattern: invalid regular expression: "
        "unterminated character set at position 0",
    ]


def test_retry_targets_only_in_ask_or_choose(tmp_path: Path) -> None:
    message = only(
        tmp_path,
        """
        flow: retry
        languages: [en]
        start: a
        steps:
          a:
            say: "Hi"
            on_timeout: a
            end: true
        """,
    )
    assert message == (
        "7:5: error: on_timeout is only allowed in ask or choose (hint: move it under ask: or "
        "choose:)"
    )


def test_voice_verb_needs_the_voice_channel(tmp_path: Path) -> None:
    message = only(
        tmp_path,
        """
        flow: sms_only
        languages: [en]
        start: a
        steps:
          a:
            dial: {to: "+3225550100"}
            end: true
        """,
    )
    assert message == (
        "6:5: error: steps.a: dial is a voice-only verb, but channels are [sms] "
        "(hint: add voice to channels)"
    )


def test_record_without_consent(tmp_path: Path) -> None:
    messages = found(
        tmp_path,
        """
        flow: rec
        languages: [en]
        channels: [voice]
        start: a
        steps:
          a:
            record: {text: "Speak after the beep."}
            goto: b
          b:
            record: {text: "Again.", consent: false}
            end: true
        """,
    )
    assert len(messages) == 2
    assert messages[0].startswith(
        "7:5: error: steps.a.record: recording needs consent (GDPR): add consent: true or a "
        "consent text"
    )
    assert messages[1].startswith("10:39: error: steps.b.record: recording needs consent (GDPR)")


def test_set_lang_to_an_undeclared_language(tmp_path: Path) -> None:
    message = only(
        tmp_path,
        """
        flow: lang
        languages: [nl, fr]
        channels: [voice]
        start: a
        steps:
          a:
            choose:
              text: [{lang: nl, text: "Druk 1"}, {lang: fr, text: "Tapez 2"}]
              options:
                - {key: "1", set_lang: nl}
                - {key: "2", set_lang: fe}
            goto: a
        """,
    )
    assert message == (
        "11:32: error: steps.a.choose.options[1].set_lang: language 'fe' is not declared in "
        "languages (hint: declared: nl, fr)"
    )


def test_dead_end(tmp_path: Path) -> None:
    message = only(
        tmp_path,
        """
        flow: dead
        languages: [en]
        start: a
        steps:
          a:
            say: "Hello?"
        """,
    )
    assert message == (
        "5:3: error: step 'a' is a dead end: it does not wait for an answer, go on or end "
        "(hint: add end: true or goto)"
    )


def test_option_without_goto_and_duplicate_option_keys(tmp_path: Path) -> None:
    messages = found(
        tmp_path,
        """
        flow: menu
        languages: [en]
        start: menu
        steps:
          menu:
            choose:
              text: "1 or 2?"
              options:
                - {key: "1", goto: one}
                - {key: "2"}
                - {key: "1", words: [first], goto: one}
          one: {say: "One", end: true}
        """,
    )
    assert messages == [
        "10:11: error: steps.menu: option 2 has no goto and the step has no then "
        "(hint: add goto: STEP to the option, or then: to the step)",
        "11:17: error: steps.menu.choose.options[2]: duplicate option key '1' (first at line 9) "
        "(hint: give each option its own key)",
    ]


# -- hooks ----------------------------------------------------------------------------------------

HOOKED = """
flow: hooks
languages: [en]
start: a
steps:
  a:
    ask: {text: "Day?", expect: date, validate: agenda.free}
    do: [agenda.book, opt_out]
    end: true
"""


def test_hooks_checked_against_the_bot(tmp_path: Path) -> None:
    message = only(tmp_path, HOOKED, hooks={"agenda.is_free", "agenda.book"})
    assert message == (
        "6:49: error: unknown hook 'agenda.free': the bot registers no such action or validator "
        "(hint: did you mean 'agenda.is_free'?)"
    )
    spec, diagnostics = check(tmp_path, HOOKED, hooks={"agenda.free", "agenda.book"})
    assert diagnostics == []
    assert spec is not None


def test_an_action_is_not_a_validator_nor_the_reverse(tmp_path: Path) -> None:
    bot = Bot("agenda")

    @bot.action("agenda.free")
    async def free(conversation: Any) -> None: ...

    @bot.validator("agenda.book")
    async def book(conversation: Any, value: Any) -> bool: ...

    assert bot.hook_names() == {"agenda.free": "action", "agenda.book": "validator"}
    assert found(tmp_path, HOOKED, hooks=bot.hook_names()) == [
        "6:49: error: hook 'agenda.free' is registered as an action, but validate: needs a "
        "validator (hint: register it with @bot.validator, or use it under do:)",
        "7:10: error: hook 'agenda.book' is registered as a validator, but do: needs an "
        "action (hint: register it with @bot.action, or use it under validate:)",
    ]
    # Registered as both, a name is fine in either place.
    both = {"agenda.free": "any", "agenda.book": "any"}
    assert found(tmp_path, HOOKED, hooks=both) == []


def test_unknown_filters_tests_and_includes_fail_at_load(tmp_path: Path) -> None:
    messages = found(
        tmp_path,
        """
        flow: filters
        languages: [en]
        start: a
        steps:
          a:
            ask: {text: "Number?", expect: number, save_as: n}
            then:
              - if: "n | nofilter"
                goto: b
              - goto: c
          b:
            say: "{{ n | string | uper }}"
            end: true
          c:
            say: "{% if n is nosuchtest %}x{% endif %}{{ contact.shoe_size }}"
            end: true
          d:
            say: "{% include 'other.txt' %}"
            end: true
        """,
    )
    hint = "(hint: Jinja2: {{ name }} for values, {% if ... %}...{% endif %} for logic)"
    assert messages == [
        "8:13: error: condition does not compile: No filter named 'nofilter'. "
        "(hint: a Jinja2 expression, e.g. slots.confirmed or score >= 9)",
        f"12:10: error: template syntax error: No filter named 'uper'. (did you mean 'upper'?) "
        f"{hint}",
        # Jinja2 would only fail on this one when the if runs:
        f"15:10: error: template syntax error: No test named 'nosuchtest'. {hint}",
        "17:3: error: step 'd' is unreachable: no goto leads to it from start or anytime "
        "(hint: add a goto to it, or remove it)",
        "18:10: error: template syntax error: a flow text cannot include, extend or import "
        f"other templates {hint}",
    ]


def test_languages_must_be_codes_and_slots_names(tmp_path: Path) -> None:
    messages = found(
        tmp_path,
        """
        flow: types
        languages: "nl, en"
        start: a
        steps:
          a:
            ask: {text: "Day?", expect: date, save_as: 7}
            end: true
        """,
    )
    assert messages == [
        "2:12: error: languages: 'nl, en' is not a language code (hint: a YAML list: [nl, en])",
        "6:48: error: steps.a.ask.save_as: '7' is not a valid slot name (hint: letters, "
        "digits and _, not starting with a digit (e.g. new_date))",
    ]


def test_unknown_contact_fields(tmp_path: Path) -> None:
    message = only(
        tmp_path,
        """
        flow: contact
        languages: [en]
        start: a
        steps:
          a:
            say: "Hi {{ contact.name }} ({{ contact.number }}), {{ contact.nmae }}"
            end: true
        """,
    )
    assert message == (
        "6:60: error: unknown contact field 'contact.nmae' in template (hint: did you mean 'name'?)"
    )


def test_unchecked_hooks_give_one_warning(tmp_path: Path) -> None:
    spec, diagnostics = check(tmp_path, HOOKED)
    assert spec is not None  # a warning does not stop loading
    assert [str(d) for d in diagnostics] == [
        f"{tmp_path / 'flow.yaml'}:6:49: warning: hook names are unchecked: agenda.free, "
        "agenda.book (pass --bot to check)"
    ]


# -- all errors at once -------------------------------------------------------------------------


def test_five_different_errors_are_all_reported(tmp_path: Path) -> None:
    _, diagnostics = check(
        tmp_path,
        """
        flow: five
        languages: [en, nl]
        start: welcome
        steps:
          welcome:
            ask:
              text: {en: "Hi {{ nam }}"}
              expect: yesno
            then:
              - if: "slots.ok"
                goto: finsh
          island:
            say: "Hello"
            end: true
        """,
    )
    assert [(d.line, d.col, d.message.split(":")[0]) for d in diagnostics] == [
        (7, 13, "steps.welcome.ask.text"),  # missing translation for nl
        (7, 25, "undeclared variable 'nam' in template"),
        (8, 15, "steps.welcome.ask.expect"),  # unknown expect type
        (10, 14, "unknown slot 'slots.ok' in condition"),
        (11, 15, "unknown step 'finsh'"),
        (12, 3, "step 'island' is unreachable"),
    ]
    assert all(d.severity == "error" for d in diagnostics)
    with pytest.raises(FlowError) as info:
        load_flow(tmp_path / "flow.yaml")
    assert len(info.value.diagnostics) == 6
    assert str(info.value).count("\n") == 5


# -- files and directories ----------------------------------------------------------------------


def test_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    spec, diagnostics = check_flow(tmp_path / "nope.yaml")
    assert spec is None
    assert str(diagnostics[0]).startswith(f"{tmp_path / 'nope.yaml'}:1:1: error: cannot read")
    (tmp_path / "latin.yaml").write_bytes(b"flow: x\nsay: caf\xe9\n")
    _, diagnostics = check_flow(tmp_path / "latin.yaml")
    assert [(d.line, d.message) for d in diagnostics] == [(2, "flow file is not UTF-8 text")]


def test_discover_skips_conversation_tests_and_hidden_dirs(tmp_path: Path) -> None:
    for name in (
        "a.yaml", "b.yml", "a.test.yaml", "b.test.yml", "test_c.yaml", "notes.txt",
        "sub/d.yaml", ".hidden/e.yaml", "__pycache__/f.yaml",
    ):  # fmt: skip
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("flow: x\n", encoding="utf-8")
    names = [p.relative_to(tmp_path).as_posix() for p in discover([tmp_path])]
    assert names == ["a.yaml", "b.yml", "sub/d.yaml"]
    assert discover([tmp_path / "a.yaml", tmp_path / "a.test.yaml", tmp_path]) == [
        tmp_path / "a.yaml",
        tmp_path / "b.yml",
        tmp_path / "sub" / "d.yaml",
    ]
    assert discover([tmp_path / "missing.yaml"]) == [tmp_path / "missing.yaml"]


def test_load_flows_rejects_duplicate_ids_and_collects_all_errors(tmp_path: Path) -> None:
    flow = 'flow: {id}\nlanguages: [en]\nstart: a\nsteps:\n  a: {{say: "{say}", end: true}}\n'
    (tmp_path / "one.yaml").write_text(flow.format(id="same", say="1"), encoding="utf-8")
    (tmp_path / "two.yaml").write_text(flow.format(id="same", say="2"), encoding="utf-8")
    (tmp_path / "three.yaml").write_text(flow.format(id="other", say="{{ x }}"), encoding="utf-8")
    with pytest.raises(FlowError) as info:
        load_flows([tmp_path])
    messages = [str(d) for d in info.value.diagnostics]
    assert messages[0].startswith(f"{tmp_path / 'three.yaml'}:5:16: error: undeclared variable")
    assert messages[1] == (
        f"{tmp_path / 'two.yaml'}:1:7: error: flow id 'same' is used by both "
        f"{tmp_path / 'one.yaml'} and {tmp_path / 'two.yaml'} "
        "(hint: give each flow file its own flow: id)"
    )
    assert len(messages) == 2


# -- durations ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(90, 90.0), (1.5, 1.5), ("90", 90.0), ("90s", 90.0), ("30m", 1800.0), ("24h", 86400.0),
     ("2d", 172800.0), ("1h30m", 5400.0), (" 1h 30m ", 5400.0), ("0s", 0.0)],
)  # fmt: skip
def test_parse_duration(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "soon", "5 minutes", "h", "-5", "-5s", "inf", True, None])
def test_parse_duration_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="bad duration"):
        parse_duration(value)


def test_zero_timeout_is_an_error(tmp_path: Path) -> None:
    message = only(
        tmp_path,
        """
        flow: zero
        languages: [en]
        start: a
        steps:
          a:
            ask: {text: "Hi", timeout: 0s, on_timeout: a}
        """,
    )
    assert message == "6:32: error: steps.a.ask.timeout: must be longer than 0 seconds"

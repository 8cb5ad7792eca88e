"""Sandboxed Jinja2 templates: rendering, errors, sandbox, load-time analysis, filters."""

from __future__ import annotations

import datetime as dt

import pytest

from convo.exceptions import FlowRuntimeError
from convo.flow.templates import TEMPLATES, Templates, context_lang


def test_renders_params_slots_and_contact() -> None:
    context = {
        "params": {"patient": "An"},
        "slots": {"confirmed": True},
        "confirmed": True,
        "contact": {"name": "An", "lang": "nl"},
    }
    source = "Hi {{ params.patient }}{% if confirmed %}, see you{% endif %} ({{ contact.lang }})"
    assert TEMPLATES.render(source, context) == "Hi An, see you (nl)"


def test_sms_text_is_not_html_escaped() -> None:
    assert TEMPLATES.render("R&D {{ who }}", {"who": "<Tom & Jerry>"}) == "R&D <Tom & Jerry>"


def test_trailing_newline_is_dropped() -> None:
    assert TEMPLATES.render("Bye\n", {}) == "Bye"


def test_undefined_variable_is_an_error_naming_the_template() -> None:
    with pytest.raises(FlowRuntimeError, match=r"template 'Hi \{\{ nam \}\}' failed: 'nam' is"):
        TEMPLATES.render("Hi {{ nam }}", {"name": "An"})


def test_long_templates_are_abbreviated_in_errors() -> None:
    source = "x" * 200 + "{{ missing }}"
    with pytest.raises(FlowRuntimeError) as info:
        TEMPLATES.render(source, {})
    assert "…" in str(info.value)
    assert len(str(info.value)) < 150


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ params.__class__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ slots.update.__self__ }}",
    ],
)
def test_sandbox_blocks_escapes(source: str) -> None:
    with pytest.raises(FlowRuntimeError, match=r"unsafe|undefined"):
        TEMPLATES.render(source, {"params": {}, "slots": {}})


def test_user_text_in_a_slot_is_never_evaluated() -> None:
    said = "{{ ''.__class__.__mro__ }}"
    assert TEMPLATES.render("You said: {{ answer }}", {"answer": said}) == f"You said: {said}"


def test_type_errors_become_flow_runtime_errors() -> None:
    with pytest.raises(FlowRuntimeError, match="failed"):
        TEMPLATES.render("{{ n + 'x' }}", {"n": 1})


def test_evaluate_conditions() -> None:
    assert TEMPLATES.evaluate("score >= 9", {"score": 10}) is True
    assert TEMPLATES.evaluate("score >= 9", {"score": 3}) is False
    assert TEMPLATES.evaluate("slots.confirmed", {"slots": {"confirmed": False}}) is False
    # A slot not collected yet reads as None (falsy), so ``if: slots.x`` just fails over.
    assert TEMPLATES.evaluate("slots.confirmed", {"slots": {}}) is None


def test_evaluate_errors_become_flow_runtime_errors() -> None:
    with pytest.raises(FlowRuntimeError, match="expression 'score >=' failed"):
        TEMPLATES.evaluate("score >= ", {"score": 1})
    with pytest.raises(FlowRuntimeError, match="unsafe"):
        TEMPLATES.evaluate("''.__class__.__mro__", {})


def test_compiled_templates_are_reused() -> None:
    templates = Templates()
    templates.render("Hello {{ name }}", {"name": "An"})
    assert templates.render("Hello {{ name }}", {"name": "Bo"}) == "Hello Bo"
    assert list(templates._templates) == ["Hello {{ name }}"]  # one compile for both


def test_syntax_error_gives_template_line_and_message() -> None:
    assert TEMPLATES.syntax_error("fine {{ x }}") is None
    line, message = TEMPLATES.syntax_error("one\ntwo {{ x }\nthree") or (0, "")
    assert line == 2
    assert "unexpected '}'" in message


def test_expression_error() -> None:
    assert TEMPLATES.expression_error("slots.a and score > 3") is None
    assert "unexpected" in (TEMPLATES.expression_error("a ===") or "")
    assert "after the expression" in (TEMPLATES.expression_error("a b") or "")


def test_undeclared_names() -> None:
    source = "{{ params.x }}{% set y = 1 %}{{ y }}{% for i in range(2) %}{{ i }}{{ z }}{% endfor %}"
    assert TEMPLATES.undeclared(source) == {"params", "z"}
    assert TEMPLATES.undeclared("{{ broken ") == set()
    assert TEMPLATES.undeclared_in_expression("slots.ok and score > 3") == {"slots", "score"}


def test_attribute_uses() -> None:
    uses = TEMPLATES.attribute_uses("{{ params.patient }} {{ slots['day'] }} {{ a.b.c }}")
    assert uses == {("params", "patient"), ("slots", "day"), ("a", "b")}
    assert TEMPLATES.attribute_uses("slots.ok or params.vip", expression=True) == {
        ("slots", "ok"),
        ("params", "vip"),
    }


def test_context_lang_prefers_the_contact() -> None:
    assert context_lang({"contact": {"lang": "fr"}, "lang": "nl"}) == "fr"
    assert context_lang({"contact": {"number": "+32"}, "lang": "nl"}) == "nl"
    assert context_lang({}) == "en"


# -- filters (delegating to convo.flow.i18n) -------------------------------------------------


def test_date_filter_follows_the_contact_language() -> None:
    i18n = pytest.importorskip("convo.flow.i18n")
    day = dt.date(2026, 12, 1)
    nl = TEMPLATES.render("{{ d | date }}", {"d": day, "contact": {"lang": "nl"}})
    en = TEMPLATES.render("{{ d | date }}", {"d": day, "lang": "en"})
    assert nl == i18n.format_date(day, "nl", fmt="long")
    assert en == i18n.format_date(day, "en", fmt="long")
    assert nl != en
    short = TEMPLATES.render("{{ d | date('short') }}", {"d": day, "lang": "nl"})
    assert short == i18n.format_date(day, "nl", fmt="short")


def test_time_and_number_filters() -> None:
    i18n = pytest.importorskip("convo.flow.i18n")
    context = {"t": dt.time(14, 30), "n": 1234.5, "contact": {"lang": "nl"}}
    assert TEMPLATES.render("{{ t | time }}", context) == i18n.format_time(dt.time(14, 30), "nl")
    assert TEMPLATES.render("{{ n | number }}", context) == i18n.format_number(1234.5, "nl")
    assert TEMPLATES.render("{{ n | number(2) }}", context) == i18n.format_number(
        1234.5, "nl", decimals=2
    )
    assert TEMPLATES.render("{{ n | number }}", context) != TEMPLATES.render(
        "{{ n | number }}", {"n": 1234.5, "lang": "en"}
    )


@pytest.mark.parametrize("source", ["hi", "hi\n", "hi\n\n", "R&D <b> 'x'", "a\nb", "", "50%"])
def test_plain_texts_render_exactly_as_jinja2_would(source: str) -> None:
    templates = Templates()
    assert templates.render(source, {}) == templates.env.from_string(source).render()

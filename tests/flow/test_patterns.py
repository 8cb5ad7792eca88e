"""Flow patterns: a time budget per match, a length cap, and a warning for risky patterns."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from convo.flow import patterns
from convo.flow.engine import Engine
from convo.flow.loader import check_flow, load_flow_text
from convo.models import InboundMessage
from convo.store.memory import MemoryStore
from tests.cli.test_cli import convo

LINE = "+3200000000"
ALICE = "+32470000001"

# Exponential on a run of "a" without the "b": plain `re` spends seconds on 34 characters,
# about 2.6 times longer with each further two.
CATASTROPHIC = "(a|aa)+b"
SLOW_TEXT = "a" * 34

FLOW = """
flow: plate
languages: [en]
start: plate
anytime:
  - when: {regex: "(x|xx)+y"}
    goto: bye
steps:
  plate:
    ask:
      text: "Your code?"
      expect: {type: regex, pattern: "(a|aa)+b"}
      save_as: code
      reprompt: ["A code like aab, please."]
      max_attempts: 5
      on_max_attempts: bye
    then: bye
  bye:
    say: "Bye."
    end: true
"""


async def replies(engine: Engine, text: str) -> list[str]:
    message = InboundMessage(line=LINE, sender=ALICE, text=text)
    return [m.text for m in await engine.handle(message)]


async def test_a_catastrophic_pattern_runs_out_of_time_counts_as_no_match_and_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    spec = load_flow_text(FLOW, "plate.yaml")
    engine = Engine({"plate": spec}, MemoryStore(), lines={LINE: "plate"})
    assert await replies(engine, "hello") == ["Your code?"]
    caplog.set_level(logging.WARNING, logger="convo.flow.patterns")
    for _ in range(2):
        began = time.monotonic()
        # The anytime pattern is tried first, then the step's: each gets its own budget.
        assert await replies(engine, SLOW_TEXT) == ["A code like aab, please."]
        # Two budgets of 0.1 s and what a loaded machine adds; `re` takes seconds.
        assert time.monotonic() - began < 1.5
    timed_out = [r.getMessage() for r in caplog.records if r.name == "convo.flow.patterns"]
    assert len([m for m in timed_out if CATASTROPHIC in m]) == 1, timed_out
    assert len([m for m in timed_out if "(x|xx)+y" in m]) <= 1, timed_out
    assert await replies(engine, "aab") == ["Bye."]  # a normal answer still matches


def test_a_match_that_runs_out_of_its_budget_is_no_match() -> None:
    # CPU time, not wall time: a busy machine stretches the wall clock, never the work done
    # (without the budget, these two matches take seconds of CPU).
    began = time.process_time()
    assert patterns.fullmatch(CATASTROPHIC, SLOW_TEXT) is None
    assert patterns.search(CATASTROPHIC, SLOW_TEXT, ignore_case=True) is False
    assert patterns.MATCH_BUDGET == 0.1
    assert time.process_time() - began < 1.0


def test_text_longer_than_the_cap_matches_no_pattern() -> None:
    long_text = "7" * patterns.MAX_INPUT
    assert patterns.fullmatch(r"\d+", long_text) == long_text
    assert patterns.fullmatch(r"\d+", long_text + "7") is None
    assert patterns.search("7", long_text) is True
    assert patterns.search("7", long_text + "7") is False


@pytest.mark.parametrize(
    ("pattern", "text", "found"),
    [
        (r"[A-Z]{2}\d{4}", "AB1234", True),
        (r"[A-Z]{2}\d{4}", "A12345", False),
        (r"^stop$", "STOP", True),  # anytime patterns ignore case
        (r"\bhelp\b", "please help me", True),
        (r"(?P<n>\d+)-(?P=n)", "12-12", True),
        (r"\w+@\w+\.be", "jan@bakker.be", True),
        (r"caf\u00e9", "CAFÉ", True),
    ],
)
def test_the_patterns_flows_use_behave_as_under_re(pattern: str, text: str, found: bool) -> None:
    import re

    assert patterns.search(pattern, text, ignore_case=True) is found
    assert (re.search(pattern, text, re.IGNORECASE) is not None) is found


@pytest.mark.parametrize(
    ("pattern", "part"),
    [
        ("(a+)+b", "(a+)+"),
        ("(a*)*", "(a*)*"),
        ("(a|aa)+", "(a|aa)+"),
        (r"^(\w+\s?)+$", r"(\w+\s?)+"),
        (r"x(?:\d+)*y", r"(?:\d+)*"),
        (r"(b(a+)+)", "(a+)+"),
    ],
)
def test_nested_quantifiers_are_a_backtracking_risk(pattern: str, part: str) -> None:
    risk = patterns.backtracking_risk(pattern)
    assert risk is not None and risk[1] == part
    assert pattern[risk[0] :].startswith(part)


@pytest.mark.parametrize(
    "pattern",
    [
        r"[A-Z]{2}\d{4}",
        r"^stop$",
        r"(\d{1,3}\.)+\d{1,3}",  # each repetition ends with a dot: one way to cut
        r"(ab+)+",
        r"(yes|no)+",
        r"(?>a+)+",  # atomic: gives nothing back
        r"a++",
        r"\d+-\d+",
        r"[0-9",  # invalid: compile_error's business
    ],
)
def test_patterns_without_nested_quantifiers_are_no_risk(pattern: str) -> None:
    assert patterns.backtracking_risk(pattern) is None


def test_the_loader_warns_at_the_risky_part_and_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "plate.yaml"
    path.write_text(FLOW)
    spec, diagnostics = check_flow(path, hooks=set())
    assert spec is not None
    assert [(d.severity, d.line, d.col) for d in diagnostics] == [
        ("warning", 6, 20),  # (x|xx)+ inside "(x|xx)+y"
        ("warning", 12, 39),  # (a|aa)+ inside "(a|aa)+b"
    ]
    assert "anytime[0].when.regex: '(x|xx)+' has nested quantifiers" in diagnostics[0].message
    assert FLOW.splitlines()[11][38:].startswith("(a|aa)+b")


def test_validate_prints_the_warning_with_its_position_and_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "plate.yaml"
    path.write_text(FLOW)
    result = convo("validate", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{path}:12:39: warning: steps.plate.ask.expect.pattern: '(a|aa)+'" in result.stdout
    assert "error" not in result.stdout

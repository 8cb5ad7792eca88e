"""Testing flows without HTTP: conversation-test files and a Python API.

**Conversation-test files** are YAML, one test per document (``---``), each a mapping with
``flow:`` and ``turns:``, in files named ``*.test.yaml`` or ``test_*.yaml``. ``convo test
PATH`` runs them, and pytest collects them (``convo.pytest_plugin``, registered by the
package), one item per document, so a failure names the file, the document and the turn.

Turn kinds: ``bot`` checks the next reply (exact text, ``{contains}``, ``{matches}``; on a
call ``{say, language, gather, dial, record, hangup}``), ``user`` sends one (text, or on a call
``{digits}``, ``{speech}``, ``{silence: true}``), ``end: true`` checks the conversation ended.
A ``bot:`` turn with no value checks that nothing more was said.
convo adds ``wait: 24h`` (time passes; due step timeouts fire), ``slots: {name: value}`` and
``step: name`` (check the conversation's state). If the first turn is ``bot``, the flow is
started by the bot (outbound, with ``params``); if it is ``user``, that message opens it.

A document's ``flow:`` is a path relative to the test file, or a flow id found beside the
test file or in ``flows.paths`` of the configuration (``convo test --config``, else
``$CONVO_CONFIG``, else ``./convo.toml``, else ``./flows``): see :class:`CaseResolver`.

**Python API** for a bot's own tests::

    tester = FlowTester.load("flows/appointment.yaml", bot=bot)
    chat = tester.dialogue(lang="nl", params={"patient": "An", "date": "2026-12-01"})
    assert "Hallo An" in (await chat.start())[0]
    await chat.send("ja")
    assert chat.ended and chat.slots["confirmed"] is True
"""

from __future__ import annotations

from convo.testing.cases import (
    ConversationCase,
    TestFileError,
    TurnSpec,
    discover_tests,
    is_test_file,
    load_cases,
)
from convo.testing.dialogue import (
    TEST_CONTACT,
    TEST_LINE,
    CallDialogue,
    Dialogue,
    FakeClock,
    FlowTester,
)
from convo.testing.runner import (
    CaseResolver,
    CaseResult,
    Summary,
    check_reply,
    run_case,
    run_files,
)

__all__ = [
    "TEST_CONTACT",
    "TEST_LINE",
    "CallDialogue",
    "CaseResolver",
    "CaseResult",
    "ConversationCase",
    "Dialogue",
    "FakeClock",
    "FlowTester",
    "Summary",
    "TestFileError",
    "TurnSpec",
    "check_reply",
    "discover_tests",
    "is_test_file",
    "load_cases",
    "run_case",
    "run_files",
]

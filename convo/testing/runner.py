"""Running conversation tests: each document against a fresh :class:`FlowTester`."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convo.bot import Bot, load_bot
from convo.exceptions import ConvoError
from convo.flow.catalog import FlowCatalog, flow_file, is_path_ref, resolve
from convo.models import ConversationStatus, Session
from convo.testing.cases import (
    ConversationCase,
    TestFileError,
    discover_tests,
    load_cases,
)
from convo.testing.dialogue import TEST_CONTACT, FlowTester
from convo.voice.instructions import Conference, Dial, Gather, Hangup, Instruction, Record, Say


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: ConversationCase
    failure: str | None = None

    @property
    def passed(self) -> bool:
        return self.failure is None


class CaseResolver:
    """Finds a test document's flow file and bot.

    A document's ``flow:`` is a path relative to the test file (it ends in .yaml/.yml or has
    a ``/``), or a flow id: looked up first among the flow files beside the test file (its
    own folder, not below), then in ``flows.paths`` of the configuration ``config`` (else
    ``$CONVO_CONFIG``, else ``./convo.toml``, else ``./flows``). Ids match the files'
    ``flow:`` keys, never their names, and a conversation-test file is never a flow, so a
    test named like the flow it tests finds the flow. See :mod:`convo.flow.catalog`.

    Catalogs are built once per folder and once for the configuration, so one resolver
    serves a whole run. The configuration's catalog is built when an id is first not found
    beside a test, or at once when ``config`` is given, so that a wrong ``--config`` is an
    error (ConfigError) even when every flow sits beside its tests.
    """

    def __init__(self, config: str | Path | None = None) -> None:
        self._config = config
        self._beside: dict[Path, FlowCatalog] = {}
        self._configured = FlowCatalog.from_config(config) if config is not None else None

    def flow_path(self, case: ConversationCase) -> Path:
        """The flow file of ``case``; ConvoError saying why there is none."""
        folder = case.file.parent
        if is_path_ref(case.flow):
            return flow_file(folder / case.flow)
        beside = self._beside.get(folder)
        if beside is None:
            beside = self._beside[folder] = FlowCatalog([folder], recursive=False)
        found = beside.get(case.flow)
        if found is not None:
            return found
        if self._configured is None:
            self._configured = FlowCatalog.from_config(self._config)
        return resolve(case.flow, [beside, self._configured])

    def bot(self, case: ConversationCase, flow_path: Path) -> Bot | None:
        if case.bot:
            ref = case.bot
            local = case.file.parent / ref.partition(":")[0]
            return load_bot(
                str(local) + ref[len(ref.partition(":")[0]) :] if local.exists() else ref
            )
        beside = flow_path.parent / "bot.py"
        return load_bot(beside) if beside.is_file() else None


def check_reply(expected: Any, got: str) -> bool:
    """Whether an SMS reply ``got`` satisfies a ``bot:`` expectation."""
    if isinstance(expected, str):
        return got == expected
    if isinstance(expected, dict):
        if "contains" in expected and str(expected["contains"]) not in got:
            return False
        return not ("matches" in expected and not re.search(str(expected["matches"]), got))
    return False


class _Failure(Exception):
    """A turn did not go as written; the message says expected and got."""


class _SmsDriver:
    """SMS turns: replies queue up, each ``bot`` turn checks the next one."""

    def __init__(self, tester: FlowTester, case: ConversationCase) -> None:
        contact = case.contact
        self.chat = tester.dialogue(
            number=str(contact.get("number", TEST_CONTACT)),
            lang=contact.get("lang"),
            name=contact.get("name"),
            params=case.params,
            timezone=contact.get("timezone"),
            fields=contact.get("fields"),
        )
        self.pending: list[str] = []
        self.started = False

    async def play(self, kind: str, value: Any) -> None:
        if not self.started and kind == "bot":
            self.pending += await self.chat.start()
        self.started = True
        if kind == "user":
            self.pending += await self.chat.send("" if value is None else str(value))
        elif kind == "wait":
            self.pending += await self.chat.wait(value)
        elif kind == "bot" and value is None:  # `bot:` alone: nothing more was said
            if self.pending:
                raise _Failure(f"expected no reply, got {self.pending[0]!r}")
        elif kind == "bot":
            got = self.pending.pop(0) if self.pending else None
            if got is None or not check_reply(value, got):
                shown = "no reply" if got is None else repr(got)
                raise _Failure(f"expected {value!r}, got {shown}")


class _CallDriver:
    """Call turns: each input gets one document; ``bot`` turns check the latest one."""

    def __init__(self, tester: FlowTester, case: ConversationCase) -> None:
        contact = case.contact
        self.chat = tester.call(
            number=str(contact.get("number", TEST_CONTACT)),
            lang=contact.get("lang"),
            name=contact.get("name"),
            params=case.params,
            timezone=contact.get("timezone"),
            fields=contact.get("fields"),
        )
        self.document: list[Instruction] | None = None

    async def play(self, kind: str, value: Any) -> None:
        if self.document is None:
            self.document = await self.chat.answer()
        if kind == "user":
            self.document = await self._input(value)
        elif kind == "wait":
            raise _Failure("wait: is for SMS flows; on a call use user: {silence: true}")
        elif kind == "bot":
            problem = check_call(value or {}, self.document)
            if problem:
                raise _Failure(problem)

    async def _input(self, value: Any) -> list[Instruction]:
        chat = self.chat
        if isinstance(value, dict):
            if value.get("silence"):
                return await chat.silence()
            if "digits" in value:
                return await chat.press(str(value["digits"]))
            if "speech" in value:
                return await chat.speak(str(value["speech"]))
            if "dial" in value:
                return await chat.dial_result(str(value["dial"]))
            if "recording" in value:
                return await chat.recording(value["recording"] or None)
            raise _Failure(f"a call input is digits, speech, silence, dial or recording: {value!r}")
        text = "" if value is None else str(value)
        if text and set(text) <= DTMF:
            return await chat.press(text)
        return await chat.speak(text) if text else await chat.silence()


DTMF = frozenset("0123456789*#")


def _says(document: Sequence[Instruction]) -> list[Say]:
    out: list[Say] = []
    for item in document:
        if isinstance(item, Say):
            out.append(item)
        elif isinstance(item, Gather):
            out.extend(p for p in item.prompts if isinstance(p, Say))
    return out


_VERBS: dict[str, type] = {
    "gather": Gather,
    "dial": Dial,
    "record": Record,
    "conference": Conference,
    "hangup": Hangup,
}
_FIELDS = {
    "gather": {"digits": "num_digits", "timeout": "timeout", "finish_on_key": "finish_on_key"},
    "dial": {
        "to": "target",
        "timeout": "timeout",
        "caller_id": "caller_id",
        "record": "record",
        "tts_language": "language",
    },
    "record": {"max": "max_length", "finish_on_key": "finish_on_key", "beep": "beep"},
    "conference": {"room": "room", "record": "record", "muted": "muted"},
}


def check_call(expected: Mapping[str, Any], document: Sequence[Instruction]) -> str | None:
    """Why ``document`` (one webhook's instructions) fails a voice ``bot:`` expectation, or
    None when it holds."""
    shown = ", ".join(_show(i) for i in document)
    says = _says(document)
    if "say" in expected:
        says = [s for s in says if check_reply(expected["say"], s.text)]
        if not says:
            return f"expected a Say {expected['say']!r}, got [{shown}]"
    if "language" in expected and not any(s.language == expected["language"] for s in says):
        langs = sorted({s.language for s in says})
        return f"expected a Say in {expected['language']}, got languages {langs}"
    for name, cls in _VERBS.items():
        if name not in expected:
            continue
        want = expected[name]
        found = [i for i in document if isinstance(i, cls)]
        if want is False:
            if found:
                return f"expected no {cls.__name__}, got [{shown}]"
            continue
        if not found:
            return f"expected a {cls.__name__}, got [{shown}]"
        if isinstance(want, dict):
            item = found[0]
            for key, value in want.items():
                attr = _FIELDS.get(name, {}).get(key)
                if attr is None:
                    return f"unknown {name} field {key!r} (known: {', '.join(_FIELDS[name])})"
                if getattr(item, attr) != value:
                    return f"expected {name} {key} = {value!r}, got {getattr(item, attr)!r}"
    unknown = set(expected) - {"say", "language", *_VERBS}
    if unknown:
        return f"unknown voice check(s) {', '.join(sorted(unknown))}"
    return None


def _show(item: Instruction) -> str:
    if isinstance(item, Say):
        return f"Say({item.text!r}, {item.language})"
    if isinstance(item, Gather):
        inner = ", ".join(_show(p) for p in item.prompts)
        return f"Gather(digits={item.num_digits}, [{inner}])"
    return type(item).__name__


def _check_state(kind: str, value: Any, session: Session | None) -> None:
    if kind == "end":
        ended = session is not None and session.status in (
            ConversationStatus.ENDED,
            ConversationStatus.HANDOFF,
        )
        if bool(value) != ended:
            state = session.status.value if session else "not started"
            raise _Failure(f"expected end: {value}, got {state}")
    elif kind == "slots":
        slots = session.slots if session else {}
        for name, want in dict(value).items():
            if slots.get(name) != want:
                raise _Failure(
                    f"expected slot {name} = {want!r}, got {slots.get(name, '(unset)')!r}"
                )
    elif kind == "step":
        step = session.step if session else None
        if step != value:
            raise _Failure(f"expected step {value!r}, got {step!r}")


async def run_case(case: ConversationCase, resolver: CaseResolver | None = None) -> CaseResult:
    """Run one test document; the failure text names the file, document, turn and line.
    ``resolver`` finds its flow (default: a new one with the default configuration)."""
    if case.error:
        return CaseResult(case, case.error)
    resolver = resolver or CaseResolver()
    try:
        flow_path = resolver.flow_path(case)
        bot = resolver.bot(case, flow_path)
        tester = FlowTester.load(flow_path, bot=bot)
    except ConvoError as exc:
        return CaseResult(case, f"{case.where}: cannot load: {exc}")
    driver = _SmsDriver(tester, case) if case.channel == "sms" else _CallDriver(tester, case)
    for number, turn in enumerate(case.turns, start=1):
        at = f"{case.where}, turn {number} (line {turn.line})"
        try:
            if turn.kind in ("end", "slots", "step"):
                if isinstance(driver, _CallDriver) and driver.document is None:
                    await driver.play("bot", {})  # state checks on a call need it answered
                _check_state(turn.kind, turn.value, driver.chat.session)
            else:
                await driver.play(turn.kind, turn.value)
        except _Failure as failure:
            return CaseResult(case, f"{at}: {failure}")
        except ConvoError as exc:
            return CaseResult(case, f"{at}: {exc}")
    return CaseResult(case)


def run_files(
    paths: Sequence[str | Path], *, config: str | Path | None = None
) -> Iterator[CaseResult]:
    """Run every test document in the given files/directories, in order. Flow ids are
    looked up beside each test file, then in ``flows.paths`` of ``config`` (see
    :class:`CaseResolver`)."""
    resolver = CaseResolver(config)
    for path in discover_tests(paths):
        try:
            cases = load_cases(path)
        except TestFileError as exc:
            yield CaseResult(
                ConversationCase(path, 0, 1, "?", "sms", {}, {}, None, ()), failure=str(exc)
            )
            continue
        for case in cases:
            yield asyncio.run(run_case(case, resolver))


@dataclass
class Summary:
    passed: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.passed} passed, {self.failed} failed"

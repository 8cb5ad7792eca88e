"""Testing flows without HTTP: conversation-test files and a Python API.

**Conversation-test files** (DESIGN §7) are YAML, one test per document (``---``), named
``*.test.yaml`` or ``test_*.yaml``. ``convo test PATH`` runs them, and pytest collects them
(this module is a pytest plugin, registered by the package), one item per document, so a
failure names the file, the document and the turn.

Turn kinds: ``bot`` checks the next reply (exact text, ``{contains}``, ``{matches}``; on a
call ``{say, language, gather, dial, record, hangup}``), ``user`` sends one (text, or on a call
``{digits}``, ``{speech}``, ``{silence: true}``), ``end: true`` checks the conversation ended.
A ``bot:`` turn with no value checks that nothing more was said.
convo adds ``wait: 24h`` (time passes; due step timeouts fire), ``slots: {name: value}`` and
``step: name`` (check the conversation's state). If the first turn is ``bot``, the flow is
started by the bot (outbound, with ``params``); if it is ``user``, that message opens it.

**Python API** for a bot's own tests::

    tester = FlowTester.load("flows/appointment.yaml", bot=bot)
    chat = tester.dialogue(lang="nl", params={"patient": "An", "date": "2026-12-01"})
    assert "Hallo An" in (await chat.start())[0]
    await chat.send("ja")
    assert chat.ended and chat.slots["confirmed"] is True
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from convo.bot import Bot, load_bot
from convo.exceptions import ConvoError
from convo.flow.engine import Engine
from convo.flow.loader import discover, load_flow, parse_duration
from convo.flow.spec import FlowSpec
from convo.models import (
    Channel,
    Contact,
    ConversationKey,
    ConversationStatus,
    InboundMessage,
    Session,
)
from convo.store.memory import MemoryStore

TEST_LINE = "+3200000000"
TEST_CONTACT = "+32470000001"
TEST_START = 1_800_000_000.0  # a fixed "now" (2027-01-15) so tests never depend on the clock


class FakeClock:
    """A clock that only moves when told to (``wait`` turns)."""

    def __init__(self, start: float = TEST_START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def is_test_file(path: Path) -> bool:
    name = path.name
    return name.endswith((".test.yaml", ".test.yml")) or (
        name.startswith("test_") and name.endswith((".yaml", ".yml"))
    )


def discover_tests(paths: Sequence[str | Path]) -> list[Path]:
    """Conversation-test files in the given files and directories (recursively)."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(f for f in sorted(p.rglob("*.y*ml")) if is_test_file(f))
        else:
            found.append(p)
    return found


# -- the Python API -------------------------------------------------------------------------


class Dialogue:
    """One conversation with a flow, driven turn by turn. After every call, ``session``
    holds the conversation's stored state (None before it starts)."""

    def __init__(
        self, tester: FlowTester, contact: Contact, params: Mapping[str, Any], channel: Channel
    ) -> None:
        self.tester = tester
        self.contact = contact
        self.key = ConversationKey(TEST_LINE, channel, contact.number)
        self.params = dict(params)
        self.replies: list[str] = []  # every reply so far, in order
        self.session: Session | None = None

    @property
    def engine(self) -> Engine:
        return self.tester.engine

    async def start(self) -> list[str]:
        """The bot opens the conversation (outbound start with the params)."""
        out = await self.engine.start(
            self.key,
            self.tester.spec.id,
            params=self.params,
            lang=self.contact.lang,
            name=self.contact.name,
        )
        return await self._after([m.text for m in out])

    async def send(self, text: str) -> list[str]:
        """The contact sends ``text``; returns the bot's replies to it."""
        message = InboundMessage(line=TEST_LINE, sender=self.key.contact, text=text)
        out = await self.engine.handle(message)
        return await self._after([m.text for m in out])

    async def wait(self, duration: str | float) -> list[str]:
        """Let ``duration`` pass (``"24h"``); returns what due step timeouts said."""
        self.tester.clock.now += parse_duration(duration)
        fired = await self.engine.fire_due()
        return await self._after([m.text for batch in fired for m in batch])

    @property
    def ended(self) -> bool:
        return self.session is not None and self.session.status is ConversationStatus.ENDED

    @property
    def step(self) -> str | None:
        return self.session.step if self.session else None

    @property
    def slots(self) -> dict[str, Any]:
        return self.session.slots if self.session else {}

    async def _after(self, texts: list[str]) -> list[str]:
        self.replies.extend(texts)
        self.session = await self.engine.store.get_session(self.key)
        return texts


class FlowTester:
    """Runs one flow on an in-memory store with a fake clock, for tests."""

    def __init__(self, spec: FlowSpec, *, bot: Bot | None = None) -> None:
        self.spec = spec
        self.clock = FakeClock()
        self.store = MemoryStore()
        self._contacts: dict[str, Contact] = {}
        self.engine = Engine(
            {spec.id: spec},
            self.store,
            lines={TEST_LINE: spec.id},
            bot=bot,
            clock=self.clock,
            contacts=self._lookup,
        )

    async def _lookup(self, number: str) -> Contact | None:
        return self._contacts.get(number)

    @classmethod
    def load(cls, path: str | Path, *, bot: Bot | None = None) -> FlowTester:
        hooks = bot.hook_names() if bot else None
        return cls(load_flow(path, hooks=hooks), bot=bot)

    def dialogue(
        self,
        *,
        number: str = TEST_CONTACT,
        lang: str | None = None,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        channel: Channel = "sms",
    ) -> Dialogue:
        contact = Contact(number, lang, name)
        self._contacts[number] = contact
        return Dialogue(self, contact, params or {}, channel)


# -- conversation-test files ----------------------------------------------------------------


class TestFileError(ConvoError):
    """A conversation-test file cannot be read (says file:line)."""


@dataclass(frozen=True, slots=True)
class TurnSpec:
    kind: str  # bot | user | end | wait | slots | step
    value: Any
    line: int


@dataclass(frozen=True, slots=True)
class ConversationCase:
    """One document of a conversation-test file."""

    file: Path
    index: int  # 1-based document number
    line: int
    flow: str
    channel: Channel
    contact: Mapping[str, Any]
    params: Mapping[str, Any]
    bot: str | None
    turns: tuple[TurnSpec, ...]
    name: str = ""

    @property
    def title(self) -> str:
        return self.name or f"doc{self.index}-{Path(self.flow).stem}"

    @property
    def where(self) -> str:
        return f"{self.file}: document {self.index} ({self.title})"


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: ConversationCase
    failure: str | None = None

    @property
    def passed(self) -> bool:
        return self.failure is None


TURN_KINDS = ("bot", "user", "end", "wait", "slots", "step")
CASE_KEYS = {"flow", "channel", "contact", "params", "turns", "bot", "name"}


def load_cases(path: str | Path) -> list[ConversationCase]:
    """Read every document of a conversation-test file; ``TestFileError`` on bad input."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except (OSError, yaml.YAMLError) as exc:
        raise TestFileError(f"{path}: {exc}") from exc
    cases: list[ConversationCase] = []
    for index, node in enumerate((n for n in nodes if n is not None), start=1):
        where = f"{path}:{node.start_mark.line + 1}"
        data = yaml.SafeLoader(text).construct_document(node)
        if not isinstance(data, dict) or "flow" not in data:
            raise TestFileError(f"{where}: a test document is a mapping with flow: and turns:")
        unknown = set(data) - CASE_KEYS
        if unknown:
            raise TestFileError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        turns_node = next((v for k, v in node.value if k.value == "turns"), None)
        if not isinstance(turns_node, yaml.SequenceNode):
            raise TestFileError(f"{where}: turns: must be a list")
        turns = []
        for item, raw in zip(turns_node.value, data["turns"], strict=True):
            line = item.start_mark.line + 1
            if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in TURN_KINDS:
                raise TestFileError(
                    f"{path}:{line}: a turn is one of {', '.join(TURN_KINDS)}, got {raw!r}"
                )
            kind, value = next(iter(raw.items()))
            turns.append(TurnSpec(kind, value, line))
        channel = data.get("channel", "sms")
        if channel not in ("sms", "voice"):
            raise TestFileError(f"{where}: channel must be sms or voice, got {channel!r}")
        cases.append(
            ConversationCase(
                file=path,
                index=index,
                line=node.start_mark.line + 1,
                flow=str(data["flow"]),
                channel=channel,
                contact=data.get("contact") or {},
                params=data.get("params") or {},
                bot=data.get("bot"),
                turns=tuple(turns),
                name=str(data.get("name", "")),
            )
        )
    return cases


class _Resolver:
    """Finds a case's flow (a path, or an id near the test file or in ./flows) and bot."""

    def __init__(self) -> None:
        self._by_dir: dict[Path, dict[str, FlowSpec]] = {}

    def flow_path(self, case: ConversationCase) -> Path:
        for candidate in (case.file.parent / case.flow, Path(case.flow)):
            if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
                return candidate
        for directory in (case.file.parent, Path("flows")):
            for path in discover([directory]) if directory.is_dir() else []:
                if path.stem == case.flow or _flow_id(path) == case.flow:
                    return path
        raise TestFileError(f"{case.where}: no flow {case.flow!r} near the test file or in ./flows")

    def bot(self, case: ConversationCase, flow_path: Path) -> Bot | None:
        if case.bot:
            ref = case.bot
            local = case.file.parent / ref.partition(":")[0]
            return load_bot(
                str(local) + ref[len(ref.partition(":")[0]) :] if local.exists() else ref
            )
        beside = flow_path.parent / "bot.py"
        return load_bot(beside) if beside.is_file() else None


def _flow_id(path: Path) -> str | None:
    try:
        head = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    return str(head.get("flow")) if isinstance(head, dict) else None


def check_reply(expected: Any, got: str) -> bool:
    """Whether an SMS reply ``got`` satisfies a ``bot:`` expectation."""
    if isinstance(expected, str):
        return got == expected
    if isinstance(expected, dict):
        if "contains" in expected and str(expected["contains"]) not in got:
            return False
        return not ("matches" in expected and not re.search(str(expected["matches"]), got))
    return False


async def run_case(case: ConversationCase, resolver: _Resolver | None = None) -> CaseResult:
    """Run one test document; the failure text names the file, document, turn and line."""
    resolver = resolver or _Resolver()
    try:
        flow_path = resolver.flow_path(case)
        bot = resolver.bot(case, flow_path)
        tester = FlowTester.load(flow_path, bot=bot)
    except ConvoError as exc:
        return CaseResult(case, f"{case.where}: cannot load: {exc}")
    if case.channel == "voice":
        return CaseResult(case, f"{case.where}: voice conversation tests are not supported yet")
    contact = case.contact
    chat = tester.dialogue(
        number=str(contact.get("number", TEST_CONTACT)),
        lang=contact.get("lang"),
        name=contact.get("name"),
        params=case.params,
    )
    pending: list[str] = []
    started = False
    for number, turn in enumerate(case.turns, start=1):
        at = f"{case.where}, turn {number} (line {turn.line})"
        try:
            if not started and turn.kind == "bot":
                pending += await chat.start()
            started = True
            if turn.kind == "user":
                pending += await chat.send(str(turn.value))
            elif turn.kind == "wait":
                pending += await chat.wait(turn.value)
            elif turn.kind == "bot" and turn.value is None:  # `bot:` alone: no reply expected
                if pending:
                    return CaseResult(case, f"{at}: expected no reply, got {pending[0]!r}")
            elif turn.kind == "bot":
                got = pending.pop(0) if pending else None
                if got is None or not check_reply(turn.value, got):
                    shown = "no reply" if got is None else repr(got)
                    return CaseResult(case, f"{at}: expected {turn.value!r}, got {shown}")
            elif turn.kind == "end":
                ended = chat.session is not None and chat.session.status in (
                    ConversationStatus.ENDED,
                    ConversationStatus.HANDOFF,
                )
                if bool(turn.value) != ended:
                    state = chat.session.status.value if chat.session else "not started"
                    return CaseResult(case, f"{at}: expected end: {turn.value}, got {state}")
            elif turn.kind == "slots":
                for name, value in dict(turn.value).items():
                    if chat.slots.get(name) != value:
                        got_value = chat.slots.get(name, "(unset)")
                        return CaseResult(
                            case, f"{at}: expected slot {name} = {value!r}, got {got_value!r}"
                        )
            elif turn.kind == "step" and chat.step != turn.value:
                return CaseResult(case, f"{at}: expected step {turn.value!r}, got {chat.step!r}")
        except ConvoError as exc:
            return CaseResult(case, f"{at}: {exc}")
    return CaseResult(case)


def run_files(paths: Sequence[str | Path]) -> Iterator[CaseResult]:
    """Run every test document in the given files/directories, in order."""
    resolver = _Resolver()
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

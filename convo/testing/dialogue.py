"""Driving one flow turn by turn, on an in-memory store with a clock that moves on demand.

:class:`FlowTester` runs a flow; :meth:`FlowTester.dialogue` gives an SMS :class:`Dialogue`
and :meth:`FlowTester.call` a phone :class:`CallDialogue` whose methods return the call
instructions each webhook would get (before any provider renders them).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from convo.bot import Bot
from convo.flow.calls import After, CallRunner
from convo.flow.engine import Engine
from convo.flow.loader import load_flow, parse_duration
from convo.flow.spec import FlowSpec
from convo.models import (
    CallEvent,
    CallStatus,
    Channel,
    Contact,
    ConversationKey,
    ConversationStatus,
    InboundMessage,
    Session,
)
from convo.store.memory import MemoryStore
from convo.voice.instructions import Instruction

TEST_LINE = "+3200000000"
TEST_CONTACT = "+32470000001"
TEST_START = 1_800_000_000.0  # a fixed "now" (2027-01-15): tests never depend on the clock


class FakeClock:
    """A clock that only moves when told to (``wait`` turns)."""

    def __init__(self, start: float = TEST_START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


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


TEST_INPUT_URL = "https://convo.test/webhooks/test/voice/input"


class CallDialogue:
    """One phone call with a flow. Each method returns the instructions that webhook would
    get back; ``documents`` keeps them all, in order."""

    def __init__(
        self, tester: FlowTester, contact: Contact, params: Mapping[str, Any], outbound: bool
    ) -> None:
        self.tester = tester
        self.contact = contact
        self.key = ConversationKey(TEST_LINE, "voice", contact.number)
        self.params = dict(params)
        self.outbound = outbound
        self.runner = CallRunner(tester.engine)
        self.documents: list[list[Instruction]] = []
        self.session: Session | None = None
        self._calls = 0

    def _event(self, **fields: Any) -> CallEvent:
        return CallEvent(
            provider="test",
            call_id=f"call-{self._calls}",
            line=TEST_LINE,
            caller=self.key.contact,
            direction="outbound" if self.outbound else "inbound",
            **fields,
        )

    async def answer(self) -> list[Instruction]:
        """The call is answered (we called them when the dialogue is outbound)."""
        self._calls += 1
        if self.outbound:
            await self.runner.prepare_outbound(
                self.key, self.tester.spec.id, params=self.params, lang=self.contact.lang
            )
        return await self._after(await self.runner.answer(self._event(), TEST_INPUT_URL))

    async def press(self, digits: str) -> list[Instruction]:
        return await self._input(self._event(digits=digits), "gather")

    async def speak(self, speech: str, confidence: float = 0.9) -> list[Instruction]:
        return await self._input(self._event(speech=speech, confidence=confidence), "gather")

    async def silence(self) -> list[Instruction]:
        """No input before the gather's timeout."""
        return await self._input(self._event(), "gather")

    async def dial_result(self, status: str = "completed") -> list[Instruction]:
        """The dialled party answered (``completed``) or not (busy, no-answer, failed)."""
        return await self._input(self._event(dial_status=CallStatus(status)), "dial")

    async def recording(self, url: str | None, duration: float = 5.0) -> list[Instruction]:
        event = self._event(recording_url=url, recording_duration=duration if url else None)
        return await self._input(event, "record")

    async def hang_up(self) -> None:
        """The caller hangs up: the final status closes the conversation."""
        await self.runner.status(self._event(status=CallStatus.COMPLETED))
        self.session = await self.tester.engine.store.get_session(self.key)

    @property
    def ended(self) -> bool:
        return self.session is not None and self.session.status is ConversationStatus.ENDED

    @property
    def slots(self) -> dict[str, Any]:
        return self.session.slots if self.session else {}

    async def _input(self, event: CallEvent, after: After) -> list[Instruction]:
        return await self._after(await self.runner.input(event, TEST_INPUT_URL, after))

    async def _after(self, document: list[Instruction]) -> list[Instruction]:
        self.documents.append(document)
        self.session = await self.tester.engine.store.get_session(self.key)
        return document


class FlowTester:
    """Runs one flow on an in-memory store with a fake clock, for tests. The clock starts
    at ``now`` (default: the fixed :data:`TEST_START`, so tests never depend on the date;
    ``convo chat`` gives the real time, so "tomorrow" is tomorrow)."""

    def __init__(self, spec: FlowSpec, *, bot: Bot | None = None, now: float = TEST_START) -> None:
        self.spec = spec
        self.clock = FakeClock(now)
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
    def load(
        cls, path: str | Path, *, bot: Bot | None = None, now: float = TEST_START
    ) -> FlowTester:
        hooks = bot.hook_names() if bot else None
        return cls(load_flow(path, hooks=hooks), bot=bot, now=now)

    def dialogue(
        self,
        *,
        number: str = TEST_CONTACT,
        lang: str | None = None,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        channel: Channel = "sms",
        timezone: str | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> Dialogue:
        """A conversation with a contact (its record: what templates see as ``contact``)."""
        contact = Contact(number, lang, name, timezone, dict(fields or {}))
        self._contacts[number] = contact
        return Dialogue(self, contact, params or {}, channel)

    def call(
        self,
        *,
        number: str = TEST_CONTACT,
        lang: str | None = None,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        outbound: bool | None = None,
        timezone: str | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> CallDialogue:
        """A phone call; ``outbound`` (default: when params are given) means we called."""
        contact = Contact(number, lang, name, timezone, dict(fields or {}))
        self._contacts[number] = contact
        if outbound is None:
            outbound = bool(params)
        return CallDialogue(self, contact, params or {}, outbound)

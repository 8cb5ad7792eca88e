"""convo.erasure over a real store and real adapters: which provider copies are deleted,
which are kept (provider cannot delete, or is not configured), what a bad number does, and
what is logged. The Telefoon SMS simulator serves on loopback; Vonage is never called (it
cannot delete messages)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp.test_utils import TestServer

from convo.erasure import ErasureReport, erase_contact
from convo.models import ConversationKey, Direction, MessageRecord, MessageStatus, Session
from convo.providers.base import DeletesMessages, SmsProvider
from convo.providers.registry import create_provider
from convo.simulators.telefoon_sms import TelefoonSmsSimulator
from convo.store.memory import MemoryStore

PHONE = "+32470123456"
LINE = "+3225550120"
SECRET = "my appointment at the clinic"


def record(n: int, provider: str, pid: str, direction: Direction) -> MessageRecord:
    return MessageRecord(
        id=f"m-{n}",
        direction=direction,
        line=LINE,
        contact=PHONE,
        text=SECRET,
        status=MessageStatus.RECEIVED if direction is Direction.INBOUND else MessageStatus.SENT,
        provider=provider,
        provider_message_id=pid,
    )


@pytest.fixture
async def simulator() -> AsyncIterator[tuple[TelefoonSmsSimulator, str]]:
    sim = TelefoonSmsSimulator(api_key="tk")
    server = TestServer(sim.app, host="127.0.0.1")
    await server.start_server()
    yield sim, str(server.make_url("")).rstrip("/")
    await server.close()


async def test_copies_are_deleted_where_the_provider_can_and_listed_where_not(
    simulator: tuple[TelefoonSmsSimulator, str], caplog: pytest.LogCaptureFixture
) -> None:
    sim, url = simulator
    at_telefoon = sim.inbound_record(PHONE, LINE, SECRET)["id"]
    store = MemoryStore()
    await store.save_turn(Session(ConversationKey(LINE, "sms", PHONE), "f", "1", "ask", "en"))
    assert await store.add_inbound(record(1, "telefoon_sms", at_telefoon, Direction.INBOUND))
    assert await store.add_inbound(record(2, "vonage", "v-2", Direction.INBOUND))
    await store.add_outbound([record(3, "retired", "r-3", Direction.OUTBOUND)])
    async with httpx.AsyncClient() as client:
        telefoon = create_provider("telefoon_sms", {"api_key": "tk", "base_url": url,
                                                    "allow_unsigned": True}, client)  # fmt: skip
        vonage = create_provider("vonage", {"api_key": "k", "api_secret": "s",
                                            "allow_unsigned": True}, client)  # fmt: skip
        providers: dict[str, SmsProvider] = {"telefoon_sms": telefoon, "vonage": vonage}
        assert isinstance(telefoon, DeletesMessages)
        assert not isinstance(vonage, DeletesMessages)
        with caplog.at_level(logging.DEBUG, logger="convo"):
            report = await erase_contact(store, providers, "0470 12 34 56")

    assert report == ErasureReport(
        number=PHONE,
        sessions=1,
        messages=3,
        deleted=(("telefoon_sms", at_telefoon),),
        kept_by_provider=(("vonage", "v-2"), ("retired", "r-3")),
    )
    assert at_telefoon not in sim.messages
    assert report.to_json()["kept_by_provider"] == 2
    assert any(PHONE in r.getMessage() and r.levelno == logging.INFO for r in caplog.records)
    assert not any(SECRET in r.getMessage() for r in caplog.records)


async def test_a_bad_number_is_a_value_error_and_erases_nothing() -> None:
    store = MemoryStore()
    assert await store.add_inbound(record(1, "vonage", "v-1", Direction.INBOUND))
    with pytest.raises(ValueError, match="cannot erase: '12' is not a valid phone number"):
        await erase_contact(store, {}, "12")
    assert await store.get_message("m-1") is not None

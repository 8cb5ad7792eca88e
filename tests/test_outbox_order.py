"""Per contact, replies leave in the order they were created, whatever the backlog.

A restart finds more replies pending than a sweep reads at once (a window of the oldest),
while turns hand new replies over on the fast path. Each contact's replies must reach the
provider in creation order all the same: the sender claims a contact's oldest pending
reply in the store, not the one it was told about. Real SQLite file, real Telefoon SMS
adapter, the Telefoon SMS simulator on loopback; the order is checked at the simulator.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from convo.models import MessageRecord, MessageStatus, OutboundMessage
from convo.outbox import Outbox
from convo.providers.http import provider_client
from convo.providers.telefoon_sms import TelefoonSms
from convo.simulators.telefoon_sms import TelefoonSmsSimulator
from convo.store.sqlite import SqliteStore

LINE = "+32460000101"
PEOPLE = [f"+3247{600 + i:07d}" for i in range(50)]
BACKLOG = 7  # replies per contact pending at the restart: 350, more than a sweep reads


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "convo.db")
    await store.open()
    yield store
    await store.close()


def reply(contact: str, k: int, at: float) -> OutboundMessage:
    return OutboundMessage(LINE, contact, f"reply {k}", created_at=at)


async def test_replies_keep_each_contacts_order_after_a_restart_with_a_backlog(
    store: SqliteStore,
) -> None:
    # The backlog a previous run left: reply k of every contact before reply k + 1 of any.
    start = time.time() - 3600
    backlog = [
        reply(contact, k, start + k * len(PEOPLE) + i)
        for k in range(BACKLOG)
        for i, contact in enumerate(PEOPLE)
    ]
    await store.add_outbound([MessageRecord.outbound(m) for m in backlog])

    sim = TelefoonSmsSimulator()
    server = TestServer(sim.app, host="127.0.0.1")
    await server.start_server()
    options = {"api_key": sim.api_key, "allow_unsigned": True, "rate_limit": 10_000}
    async with provider_client() as client:
        url = str(server.make_url(""))
        provider = TelefoonSms.from_config("telefoon_sms", {**options, "base_url": url}, client)
        outbox = Outbox(store, {"telefoon_sms": provider}, {LINE: "telefoon_sms"})
        outbox.start()
        try:
            # Turns go on while the outbox catches up: new replies, handed over at once.
            handed = []
            for k in range(BACKLOG, BACKLOG + 3):
                fresh = [reply(contact, k, time.time()) for contact in PEOPLE]
                await store.add_outbound([MessageRecord.outbound(m) for m in fresh])
                outbox.submit(fresh)
                handed += fresh
                await asyncio.sleep(0.01)
            assert await outbox.drain(60)
        finally:
            await outbox.aclose()
            await server.close()

    sent = sim.sent_messages()
    assert len(sent) == len(backlog) + len(handed)  # each once
    wanted = [f"reply {k}" for k in range(BACKLOG + 3)]
    out_of_order = [c for c in PEOPLE if [m["text"] for m in sent if m["to"] == c] != wanted]
    assert out_of_order == [], f"{len(out_of_order)} of {len(PEOPLE)} contacts out of order"
    for message in backlog + handed:
        record = await store.get_message(message.id)
        assert record is not None and record.status is MessageStatus.SENT

"""A campaign survives a SIGKILL of ``convo serve`` mid-way: the next start continues it,
with every recipient started once (0 lost) and none twice, on a real SQLite file."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from convo.campaigns.model import Campaign, CampaignStatus, NewRecipient
from convo.store.sqlite import SqliteStore
from tests.e2e.sms_world import eventually

ROOT = Path(__file__).resolve().parents[2]
CONVO = Path(sys.executable).parent / "convo"
LINE = "+32460000103"
CONTACTS = 300
RATE = 100.0


def write_config(tmp_path: Path) -> Path:
    config = tmp_path / "convo.toml"
    config.write_text(
        f"""
[server]
host = "127.0.0.1"
port = 0

[store]
url = "sqlite:///{tmp_path / "convo.db"}"

[flows]
paths = ["{ROOT / "flows" / "reminder.yaml"}"]

[[lines]]
number = "{LINE}"
provider = "sandbox"
flow = "reminder"

[providers.sandbox]
rate_limit = {RATE}

[webhooks]
rejected_dir = "{tmp_path / "rejected"}"
""",
        encoding="utf-8",
    )
    return config


def numbers() -> list[str]:
    return [f"+3247022{n:04d}" for n in range(CONTACTS)]


async def create_campaign(db: Path) -> None:
    store = SqliteStore(db)
    await store.open()
    try:
        campaign = Campaign(
            id="kill-me",
            name="SIGKILL",
            flow="reminder",
            line=LINE,
            channel="sms",
            rate_per_second=RATE,
            params={"date": "2026-12-01"},
            created_at=1.0,
            updated_at=1.0,
        )
        await store.create_campaign(campaign)
        rows = [NewRecipient(n, i + 2, timezone="UTC") for i, n in enumerate(numbers())]
        await store.add_recipients(campaign.id, rows)
    finally:
        await store.close()


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(db, timeout=10)) as cx:
        return cx.execute(sql).fetchall()


async def serve(config: Path, tmp_path: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        str(CONVO),
        *("serve", "--config", str(config)),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


async def test_a_sigkilled_server_continues_the_campaign_with_none_lost_or_twice(
    tmp_path: Path,
) -> None:
    db = tmp_path / "convo.db"
    config = write_config(tmp_path)
    await create_campaign(db)  # the file exists before the server: it migrates nothing
    first = await serve(config, tmp_path)
    try:

        async def some_started() -> bool:
            assert first.returncode is None, await first.communicate()
            [(started,)] = query(
                db, "SELECT count(*) FROM campaign_recipients WHERE state = 'started'"
            )
            return started >= 60

        await eventually(some_started, "a fifth of the campaign to start", 60)
        first.send_signal(signal.SIGKILL)
        await first.wait()
    finally:
        if first.returncode is None:
            first.kill()
        await first.communicate()
    cut = dict(query(db, "SELECT state, count(*) FROM campaign_recipients GROUP BY state"))
    assert cut.get("pending", 0) > 0, cut  # it was killed mid-way,
    assert cut.get("starting", 0) > 0, cut  # with claims taken and not settled

    second = await serve(config, tmp_path)
    try:

        async def done() -> bool:
            assert second.returncode is None, await second.communicate()
            [(status,)] = query(db, "SELECT status FROM campaigns WHERE id = 'kill-me'")
            return status == CampaignStatus.DONE.value

        await eventually(done, "the campaign to finish after the restart", 60)
    finally:
        second.send_signal(signal.SIGTERM)
        await asyncio.wait_for(second.wait(), 30)
        await second.communicate()

    states = dict(query(db, "SELECT state, count(*) FROM campaign_recipients GROUP BY state"))
    assert states == {"started": CONTACTS}  # 0 lost
    texts = Counter(
        contact
        for contact, text in query(
            db, "SELECT contact, text FROM messages WHERE direction = 'outbound'"
        )
        if str(text).startswith("Hallo")
    )
    assert set(texts) == set(numbers())
    assert max(texts.values()) == 1  # 0 started twice
    sessions = query(db, f"SELECT count(*) FROM sessions WHERE line = '{LINE}'")
    assert sessions == [(CONTACTS,)]
    # Each recipient points at the one first text its start queued.
    linked = query(
        db,
        "SELECT count(*) FROM campaign_recipients AS r JOIN messages AS m "
        "ON m.id = r.message_id WHERE m.contact = r.number",
    )
    assert linked == [(CONTACTS,)]

"""One campaign on PostgreSQL, run by ``convo serve --workers 2``: ``convo broadcast``
(another process) stores it and follows it until it is done; both workers' runners take
their share, and each contact gets the first text once.

Real processes, a real PostgreSQL schema, the Vonage simulator counting what the phones
got (tests/e2e/workers_world.py)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncpg

from tests.e2e.sms_world import eventually
from tests.e2e.workers_world import CONVO, cluster, contact

REMIND = """
flow: remind
languages: [en]
start: ask
steps:
  ask:
    ask: {text: "Your appointment is tomorrow. Reply 1 to confirm.", expect: text, save_as: said}
    then: bye
  bye:
    say: "bye"
    end: true
"""


async def test_two_workers_share_a_campaign_and_start_each_contact_once(
    tmp_path: Path,
) -> None:
    people = 200
    async with cluster(tmp_path, REMIND) as world:
        config = world.config("remind")
        pool = await world.start(config, "--workers", "2")
        contacts = tmp_path / "contacts.csv"
        contacts.write_text(
            "number,name\n" + "".join(f"{contact(i)},P{i}\n" for i in range(people)),
            encoding="utf-8",
        )
        # 25 a second per worker: some seconds of starts, in which both runners poll.
        broadcast = await asyncio.create_subprocess_exec(
            str(CONVO),
            *("broadcast", "remind", "--to", str(contacts), "--rate", "25"),
            *("--config", str(config)),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=tmp_path,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        out, err = await asyncio.wait_for(broadcast.communicate(), 90)
        assert broadcast.returncode == 0, (out + err).decode()[-2000:]  # followed until done

        async def sent() -> bool:
            return len(world.sim.sent) >= people and await world.pending() == (0, 0, 0)

        await eventually(sent, f"{people} first texts sent", 60)
        got = world.replies()
        assert len(world.sim.sent) == people  # none twice
        for i in range(people):
            assert got[contact(i)] == ["Your appointment is tomorrow. Reply 1 to confirm."]
        cx = await asyncpg.connect(world.store_url, timeout=5)
        try:
            states = dict(
                await cx.fetch("SELECT state, count(*) FROM campaign_recipients GROUP BY state")
            )
            claimants = await cx.fetchval(
                "SELECT count(DISTINCT claimed_by) FROM campaign_recipients"
            )
        finally:
            await cx.close()
        assert states == {"started": people}
        assert claimants == 2  # both workers claimed some
        assert await pool.stop() == 0, pool.err.decode()[-2000:]

"""Several ``convo serve`` processes on one PostgreSQL database keep convo's guarantees.

Real processes (``convo serve``), a real PostgreSQL schema per test, the Vonage simulator
counting what the phones got:

* two processes, texts of each contact sent alternately to both: every reply once, per
  contact in order, none lost;
* one of two processes SIGKILLed mid-burst: the other turns what the dead one acknowledged,
  sends what it had claimed once the claim's lease is over, and fires the timers; none lost;
* 1,000 timers due at once, two processes: each fires once;
* ``convo serve --workers 2`` on an empty database: both workers race the migrations and
  both start; a worker SIGKILLed is restarted; SIGTERM stops all, exit 0.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from pathlib import Path

import aiohttp

from convo.flow.engine import Engine
from convo.flow.loader import load_flow_text
from convo.models import ConversationKey
from convo.store import open_store
from tests.e2e.sms_world import eventually
from tests.e2e.workers_world import (
    LINE,
    Cluster,
    Server,
    client,
    cluster,
    contact,
    inbound_body,
    post,
)

ECHO = """
flow: echo
languages: [en]
start: first
steps:
  first:
    ask: {text: "ready", expect: text, save_as: said}
    then: again
  again:
    ask: {text: "got {{ said }}", expect: text, save_as: said}
    then:
      - if: "said == 'last'"
        goto: last
      - goto: again
  last:
    ask: {text: "got last, bye soon", expect: text, save_as: said, timeout: 1s, on_timeout: bye}
    then: bye
  bye:
    say: "bye"
    end: true
"""


def texts(count: int) -> list[str]:
    """A contact's texts: the first opens the conversation, the last sets a timer."""
    return [f"t{k}" for k in range(count - 1)] + ["last"]


def expected(count: int) -> list[str]:
    """The replies to a contact's ``count`` texts: one each, then the timer's."""
    return ["ready", *(f"got t{k}" for k in range(1, count - 1)), "got last, bye soon", "bye"]


async def settled(world: Cluster, total: int, timeout: float) -> None:
    """Until the phones got ``total`` replies and nothing is left to turn, fire or send
    (a count alone could be made up by a crash's duplicates while a timer is still due)."""

    async def done() -> bool:
        return len(world.sim.sent) >= total and await world.pending() == (0, 0, 0)

    await eventually(done, f"{total} replies and an empty outbox", timeout)


async def test_two_processes_answer_every_text_once_and_in_order(tmp_path: Path) -> None:
    people, each = 100, 20
    async with cluster(tmp_path, ECHO) as world:
        config = world.config("echo")
        a, b = await asyncio.gather(world.start(config), world.start(config))
        urls = (a.url, b.url)
        async with client() as http:

            async def person(i: int) -> None:
                for k, text in enumerate(texts(each)):  # alternately to each process
                    assert (
                        await post(http, urls[(i + k) % 2], inbound_body(contact(i), text)) == 200
                    )

            await asyncio.gather(*(person(i) for i in range(people)))
        await settled(world, people * (each + 1), 90)
        got = world.replies()
        assert len(world.sim.sent) == people * (each + 1)  # none twice
        for i in range(people):
            assert got[contact(i)] == expected(each), contact(i)  # none lost, in order
        for server in (a, b):
            assert await server.stop() == 0, server.err.decode()[-2000:]


async def test_the_survivor_finishes_what_a_killed_process_left(tmp_path: Path) -> None:
    people, each = 50, 10
    async with cluster(tmp_path, ECHO) as world:
        config = world.config("echo", claim_lease=2)
        a, b = await asyncio.gather(world.start(config), world.start(config))
        acked = 0
        killed = asyncio.Event()

        async def kill_midway() -> None:
            async def forty_percent() -> bool:
                return acked >= people * each * 2 // 5

            await eventually(forty_percent, "40% of the texts acknowledged", 60)
            a.process.send_signal(signal.SIGKILL)
            await a.process.wait()
            killed.set()

        async with client() as http:

            async def person(i: int) -> None:
                nonlocal acked
                for k, text in enumerate(texts(each)):
                    body = inbound_body(contact(i), text)
                    target = (a, b)[(i + k) % 2]
                    if target is a and killed.is_set():
                        target = b
                    try:
                        status = await post(http, target.url, body)
                    except aiohttp.ClientError:  # the provider retries at the other one
                        status = await post(http, b.url, body)
                    assert status == 200
                    acked += 1

            await asyncio.gather(kill_midway(), *(person(i) for i in range(people)))
        assert a.process.returncode == -signal.SIGKILL
        await settled(world, people * (each + 1), 60)
        got = world.replies()
        for i in range(people):
            # None lost, in order; a send the dead process had made but not recorded may
            # come twice (the duplicate window of a crash), never out of place.
            assert _once(got[contact(i)]) == expected(each), contact(i)
        assert await b.stop() == 0, b.err.decode()[-2000:]


async def test_a_thousand_timers_due_at_once_fire_once_each(tmp_path: Path) -> None:
    people = 1000
    flow = """
flow: nudge
languages: [en]
start: ask
steps:
  ask:
    ask: {text: "hi", expect: text, save_as: said, timeout: 1s, on_timeout: bye}
    then: bye
  bye:
    say: "bye"
    end: true
"""
    async with cluster(tmp_path, flow) as world:
        store = open_store(world.store_url)
        await store.open()
        try:
            # 1,000 conversations waiting for an answer, started a second ago (the engine's
            # clock): every timer is due before the processes start.
            flows = {"nudge": load_flow_text(flow, "nudge.yaml")}
            engine = Engine(flows, store, clock=lambda: time.time() - 1.0)

            async def start(first: int) -> None:
                for i in range(first, people, 50):
                    await engine.start(ConversationKey(LINE, "sms", contact(i)), "nudge")

            await asyncio.gather(*(start(k) for k in range(50)))
            assert len(await store.due_timers(time.time(), limit=2 * people)) == people
        finally:
            await store.close()
        config = world.config("nudge")
        a, b = await asyncio.gather(world.start(config), world.start(config))
        await settled(world, 2 * people, 90)
        got = world.replies()
        assert len(world.sim.sent) == 2 * people
        for i in range(people):
            assert got[contact(i)] == ["hi", "bye"], contact(i)
        assert [await a.stop(), await b.stop()] == [0, 0]


async def test_workers_race_the_migrations_and_restart_a_killed_worker(tmp_path: Path) -> None:
    async with cluster(tmp_path, ECHO) as world:  # an empty schema: no table yet
        metrics = _two_free_ports()
        pool = await world.start(world.config("echo", metrics_port=metrics), "--workers", "2")
        workers = _children(pool)
        assert len(workers) == 2, pool.err.decode()
        async with client() as http:
            for port in (metrics, metrics + 1):  # each worker's metrics on a port of its own
                async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                    assert response.status == 200
                    assert "convo_" in await response.text()
            for i in range(20):
                assert await post(http, pool.url, inbound_body(contact(i), "t0")) == 200
            os.kill(workers[0], signal.SIGKILL)

            async def restarted() -> bool:
                return b"is serving again" in pool.err

            await eventually(restarted, "the killed worker serving again", 30)
            assert len(_children(pool)) == 2
            for i in range(20, 40):
                assert await post(http, pool.url, inbound_body(contact(i), "t0")) == 200
        await settled(world, 40, 30)
        assert sorted(world.replies()) == sorted(contact(i) for i in range(40))
        began = time.monotonic()
        assert await pool.stop() == 0, pool.err.decode()[-2000:]
        assert time.monotonic() - began < 20
        err = pool.err.decode()
        assert "worker 1" in err and "was killed by SIGKILL; restarting" in err
        assert "Traceback" not in err


def _two_free_ports() -> int:
    """A port P such that P and P + 1 are free now."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port
    raise AssertionError("no two free ports in a row")


def _children(server: Server) -> list[int]:
    """The pids of a ``--workers`` parent's worker processes."""
    pid = server.process.pid
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as cmd:
                cmdline = cmd.read()
        except OSError:
            continue
        if int(fields[1]) == pid and b"spawn_main" in cmdline:
            found.append(int(entry))
    return sorted(found)


def _once(replies: list[str]) -> list[str]:
    """``replies`` with repeats of a reply the contact got just before taken out."""
    out: list[str] = []
    for text in replies:
        if text not in out:
            out.append(text)
    return out

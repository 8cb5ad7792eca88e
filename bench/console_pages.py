"""What a web console page costs to render with many conversations in the store.

Usage: .venv/bin/python bench/console_pages.py [--conversations 10000] [--requests 50]

Fills a SQLite store (in a temp dir) with ``--conversations`` conversations on the
example flows' sandbox lines, spread over their steps and statuses and over the last 30
days, each with three messages (and the step visits ``save_turn`` records), then serves
convo on loopback in this process and times ``--requests`` sequential GETs of each
console page, signed in, with one aiohttp client. ``/livez`` (no store, no template) is
timed the same way, side by side, as the floor: the ratio says what the page itself costs.

Prints p50 and p99 per page in milliseconds, the ratio of its p50 to ``/livez``'s, and
whether every page's p99 is under the 200 ms target.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path

import aiohttp
from _common import free_port, percentile
from aiohttp import web

from convo.config import parse_settings, sandbox_lines
from convo.models import (
    ConversationKey,
    ConversationStatus,
    Direction,
    MessageRecord,
    MessageStatus,
    Session,
)
from convo.store.sqlite import SqliteStore
from convo.web.app import create_app
from convo.web.console.auth import SESSION_COOKIE, session_value

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token"
# The steps the conversations are spread over, per example flow (on its sandbox line).
STEPS = {
    "appointment": ["confirm", "reminder", "pick_date", "confirmed", "moved"],
    "faq": ["menu", "hours", "address", "human", "stopped"],
    "survey": ["score", "praise", "improve", "again", "thanks"],
}


async def fill(path: Path, conversations: int) -> str:
    """Write the conversations; returns one contact's number (for its page)."""
    store = SqliteStore(path)
    await store.open()
    rng = random.Random(7)
    now = time.time()
    line_of = {line.flow: line.number for line in sandbox_lines((str(ROOT / "flows"),))}
    flows = list(STEPS)

    async def one(n: int) -> None:
        flow = flows[n % len(flows)]
        line, steps = line_of[flow], STEPS[flow]
        contact = f"+3247{n:07d}"
        started = now - rng.uniform(0, 30 * 86400)
        key = ConversationKey(line, "sms", contact)
        status = rng.choice([ConversationStatus.ACTIVE, ConversationStatus.ENDED])
        session = Session(key, flow, "v1", steps[0], "nl", created_at=started, updated_at=started)
        await store.save_turn(session)
        records = [
            MessageRecord(
                id=f"m{n}-{i}",
                direction=Direction.INBOUND if i % 2 else Direction.OUTBOUND,
                line=line,
                contact=contact,
                text=f"message {i} of conversation {n}",
                status=MessageStatus.DELIVERED,
                created_at=started + i,
                updated_at=started + i,
            )
            for i in range(3)
        ]
        last = Session(
            key,
            flow,
            "v1",
            rng.choice(steps),
            "nl",
            status=status,
            created_at=started,
            updated_at=started + 3,
        )
        await store.save_turn(
            last, outbound=[r for r in records if r.direction.value == "outbound"]
        )
        for r in records:
            if r.direction is Direction.INBOUND:  # as a turn left it: processed
                await store.add_inbound(r)
                await store.mark_processed(r.id)

    for start in range(0, conversations, 500):
        await asyncio.gather(*(one(n) for n in range(start, min(start + 500, conversations))))
    await store.close()
    return f"+3247{0:07d}"


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        contact = await fill(Path(tmp) / "convo.db", args.conversations)
        print(f"store: {args.conversations} conversations, {3 * args.conversations} messages "
              f"(filled in {time.perf_counter() - started:.1f} s)")  # fmt: skip
        port = free_port()
        settings = parse_settings(
            {
                "server": {"api_token": TOKEN, "port": port},
                "store": {"url": f"sqlite:///{tmp}/convo.db"},
                "flows": {"paths": [str(ROOT / "flows")]},
                "webhooks": {"rejected_dir": f"{tmp}/rejected"},
            },
            source="bench",
            env={},
        )
        runner = web.AppRunner(create_app(settings), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        base = f"http://127.0.0.1:{port}"
        last = args.conversations // 50
        cookies = {SESSION_COOKIE: session_value(TOKEN, int(time.time()))}
        pages = [
            ("/livez (floor)", "/livez", {}),
            ("conversations", "/console/conversations", {}),
            ("conversations, live refresh", "/console/conversations", {"HX-Request": "true"}),
            ("conversations, flow+step", "/console/conversations?flow=faq&step=menu", {}),
            ("conversations, last page", f"/console/conversations?page={last}", {}),
            ("contact", f"/console/contacts/{contact}", {}),
            ("flows (7 days)", "/console/flows?period=7d", {}),
            ("flows (30 days)", "/console/flows?period=30d", {}),
            ("outbox", "/console/outbox", {}),
            ("sandbox phone", "/console/phone", {}),
        ]  # fmt: skip
        results: dict[str, tuple[float, float]] = {}
        async with aiohttp.ClientSession(cookies=cookies) as client:
            for name, path, headers in pages:
                timings = []
                for i in range(args.requests + 3):
                    t0 = time.perf_counter()
                    async with client.get(base + path, headers=headers) as response:
                        await response.read()
                        assert response.status == 200, (path, response.status)
                    if i >= 3:  # warm-up: templates compiled, caches filled
                        timings.append(time.perf_counter() - t0)
                results[name] = (percentile(timings, 0.5), percentile(timings, 0.99))
        await runner.cleanup()
    floor = results["/livez (floor)"][0]
    print(f"{'page':32} {'p50 ms':>8} {'p99 ms':>8} {'p50 / livez':>12}")
    for name, (p50, p99) in results.items():
        print(f"{name:32} {p50:8.1f} {p99:8.1f} {p50 / floor:12.1f}")
    worst = max(p99 for name, (_, p99) in results.items())
    verdict = "under" if worst < 200 else "OVER"
    print(f"slowest page p99: {worst:.1f} ms ({verdict} the 200 ms target)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=50)
    asyncio.run(main(parser.parse_args()))

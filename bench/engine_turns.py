"""Engine throughput: turns per second for a 10-step flow over many distinct conversations.

Usage: .venv/bin/python bench/engine_turns.py [--conversations 10000] [--store memory|sqlite|both]

One "turn" is one engine event: an outbound start or an inbound answer, each going through
the full path (conversation lock, load, parse the answer, render the reply, save the turn and
queue the reply in one store transaction). Runs on one core (a single asyncio loop). Prints
turns/s per store, and for SQLite the file size per idle conversation.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from convo.flow.engine import Engine
from convo.flow.loader import load_flow_text
from convo.models import ConversationKey, InboundMessage
from convo.store.base import Store
from convo.store.memory import MemoryStore
from convo.store.sqlite import SqliteStore

LINE = "+3200000000"


def ten_step_flow() -> str:
    steps = []
    kinds = ["number", "yes_no", "text", "number", "yes_no", "text", "number", "yes_no", "text"]
    for i, kind in enumerate(kinds, start=1):
        steps.append(
            f"  q{i}:\n    ask:\n      text: {{en: 'Question {i} for {{{{ params.name }}}}?'}}\n"
            f"      expect: {kind}\n      save_as: a{i}\n      reprompt: [{{en: 'Again?'}}]\n"
            f"    then: q{i + 1}\n"
        )
    steps.append("  q10:\n    say: {en: 'Thanks {{ params.name }}!'}\n    end: true\n")
    return (
        "flow: bench\nlanguages: [en]\nstart: q1\nparams:\n  name: {required: true}\n"
        "steps:\n" + "".join(steps)
    )


ANSWERS = ["7", "yes", "fine", "3", "no", "ok then", "10", "y", "bye"]


async def run(store: Store, conversations: int, concurrency: int) -> tuple[int, float]:
    """All conversations start, then answer question by question; ``concurrency`` turns (of
    distinct conversations) are in flight at once, as webhooks are on a busy server."""
    await store.open()
    engine = Engine(
        {"bench": load_flow_text(ten_step_flow(), "bench.yaml")}, store, lines={LINE: "bench"}
    )
    numbers = [f"+32470{i:06d}" for i in range(conversations)]
    batches = [numbers[i : i + concurrency] for i in range(0, len(numbers), concurrency)]

    async def start(number: str) -> None:
        await engine.start(ConversationKey(LINE, "sms", number), "bench", params={"name": "An"})

    async def answer(number: str, text: str) -> None:
        await engine.handle(InboundMessage(line=LINE, sender=number, text=text))

    begin = time.perf_counter()
    if concurrency == 1:  # no task per turn: the figure is the turn alone
        for n in numbers:
            await start(n)
        for text in ANSWERS:
            for n in numbers:
                await answer(n, text)
    else:
        for batch in batches:
            await asyncio.gather(*(start(n) for n in batch))
        for text in ANSWERS:
            for batch in batches:
                await asyncio.gather(*(answer(n, text) for n in batch))
    elapsed = time.perf_counter() - begin
    await store.close()
    return conversations * (1 + len(ANSWERS)), elapsed


async def idle_size(path: Path, conversations: int) -> float:
    store = SqliteStore(path)
    await store.open()
    engine = Engine(
        {"bench": load_flow_text(ten_step_flow(), "bench.yaml")}, store, lines={LINE: "bench"}
    )
    for i in range(conversations):
        key = ConversationKey(LINE, "sms", f"+32471{i:06d}")
        await engine.start(key, "bench", params={"name": "An"})
    await store.close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("VACUUM")
    return os.path.getsize(path) / conversations


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--store", choices=["memory", "sqlite", "both"], default="both")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 50], help="turns in flight (1 50)"
    )
    args = parser.parse_args()
    n = args.conversations
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, threads included
    print(f"10-step flow, {n} conversations, {n * 10} turns per run, pinned to one core")
    with tempfile.TemporaryDirectory() as tmp:
        for c in args.concurrency:
            if args.store in ("memory", "both"):
                turns, secs = await run(MemoryStore(), n, c)
                print(
                    f"memory store, {c:3d} in flight: {turns / secs:7,.0f} turns/s "
                    f"({turns} turns in {secs:.2f} s)"
                )
            if args.store in ("sqlite", "both"):
                db = Path(tmp) / f"bench-{c}.db"
                turns, secs = await run(SqliteStore(db), n, c)
                print(
                    f"sqlite store, {c:3d} in flight: {turns / secs:7,.0f} turns/s "
                    f"({turns} turns in {secs:.2f} s)"
                )
        if args.store in ("sqlite", "both"):
            size = await idle_size(Path(tmp) / "idle.db", n)
            print(
                f"sqlite size per idle conversation (session + its queued first message): "
                f"{size:,.0f} bytes"
            )


if __name__ == "__main__":
    asyncio.run(main())

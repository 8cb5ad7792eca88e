"""What reading the contact on every turn costs: engine turns with and without the lookup.

Usage: .venv/bin/python bench/contact_turns.py [--conversations 2000] [--rounds 3]

The server's engine reads each turn's contact from the store (templates see
``contact.name`` and ``contact.fields``), one more store call per turn. This runs
engine_turns.py's 10-step flow over SQLite, one turn at a time, with the lookup (every
number has a contact record) and without it, alternating runs in the same process, and
prints turns/s for each and their ratio (best run of each).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from engine_turns import ANSWERS, LINE, ten_step_flow  # bench/ is the script's directory

from convo.flow.engine import Engine
from convo.flow.loader import load_flow_text
from convo.models import Contact, ConversationKey, InboundMessage
from convo.store.sqlite import SqliteStore

MODES = {
    "no lookup (baseline)": (False, False),
    "lookup, flow without contact": (True, False),
    "lookup, flow with contact.name": (True, True),
}


async def run(path: Path, conversations: int, lookup: bool, named: bool) -> tuple[float, float]:
    """Turns per second (wall clock) and CPU microseconds per turn (all threads: SQLite
    works in its own), the one that stays readable on a busy machine."""
    store = SqliteStore(path)
    await store.open()
    numbers = [f"+32470{i:06d}" for i in range(conversations)]
    await store.put_contacts([Contact(n, "en", "An", None, {"room": "3B"}) for n in numbers])
    source = ten_step_flow()
    if named:
        source = source.replace("{{ params.name }}", "{{ contact.name }}")
    engine = Engine(
        {"bench": load_flow_text(source, "bench.yaml")},
        store,
        lines={LINE: "bench"},
        contacts=store.get_contact if lookup else None,
    )
    begin, cpu = time.perf_counter(), time.process_time()
    for n in numbers:
        await engine.start(ConversationKey(LINE, "sms", n), "bench", params={"name": "An"})
    for text in ANSWERS:
        for n in numbers:
            await engine.handle(InboundMessage(line=LINE, sender=n, text=text))
    elapsed, cpu = time.perf_counter() - begin, time.process_time() - cpu
    await store.close()
    turns = conversations * (1 + len(ANSWERS))
    return turns / elapsed, cpu / turns * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    rate = dict.fromkeys(MODES, 0.0)
    cpu = dict.fromkeys(MODES, float("inf"))
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = list(MODES) if r % 2 == 0 else list(reversed(MODES))  # order aside
            for i, mode in enumerate(order):
                path = Path(tmp) / f"{r}-{i}.db"
                turns_per_s, cpu_us = await run(path, args.conversations, *MODES[mode])
                rate[mode] = max(rate[mode], turns_per_s)
                cpu[mode] = min(cpu[mode], cpu_us)
    print(f"SQLite, 10-step flow, {args.conversations} conversations, best of {args.rounds}")
    base = next(iter(MODES))
    for mode in MODES:
        print(
            f"{mode:31}: {rate[mode]:6,.0f} turns/s ({rate[mode] / rate[base]:.2f}), "
            f"{cpu[mode]:5,.0f} us CPU per turn ({cpu[mode] / cpu[base]:.2f})"
        )


if __name__ == "__main__":
    asyncio.run(main())

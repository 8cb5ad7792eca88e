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


async def run(path: Path, conversations: int, lookup: bool) -> float:
    store = SqliteStore(path)
    await store.open()
    numbers = [f"+32470{i:06d}" for i in range(conversations)]
    await store.put_contacts([Contact(n, "en", "An", None, {"room": "3B"}) for n in numbers])
    engine = Engine(
        {"bench": load_flow_text(ten_step_flow(), "bench.yaml")},
        store,
        lines={LINE: "bench"},
        contacts=store.get_contact if lookup else None,
    )
    begin = time.perf_counter()
    for n in numbers:
        await engine.start(ConversationKey(LINE, "sms", n), "bench", params={"name": "An"})
    for text in ANSWERS:
        for n in numbers:
            await engine.handle(InboundMessage(line=LINE, sender=n, text=text))
    elapsed = time.perf_counter() - begin
    await store.close()
    return conversations * (1 + len(ANSWERS)) / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    best = {False: 0.0, True: 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for lookup in (False, True) if r % 2 == 0 else (True, False):  # order aside
                path = Path(tmp) / f"{r}-{lookup}.db"
                best[lookup] = max(best[lookup], await run(path, args.conversations, lookup))
    print(f"SQLite, 10-step flow, {args.conversations} conversations, best of {args.rounds}")
    print(f"without contact lookup: {best[False]:7,.0f} turns/s")
    print(f"with contact lookup:    {best[True]:7,.0f} turns/s")
    print(f"ratio with/without:     {best[True] / best[False]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())

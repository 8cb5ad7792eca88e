"""SQLite work per engine turn: pages written, statements, rows and index entries.

Usage: .venv/bin/python bench/sqlite_turn_work.py [--conversations 2000] [--concurrency 1 50]
       [--provider-ids]

The workload of ``bench/engine_turns.py`` (a 10-step flow; every conversation starts, then
answers question by question), on a fresh SQLite file per concurrency. The starts fill the
file; what is counted is the answer phase alone (9 turns per conversation):

* WAL frames (pages written) per turn, and which table or index they belong to: the WAL is
  checkpointed (truncated) before the phase and the store's automatic checkpoints are
  turned off during it, so the frames in the WAL at the end are the phase's writes;
* commits per turn (a group commit carries several turns);
* statements per turn, by kind (the connection's trace callback);
* rows changed per turn (``total_changes``) and entries added per turn to each index.

Deterministic counts, unlike timings: compare two versions with these. ``--provider-ids``
gives inbound texts a provider id, as a webhook's have. For the SQLite thread's CPU per
turn, run under ``valgrind --tool=callgrind --separate-threads=yes`` and divide the store
thread's instructions by the turns (the script prints the count of turns it ran).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sqlite3
import struct
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from engine_turns import ANSWERS, LINE, ten_step_flow

from convo.flow.engine import Engine
from convo.flow.loader import load_flow_text
from convo.models import ConversationKey, InboundMessage
from convo.store.sqlite import SqliteStore

HEADER, FRAME_HEADER = 32, 24


def on_thread(store: SqliteStore, fn: Any) -> Any:
    """Run ``fn(connection)`` on the store's connection thread (between jobs)."""
    return store._cx._call(fn)  # a measuring tool looks inside


def wal_frames(wal: Path) -> list[tuple[int, bool]]:
    """(page number, is a commit frame) of every frame in the WAL file ``wal``."""
    data = wal.read_bytes() if wal.exists() else b""
    if len(data) < HEADER:
        return []
    (page_size,) = struct.unpack(">I", data[8:12])
    frames = []
    for at in range(HEADER, len(data) - FRAME_HEADER + 1, FRAME_HEADER + page_size):
        page, size_after = struct.unpack(">II", data[at : at + 8])
        frames.append((page, size_after != 0))
    return frames


def index_entries(cx: sqlite3.Connection) -> dict[str, int]:
    """Entries (cells of leaf pages) of every table and index."""
    found = cx.execute(
        "SELECT name, sum(ncell) FROM dbstat WHERE pagetype = 'leaf' GROUP BY name"
    ).fetchall()
    return {name: int(n) for name, n in found}


def owners(cx: sqlite3.Connection) -> dict[int, str]:
    return dict(cx.execute("SELECT pageno, name FROM dbstat"))


async def measure(path: Path, conversations: int, concurrency: int, pids: bool) -> None:
    store = SqliteStore(path)
    await store.open()
    engine = Engine(
        {"bench": load_flow_text(ten_step_flow(), "bench.yaml")}, store, lines={LINE: "bench"}
    )
    numbers = [f"+32470{i:06d}" for i in range(conversations)]
    batches = [numbers[i : i + concurrency] for i in range(0, len(numbers), concurrency)]
    serial = iter(range(10**9))

    async def answer(number: str, text: str) -> None:
        pid = f"p{next(serial):012d}" if pids else ""
        await engine.handle(
            InboundMessage(
                line=LINE, sender=number, text=text, provider="bench", provider_message_id=pid
            )
        )

    for batch in batches:
        await asyncio.gather(
            *(
                engine.start(ConversationKey(LINE, "sms", n), "bench", params={"name": "An"})
                for n in batch
            )
        )
    kinds: collections.Counter[str] = collections.Counter()

    def start_counting(cx: sqlite3.Connection) -> tuple[int, dict[str, int]]:
        cx.execute("PRAGMA wal_autocheckpoint = 0")
        cx.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cx.set_trace_callback(lambda s: kinds.update([" ".join(s.split()[:3])[:60]]))
        return cx.total_changes, index_entries(cx)

    changes, entries = await on_thread(store, start_counting)
    for text in ANSWERS:
        for batch in batches:
            await asyncio.gather(*(answer(n, text) for n in batch))

    def stop_counting(cx: sqlite3.Connection) -> tuple[int, dict[str, int], dict[int, str]]:
        cx.set_trace_callback(None)
        return cx.total_changes, index_entries(cx), owners(cx)

    changes_after, entries_after, pages = await on_thread(store, stop_counting)
    frames = wal_frames(path.with_name(path.name + "-wal"))
    await store.close()

    turns = conversations * len(ANSWERS)
    commits = sum(commit for _, commit in frames)
    print(f"\n{concurrency} in flight, {conversations} conversations, {turns} answer turns")
    print(
        f"  pages written per turn: {len(frames) / turns:6.2f}  (commits per turn "
        f"{commits / turns:.3f}, pages per commit {len(frames) / max(commits, 1):.1f})"
    )
    by_owner = collections.Counter(pages.get(page, "?") for page, _ in frames)
    for name, n in by_owner.most_common():
        print(f"    {n / turns:6.2f}  {name}")
    statements = sum(kinds.values())
    print(f"  statements per turn: {statements / turns:.2f}")
    for kind, n in kinds.most_common():
        print(f"    {n / turns:6.2f}  {kind}")
    print(f"  rows changed per turn: {(changes_after - changes) / turns:.2f}")
    added = {
        name: entries_after.get(name, 0) - entries.get(name, 0)
        for name in entries_after.keys() | entries.keys()
    }
    print(f"  entries added per turn: {sum(added.values()) / turns:.2f}")
    for name, n in sorted(added.items(), key=lambda kv: -kv[1]):
        if n:
            print(f"    {n / turns:6.2f}  {name}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 50])
    parser.add_argument("--provider-ids", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for c in args.concurrency:
            await measure(Path(tmp) / f"work-{c}.db", args.conversations, c, args.provider_ids)


if __name__ == "__main__":
    asyncio.run(main())

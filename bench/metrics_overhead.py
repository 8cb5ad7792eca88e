"""What metrics cost a turn: engine CPU time per turn with and without them, side by side.

Usage: .venv/bin/python bench/metrics_overhead.py [--conversations 2000] [--rounds 3]

The same 10-step flow as bench/engine_turns.py, one turn in flight, pinned to one core.
"plain" is the engine over the bare store; "metrics" is what a server runs: the store
wrapped in :class:`convo.metrics.TimedStore` (every call timed into a histogram) and every
turn observed (``convo_turn_duration_seconds``). Runs alternate, so both see the same
machine. Each run is measured in CPU time of this process (``time.process_time``), which
other work on a shared machine disturbs far less than wall time; prints the CPU
microseconds per turn of each run and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from engine_turns import ANSWERS, LINE, ten_step_flow

from convo.flow.engine import Engine
from convo.flow.loader import load_flow_text
from convo.metrics import Metrics, TimedStore
from convo.models import ConversationKey, InboundMessage
from convo.store.base import Store
from convo.store.memory import MemoryStore
from convo.store.sqlite import SqliteStore


async def cpu_per_turn(store: Store, conversations: int, metrics: Metrics | None) -> float:
    """CPU microseconds per turn."""
    if metrics is not None:
        store = TimedStore.wrap(store, metrics)
    await store.open()
    engine = Engine(
        {"bench": load_flow_text(ten_step_flow(), "bench.yaml")},
        store,
        lines={LINE: "bench"},
        on_turn=metrics.observe_turn if metrics is not None else None,
    )
    numbers = [f"+32470{i:06d}" for i in range(conversations)]
    begin = time.process_time()
    for n in numbers:
        await engine.start(ConversationKey(LINE, "sms", n), "bench", params={"name": "An"})
    for text in ANSWERS:
        for n in numbers:
            await engine.handle(InboundMessage(line=LINE, sender=n, text=text))
    elapsed = time.process_time() - begin
    await store.close()
    return elapsed * 1e6 / (conversations * (1 + len(ANSWERS)))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    with tempfile.TemporaryDirectory() as tmp:
        stores: dict[str, Callable[[str], Store]] = {
            "memory": lambda name: MemoryStore(),
            "sqlite": lambda name: SqliteStore(Path(tmp) / f"{name}.db"),
        }
        for kind, make in stores.items():
            plain: list[float] = []
            measured: list[float] = []
            for r in range(args.rounds):
                plain.append(await cpu_per_turn(make(f"p{r}"), args.conversations, None))
                measured.append(await cpu_per_turn(make(f"m{r}"), args.conversations, Metrics()))
                print(f"{kind} round {r + 1}: plain {plain[-1]:.1f}, metrics "
                      f"{measured[-1]:.1f} CPU us/turn")  # fmt: skip
            ratio = statistics.median(measured) / statistics.median(plain)
            print(f"{kind}: CPU per turn, metrics/plain = {ratio:.3f} (medians of {args.rounds})")


if __name__ == "__main__":
    asyncio.run(main())

"""What replay-safe call webhooks cost: call turns per second with and without the claim.

Usage: .venv/bin/python bench/voice_replays.py [--calls 300] [--questions 4] [--rounds 5]

A :class:`~convo.flow.calls.CallRunner` on a SQLite store (a file in a temp dir, one store
per run) plays ``--calls`` calls, one after another: the answer, then one input per
question, each answered with the next Gather (the flow of ``voice_webhooks.py``). The
baseline passes no ``turn`` and ``replay_safe=False`` (nothing claimed: the code before
replays were handled); the replay-safe run passes the ``turn`` token of the document each
input answers and ``replay_safe=True``, so every turn also claims its webhook and stores its
answer (two more writes). Both run in the same process, alternating, ``--rounds`` times
each; prints each round's turns/s and the median ratio replay-safe / baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from _common import voice_flow

from convo.flow.calls import CallRunner
from convo.flow.engine import Engine
from convo.flow.loader import load_flow_text
from convo.models import CallEvent
from convo.store.sqlite import SqliteStore
from convo.voice.instructions import Gather

LINE = "+3225550111"
INPUT_URL = "https://bot.example.com/webhooks/telefoon_voice/voice/input"


def turn_of(document: list[object]) -> str:
    [gather] = [item for item in document if isinstance(item, Gather)]
    return parse_qs(urlsplit(gather.action).query)["turn"][0]


async def run(path: Path, calls: int, questions: int, replay_safe: bool) -> float:
    """Turns per second of one run on a fresh store at ``path``."""
    store = SqliteStore(path)
    await store.open()
    flow = load_flow_text(voice_flow(questions), "bench_voice.yaml")
    runner = CallRunner(Engine({"bench_voice": flow}, store, lines={LINE: "bench_voice"}))
    start = time.perf_counter()
    for n in range(calls):
        call = CallEvent("telefoon_voice", f"CA{n:08d}", LINE, f"+32470{n:06d}")
        document: list[object] = list(await runner.answer(call, INPUT_URL, replay_safe=replay_safe))
        for i in range(1, questions + 1):
            turn = turn_of(document) if replay_safe else None
            pressed = CallEvent("telefoon_voice", call.call_id, LINE, call.caller, digits=str(i))
            document = list(await runner.input(pressed, INPUT_URL, "gather", turn=turn))
    elapsed = time.perf_counter() - start
    await store.close()
    return calls * (1 + questions) / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--questions", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    ratios = []
    print(f"{args.calls} calls x {1 + args.questions} turns, SQLite, one call at a time")
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            base = await run(Path(tmp, f"base-{r}.db"), args.calls, args.questions, False)
            safe = await run(Path(tmp, f"safe-{r}.db"), args.calls, args.questions, True)
            ratios.append(safe / base)
            print(
                f"round {r + 1}: baseline {base:7,.0f} turns/s   replay-safe {safe:7,.0f} "
                f"turns/s   ratio {safe / base:.2f}"
            )
    print(f"median ratio replay-safe / baseline: {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    asyncio.run(main())

"""Call webhooks per second and their latency: convo's voice routes at 50 concurrent calls.

Usage: .venv/bin/python bench/voice_webhooks.py [--calls 400] [--concurrency 50]
       [--think 0.25] [--questions 4] [--duration 60] [--profile FILE]

convo (``create_app``: SQLite store in a temp dir, one Telefoon Voice line, signed
webhooks) runs in a child process started with ``convo.web.server.serve``, so the load
generator does not share its event loop. The generator (one aiohttp client, at most
``--concurrency`` calls in flight, each call's webhooks in sequence as a provider sends them)
plays ``--calls`` calls: ``/voice/answer`` (the flow begins: a Gather), then one
``/voice/input`` per question (digits; each answered with the next Gather, the last with
Say + Hangup), then ``/voice/status`` completed. Each form is signed like Telefoon
(``X-Signature``). It stops early after ``--duration`` seconds.

``--think`` is the caller's time between two webhooks of one call (listening to the prompt,
pressing a key), drawn uniformly from 0.5x to 1.5x of it: 50 calls in progress with 0.25 s
of thought offer about 200 webhooks/s, a far faster pace than real callers (seconds per
key). ``--think 0`` posts each call's webhooks back to back: a saturation test, where by
Little's law latency ~ concurrency / throughput, i.e. queueing, not the cost of a webhook.

Prints, per route, requests/s over the whole run and p50/p99/max latency in ms, and checks
every answer was a 200 XML document (a Gather, or a Hangup at the end) and every conversation
ended. Target (issue): p99 under 20 ms for answer and input. ``--profile FILE`` runs the
server under cProfile and writes its stats to FILE (read with ``python -m pstats FILE``).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import random
import sqlite3
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from _common import free_port, percentile, serve_convo, voice_flow

from convo.providers.telefoon_voice_webhook import SIGNATURE_HEADER, sign

LINE = "+3225550111"
SECRET = "bench-secret"
ROUTES = ("answer", "input", "status")


def run_server(tmp: str, port: int, ready: Any, profile: str | None) -> None:
    """The child process: convo until SIGTERM."""
    import logging

    from convo.config import parse_settings

    logging.basicConfig(level=logging.WARNING)
    settings = parse_settings(
        {
            "server": {"host": "127.0.0.1", "port": port, "shutdown_timeout": 5},
            "store": {"url": f"sqlite:///{tmp}/convo.db"},
            "flows": {"paths": [f"{tmp}/bench_voice.yaml"]},
            "webhooks": {"rejected_dir": f"{tmp}/rejected"},
            "lines": [{"number": LINE, "provider": "telefoon_voice", "flow": "bench_voice"}],
            "providers": {
                "telefoon_voice": {
                    "api_key": "unused",
                    "webhook_secret": SECRET,
                    "base_url": "http://127.0.0.1:9",
                }
            },
        },
        source="bench",
        env={},
    )
    serve_convo(settings, ready, profile)


class Load:
    """Plays calls against convo and keeps each request's latency by route."""

    def __init__(self, base: str, questions: int, deadline: float, think: float) -> None:
        self.base = base
        self.think = think
        self.rng = random.Random(42)
        self.questions = questions
        self.deadline = deadline
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self.completed = 0

    async def post(self, http: aiohttp.ClientSession, route: str, fields: dict[str, str]) -> str:
        body = urlencode(fields).encode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            SIGNATURE_HEADER: sign(SECRET, body),
        }
        path = f"/webhooks/telefoon_voice/voice/{route}"
        if route == "input":
            path += "?after=gather"
        if self.think:
            await asyncio.sleep(self.think * (0.5 + self.rng.random()))
        start = time.perf_counter()
        async with http.post(self.base + path, data=body, headers=headers) as resp:
            text = await resp.text()
            self.latency[route].append(time.perf_counter() - start)
            if resp.status != 200:
                self.errors.append(f"{route}: {resp.status} {text[:200]}")
        return text

    async def call(self, http: aiohttp.ClientSession, n: int) -> None:
        caller = f"+32470{n:06d}"
        fields = {"call_id": f"CA{n:08d}", "from": caller, "to": LINE, "direction": "inbound"}
        fields["status"] = "in-progress"
        doc = await self.post(http, "answer", fields)
        if "<Gather" not in doc:
            self.errors.append(f"answer of call {n}: no Gather in {doc[:200]}")
        for i in range(1, self.questions + 1):
            doc = await self.post(http, "input", fields | {"digits": str(i)})
            want = "<Gather" if i < self.questions else "<Hangup"
            if want not in doc:
                self.errors.append(f"input {i} of call {n}: no {want[1:]} in {doc[:200]}")
        await self.post(http, "status", fields | {"status": "completed", "duration": "30"})
        self.completed += 1

    async def run(self, calls: int, concurrency: int) -> float:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(calls):
            queue.put_nowait(n)

        async def worker(http: aiohttp.ClientSession) -> None:
            while time.perf_counter() < self.deadline:
                try:
                    n = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await self.call(http, n)

        connector = aiohttp.TCPConnector(limit=concurrency)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            think, self.think = self.think, 0.0
            await self.call(http, calls)  # warm-up call (first imports, first SQLite pages)
            self.think, self.completed = think, 0
            for route in ROUTES:
                self.latency[route].clear()
            start = time.perf_counter()
            await asyncio.gather(*(worker(http) for _ in range(concurrency)))
            return time.perf_counter() - start


def report(load: Load, elapsed: float, concurrency: int) -> bool:
    total = sum(len(v) for v in load.latency.values())
    print(
        f"{load.completed} calls, {total} webhooks in {elapsed:.2f} s at {concurrency} "
        f"concurrent calls, think {load.think} s: {total / elapsed:,.0f} webhooks/s"
    )
    ok = True
    for route in ROUTES:
        values = load.latency[route]
        if not values:
            continue
        p99 = percentile(values, 0.99)
        line = (
            f"  {route:<6} {len(values) / elapsed:8,.0f} req/s"
            f"   p50 {percentile(values, 0.5):6.2f} ms   p99 {p99:6.2f} ms"
            f"   max {max(values) * 1000:6.2f} ms"
            f"   mean {statistics.fmean(values) * 1000:6.2f} ms"
        )
        if route in ("answer", "input"):
            hit = p99 < 20
            ok = ok and hit
            line += "   (p99 < 20 ms: " + ("yes" if hit else "NO") + ")"
        print(line)
    return ok


def ended_conversations(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM sessions WHERE status = 'ended'").fetchone()
    return int(count)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--think", type=float, default=0.25, help="seconds between webhooks")
    parser.add_argument("--questions", type=int, default=4)
    parser.add_argument("--duration", type=float, default=60.0, help="stop after (seconds)")
    parser.add_argument("--profile", help="write the server's cProfile stats to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "bench_voice.yaml").write_text(voice_flow(args.questions), encoding="utf-8")
        port = free_port()
        ctx = mp.get_context("spawn")
        ready = ctx.Queue()
        server = ctx.Process(target=run_server, args=(tmp, port, ready, args.profile))
        server.start()
        try:
            base = await asyncio.to_thread(ready.get, True, 30)
            load = Load(base, args.questions, time.perf_counter() + args.duration, args.think)
            elapsed = await load.run(args.calls, args.concurrency)
        finally:
            server.terminate()  # SIGTERM: convo stops gracefully (and writes the profile)
            await asyncio.to_thread(server.join, 30)
        ok = report(load, elapsed, args.concurrency)
        ended = None
        try:
            ended = ended_conversations(Path(tmp, "convo.db"))
        except sqlite3.Error as exc:
            print(f"  (could not count ended conversations: {exc})")
        if ended is not None:
            print(f"  conversations ended by the status webhook: {ended} of {load.completed + 1}")
        if load.errors:
            print(f"  {len(load.errors)} error(s), first: {load.errors[0]}")
        return 0 if ok and not load.errors else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))

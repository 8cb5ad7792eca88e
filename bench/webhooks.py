"""Inbound SMS webhooks per second and their latency: convo against a bare aiohttp handler.

Usage: .venv/bin/python bench/webhooks.py [--conversations 1000] [--messages 3]
       [--concurrency 100] [--think 0] [--duration 60] [--profile FILE]

Three child processes, each with its own event loop, all on 127.0.0.1:

* the Vonage simulator (``convo.providers.simulators.vonage``), which receives convo's
  replies (``POST /sms/json``) and counts them (``GET /_bench/sent``, added here);
* convo (``convo.web.server.serve``): SQLite in a temp dir, one Vonage line with a
  one-question flow, signed webhooks (``signature_secret``, sha256), the provider's
  ``base_url`` at the simulator and its ``rate_limit`` raised to 10 000/s (Vonage's default
  30/s would make the outbox, not the webhook, the subject of the run);
* a bare aiohttp app whose handler only parses the form and answers 200 (the ceiling).

The load generator (this process, one aiohttp client) plays ``--conversations``
conversations against each server in turn, at most ``--concurrency`` at once: each from its
own number, sending ``--messages`` inbound webhooks in sequence (the next one after the
previous answer), exactly as Vonage posts them (form fields, signed; bodies are built and
signed before the clock starts). Each run stops early after ``--duration`` seconds.
``--think`` is a person's pause before each text, drawn from 0.5x to 1.5x of it: with the
default 0 the generator saturates the server (requests/s is its capacity, and latency is
mostly queueing: by Little's law ~ concurrency / throughput); with ``--think 0.5`` 100
people offer about 200 texts/s, and p50/p99 show the cost of a webhook under that load. The
flow answers every text with one reply (the question, then a goodbye, then the question of a
new conversation), so after the run every inbound text should have its reply at the
simulator; the script waits up to 30 s for them.

Prints requests/s and p50/p99 latency for both servers, the ratio of their requests/s, and
whether every reply reached the simulator. Target (issue): convo at least 30% of the bare
handler's requests/s, with p99 under 50 ms. ``--profile FILE`` runs convo under cProfile
and writes its stats to FILE (read with ``python -m pstats FILE``).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from _common import free_port, percentile, serve_convo
from aiohttp import web

from convo.providers.vonage_webhooks import signature

LINE = "+3225550120"
KEY, SECRET, SIG_SECRET = "bench-key", "bench-secret", "bench-signature-secret"
FLOW = """\
flow: bench_sms
languages: [en]
channels: [sms]
start: ask
steps:
  ask:
    ask: {text: "Which day suits you?", expect: text, save_as: day}
    then: done
  done:
    say: "Thanks, see you on {{ day }}."
    end: true
"""


# -- the three servers (child processes) -------------------------------------------------


def run_simulator(port: int, ready: Any) -> None:
    from convo.providers.simulators.vonage import VonageSimulator

    sim = VonageSimulator(
        api_key=KEY, api_secret=SECRET, signature_secret=SIG_SECRET, signature_method="sha256"
    )

    async def sent(_request: web.Request) -> web.Response:
        return web.json_response({"sent": len(sim.sent)})

    sim.app.router.add_get("/_bench/sent", sent)
    serve_app(sim.app, port, ready)


def run_bare(port: int, ready: Any) -> None:
    async def inbound(request: web.Request) -> web.Response:
        await request.post()
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/webhooks/vonage/inbound", inbound)
    serve_app(app, port, ready)


def serve_app(app: web.Application, port: int, ready: Any) -> None:
    async def main() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready.put(f"http://127.0.0.1:{port}")
        await asyncio.Event().wait()  # until SIGTERM

    asyncio.run(main())


def run_convo(tmp: str, port: int, sim_url: str, ready: Any, profile: str | None) -> None:
    import logging

    from convo.config import parse_settings

    logging.basicConfig(level=logging.WARNING)
    settings = parse_settings(
        {
            "server": {"host": "127.0.0.1", "port": port, "shutdown_timeout": 5},
            "store": {"url": f"sqlite:///{tmp}/convo.db"},
            "flows": {"paths": [f"{tmp}/bench_sms.yaml"]},
            "webhooks": {"rejected_dir": f"{tmp}/rejected"},
            "lines": [{"number": LINE, "provider": "vonage", "flow": "bench_sms"}],
            "providers": {
                "vonage": {
                    "api_key": KEY,
                    "api_secret": SECRET,
                    "signature_secret": SIG_SECRET,
                    "signature_method": "sha256",
                    "base_url": sim_url,
                    "rate_limit": 10000.0,
                }
            },
        },
        source="bench",
        env={},
    )
    serve_convo(settings, ready, profile)


# -- the load generator --------------------------------------------------------------------


def inbound_body(sender: str, text: str) -> bytes:
    """One inbound SMS webhook body, as Vonage posts it (form fields, signed)."""
    fields = {
        "api-key": KEY,
        "msisdn": sender.lstrip("+"),
        "to": LINE.lstrip("+"),
        "messageId": uuid.uuid4().hex[:16].upper(),
        "text": text,
        "type": "text",
        "keyword": text.split()[0].upper(),
        "message-timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "timestamp": str(int(time.time())),
        "nonce": uuid.uuid4().hex,
    }
    fields["sig"] = signature(fields, SIG_SECRET, "sha256")
    return urlencode(fields).encode()


class Load:
    """Plays conversations against one server and keeps each request's latency."""

    def __init__(
        self, base: str, conversations: list[list[bytes]], deadline: float, think: float
    ) -> None:
        self.url = base + "/webhooks/vonage/inbound"
        self.conversations = conversations
        self.deadline = deadline
        self.think = think
        self.rng = random.Random(42)
        self.latency: list[float] = []
        self.errors: list[str] = []
        self.accepted = 0

    async def post(self, http: aiohttp.ClientSession, body: bytes) -> None:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        start = time.perf_counter()
        async with http.post(self.url, data=body, headers=headers) as resp:
            text = await resp.read()
            self.latency.append(time.perf_counter() - start)
            if resp.status == 200:
                self.accepted += 1
            else:
                self.errors.append(f"{resp.status} {text[:200]!r}")

    async def run(self, concurrency: int) -> float:
        queue: asyncio.Queue[list[bytes]] = asyncio.Queue()
        for bodies in self.conversations[1:]:
            queue.put_nowait(bodies)

        async def worker(http: aiohttp.ClientSession) -> None:
            while time.perf_counter() < self.deadline:
                try:
                    bodies = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                for body in bodies:  # one person's texts, in sequence
                    if self.think:
                        await asyncio.sleep(self.think * (0.5 + self.rng.random()))
                    await self.post(http, body)

        connector = aiohttp.TCPConnector(limit=concurrency)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            for body in self.conversations[0]:  # warm-up (imports, first SQLite pages)
                await self.post(http, body)
            self.latency.clear()
            start = time.perf_counter()
            await asyncio.gather(*(worker(http) for _ in range(concurrency)))
            return time.perf_counter() - start


def summary(name: str, load: Load, elapsed: float) -> float:
    rps = len(load.latency) / elapsed
    print(
        f"  {name:<5} {len(load.latency):6d} requests in {elapsed:6.2f} s: {rps:8,.0f} req/s"
        f"   p50 {percentile(load.latency, 0.5):6.2f} ms"
        f"   p99 {percentile(load.latency, 0.99):6.2f} ms"
        f"   max {max(load.latency) * 1000:7.2f} ms"
        f"   mean {statistics.fmean(load.latency) * 1000:6.2f} ms"
    )
    return rps


def conversations(first: int, count: int, messages: int) -> list[list[bytes]]:
    texts = ["hello", "monday", "hello again", "tuesday"]
    return [
        [inbound_body(f"+32470{first + n:06d}", texts[i % len(texts)]) for i in range(messages)]
        for n in range(count + 1)  # +1: the warm-up conversation
    ]


async def replies_at_simulator(sim_url: str, expected: int, timeout: float = 30.0) -> int:
    deadline = time.perf_counter() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            async with http.get(sim_url + "/_bench/sent") as resp:
                sent = int((await resp.json())["sent"])
            if sent >= expected or time.perf_counter() > deadline:
                return sent
            await asyncio.sleep(0.1)


async def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=3, help="texts per conversation")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--think", type=float, default=0.0, help="seconds before each text")
    parser.add_argument("--duration", type=float, default=60.0, help="stop after (seconds)")
    parser.add_argument("--profile", help="write convo's cProfile stats to this file")
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    ready = ctx.Queue()
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "bench_sms.yaml").write_text(FLOW, encoding="utf-8")
        sim_port, bare_port, convo_port = free_port(), free_port(), free_port()
        children = [ctx.Process(target=run_simulator, args=(sim_port, ready))]
        children.append(ctx.Process(target=run_bare, args=(bare_port, ready)))
        sim_url = f"http://127.0.0.1:{sim_port}"
        convo_args = (tmp, convo_port, sim_url, ready, args.profile)
        children.append(ctx.Process(target=run_convo, args=convo_args))
        for child in children:
            child.start()
        try:
            for _ in children:
                await asyncio.to_thread(ready.get, True, 30)
            n, m = args.conversations, args.messages
            print(f"{n} conversations x {m} texts, {args.concurrency} at once, "
                  f"think {args.think} s:")  # fmt: skip
            bare = Load(f"http://127.0.0.1:{bare_port}", conversations(0, n, m),
                        time.perf_counter() + args.duration, args.think)  # fmt: skip
            bare_rps = summary("bare", bare, await bare.run(args.concurrency))
            convo = Load(f"http://127.0.0.1:{convo_port}", conversations(n + 1, n, m),
                         time.perf_counter() + args.duration, args.think)  # fmt: skip
            convo_rps = summary("convo", convo, await convo.run(args.concurrency))
            expected = convo.accepted
            sent = await replies_at_simulator(sim_url, expected)
        finally:
            for child in children:
                child.terminate()  # SIGTERM: convo stops gracefully (and writes the profile)
            for child in children:
                await asyncio.to_thread(child.join, 30)
    ratio = convo_rps / bare_rps
    p99 = percentile(convo.latency, 0.99)
    hit = ratio >= 0.30 and p99 < 50
    print(f"  convo/bare requests/s: {ratio:.1%}; convo p99 {p99:.2f} ms")
    print(f"  target (>= 30% and p99 < 50 ms): {'met' if hit else 'MISSED'}")
    verdict = "all" if sent == expected else "NOT all"
    print(f"  replies at the simulator: {sent} of {expected} ({verdict})")
    for load, name in ((bare, "bare"), (convo, "convo")):
        if load.errors:
            print(f"  {name}: {len(load.errors)} error(s), first: {load.errors[0]}")
    return 0 if hit and sent == expected and not (bare.errors or convo.errors) else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))

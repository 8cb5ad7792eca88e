"""Inbound SMS webhooks per second and their latency: convo against a bare aiohttp handler.

Usage: .venv/bin/python bench/webhooks.py [--seconds 10] [--concurrency 100]
       [--messages 3] [--share 0.30] [--profile FILE] [--store sqlite|postgresql|compare]
       [--rounds 2] [--load wrk|python]

Four child processes, each with its own event loop, all on 127.0.0.1:

* the Vonage simulator (``convo.simulators.vonage``), which receives convo's
  replies (``POST /sms/json``) and counts them (``GET /_bench/sent``, added here);
* convo (``convo.web.server.serve``): SQLite in a temp dir, one Vonage line with a
  one-question flow, signed webhooks (``signature_secret``, sha256), the provider's
  ``base_url`` at the simulator and its ``rate_limit`` raised to 10 000/s (Vonage's default
  30/s would make the outbox, not the webhook, the subject of the run);
* a bare aiohttp app whose handler only parses the form and answers 200 (the ceiling);
* a send-only app whose handler parses the form, sends one reply to the simulator with
  convo's provider client and answers 200: no store, no flow. It is the floor under any
  design that answers each text from the process that took it.

The load generator (this process, one aiohttp client) plays conversations: each from its own
number, ``--messages`` inbound webhooks in sequence, exactly as Vonage posts them (form
fields, signed). The flow answers every text with one reply (the question, then a goodbye,
then the question of a new conversation), so every text has exactly one reply.

1. **Capacity.** ``--concurrency`` conversations at once, each posting its next text as soon
   as the previous one is answered, for ``--seconds``, first against the bare handler, then
   against convo. Requests/s is each server's capacity; the latency of such a run is mostly
   queueing (Little's law: ~ concurrency / throughput). For convo the run also counts
   replies/s: replies at the simulator divided by the time until the last of them arrived
   (acknowledging is not enough: each text must be answered).
2. **Latency under load.** Texts arrive at a fixed rate for ``--seconds``, spread over
   conversations with at most ``--concurrency`` requests in flight: at the target rate,
   ``--share`` (30%) of the bare handler's capacity, when convo's capacity reaches it, and
   at 25%, 50% and 80% of convo's capacity (``--rate R``: at R only). Latency is measured
   from when each text was due, not from when it could be sent, so a stall counts in full
   (no coordinated omission). Each paced run starts after ``--settle`` idle seconds (10),
   and its first second is a warm-up.

Prints requests/s and p50/p99 for every run, and the verdict on the issue's target: convo's
capacity (the smaller of requests/s and replies/s) at least 30% of the bare handler's, with
p99 under 50 ms at that load. ``--profile FILE`` runs convo under cProfile and writes its
stats to FILE (read with ``python -m pstats FILE``).

``--store postgresql`` runs convo on PostgreSQL (a schema of its own on the server at
``CONVO_TEST_POSTGRES_URL``, default postgresql://postgres@127.0.0.1:5432/test, dropped
after) instead of SQLite. ``--store compare`` measures only convo's capacity, once on
SQLite and once on PostgreSQL, side by side in one run (``--rounds`` times each,
alternating), and prints both, each round's ratio and their median against the target: one
process on PostgreSQL at least 70% of one process on SQLite (``--profile``: of the
PostgreSQL runs). Its load generator is wrk (``--load wrk``, the default: C, one thread, as
in bench/workers.py), which leaves the stores the cores an aiohttp client here would take,
or this process's client (``--load python``, as the other runs here). There each
PostgreSQL run has a database of its own, and the run also
prints what each answered text cost the database: round trips (convo's asyncpg calls,
counted in its process), transactions committed and rows written (the server's
``pg_stat_database`` for that database, read after convo stopped).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import math
import multiprocessing as mp
import os
import signal
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from _common import (
    free_port,
    percentile,
    postgres_schema,
    serve_app,
    serve_convo,
    serve_counting_vonage,
    vonage_convo,
    wrk,
)
from aiohttp import web

from convo.providers.vonage_webhooks import signature

ADMIN_URL = os.environ.get("CONVO_TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/test"
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
    serve_counting_vonage((KEY, SECRET, SIG_SECRET), port, ready)


def run_bare(port: int, ready: Any) -> None:
    async def inbound(request: web.Request) -> web.Response:
        await request.post()
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/webhooks/vonage/inbound", inbound)
    serve_app(app, port, ready)


def run_send_only(port: int, sim_url: str, ready: Any) -> None:
    """The floor under any design that answers each text from this process: parse the form,
    send one reply to the simulator with convo's provider client (httpx over aiohttp, as
    convo's Vonage adapter does, unsigned), answer 200. No store, no flow, no signature."""
    from convo.providers.http import provider_client

    client = provider_client()

    async def inbound(request: web.Request) -> web.Response:
        form = await request.post()
        reply = {
            **{"api_key": KEY, "api_secret": SECRET, "type": "text"},
            **{"from": str(form["to"]), "to": str(form["msisdn"]), "text": "Which day?"},
        }
        response = await client.post(f"{sim_url}/sms/json", data=reply)
        response.raise_for_status()
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/webhooks/vonage/inbound", inbound)
    serve_app(app, port, ready)


def run_convo(
    tmp: str,
    port: int,
    sim_url: str,
    ready: Any,
    profile: str | None,
    store_url: str | None = None,
    counts_file: str | None = None,
) -> None:
    import logging

    logging.basicConfig(level=logging.WARNING)
    if counts_file is not None:
        count_round_trips(counts_file)
    settings = vonage_convo(
        tmp,
        flow="bench_sms",
        line=LINE,
        credentials=(KEY, SECRET, SIG_SECRET),
        provider_url=sim_url,
        rate_limit=10000.0,
        server={"port": port, "shutdown_timeout": 5},
        store_url=store_url,
    )
    serve_convo(settings, ready, profile)


def count_round_trips(counts_file: str) -> None:
    """Count this process's asyncpg round trips (a statement with parameters, a batch of
    them, or one simple query, which may hold several statements); on SIGUSR1, write the
    count to ``counts_file``."""
    import signal

    from asyncpg.connection import Connection

    calls = [0]
    execute = Connection.execute
    extended, many = getattr(Connection, "_execute"), getattr(Connection, "_executemany")  # noqa: B009

    async def simple(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        calls[0] += not args  # with arguments it goes through _execute, counted there
        return await execute(self, query, *args, **kwargs)

    async def one(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return await extended(self, *args, **kwargs)

    async def batch(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return await many(self, *args, **kwargs)

    for name, counted in (("execute", simple), ("_execute", one), ("_executemany", batch)):
        setattr(Connection, name, counted)
    signal.signal(signal.SIGUSR1, lambda *_: Path(counts_file).write_text(str(calls[0])))


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[tuple[str, str]]:
    """A fresh database on the server at ``CONVO_TEST_POSTGRES_URL``, dropped on exit: its
    URL and its name (its ``pg_stat_database`` row counts convo's work alone)."""
    import secrets
    import urllib.parse

    import asyncpg

    name = f"convo_bench_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
        yield urllib.parse.urlsplit(ADMIN_URL)._replace(path=f"/{name}").geturl(), name
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


async def database_counts(name: str) -> tuple[int, int]:
    """Transactions committed and rows written (inserted + updated + deleted) in database
    ``name``, read from another database once the server has its statistics (a backend
    sends them when it exits, or within a second of a transaction)."""
    import asyncpg

    admin = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        await asyncio.sleep(1.5)
        await admin.execute("SELECT pg_stat_clear_snapshot()")
        row = await admin.fetchrow(
            "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted "
            "FROM pg_stat_database WHERE datname = $1",
            name,
        )
        assert row is not None, f"no statistics for database {name}"
        return int(row[0]), int(row[1])
    finally:
        await admin.close()


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


class People:
    """Conversations to play, signed before any clock starts: ``next()`` is a new number's
    list of texts. ``cycle`` conversations are made; with ``repeat`` they are then played
    again (for the bare handler, which keeps nothing), else ``next()`` fails."""

    TEXTS = ("hello", "monday", "hello again", "tuesday")

    def __init__(self, prefix: str, count: int, messages: int, *, repeat: bool = False) -> None:
        made = [
            [inbound_body(f"{prefix}{n:06d}", self.TEXTS[i % 4]) for i in range(messages)]
            for n in range(count)
        ]
        self._next = itertools.cycle(made) if repeat else iter(made)

    def next(self) -> list[bytes]:
        try:
            return next(self._next)
        except StopIteration:
            raise SystemExit("bench: out of conversations; raise --budget") from None


class Run:
    """One run against one server: every request's latency and what went wrong."""

    def __init__(self, base: str) -> None:
        self.url = base + "/webhooks/vonage/inbound"
        self.latency: list[float] = []
        self.errors: list[str] = []
        self.accepted = 0
        self.warm_accepted = 0  # texts of the warm-up answered 200: they get replies too
        self.elapsed = 0.0

    async def post(self, http: aiohttp.ClientSession, body: bytes, due: float) -> None:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        async with http.post(self.url, data=body, headers=headers) as resp:
            text = await resp.read()
            self.latency.append(time.perf_counter() - due)
            if resp.status == 200:
                self.accepted += 1
            else:
                self.errors.append(f"{resp.status} {text[:200]!r}")

    @property
    def rps(self) -> float:
        return len(self.latency) / self.elapsed

    def line(self, name: str) -> str:
        return (
            f"  {name:<22} {len(self.latency):7d} requests in {self.elapsed:5.2f} s:"
            f" {self.rps:7,.0f} req/s   p50 {percentile(self.latency, 0.5):7.2f} ms"
            f"   p99 {percentile(self.latency, 0.99):7.2f} ms"
            f"   max {max(self.latency) * 1000:7.2f} ms"
        )


def client(concurrency: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=concurrency)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30))


async def saturate(base: str, people: People, concurrency: int, seconds: float) -> Run:
    """Capacity: ``concurrency`` conversations, each text right after the previous answer."""
    run = Run(base)
    async with client(concurrency) as http:
        for body in people.next():  # warm-up (imports, first SQLite pages)
            await run.post(http, body, time.perf_counter())
        run.latency.clear()
        run.warm_accepted, run.accepted = run.accepted, 0
        start = time.perf_counter()
        stop = start + seconds

        async def person() -> None:
            while time.perf_counter() < stop:
                for body in people.next():
                    await run.post(http, body, time.perf_counter())

        await asyncio.gather(*(person() for _ in range(concurrency)))
        run.elapsed = time.perf_counter() - start
    return run


async def paced(base: str, people: People, rate: float, concurrency: int, seconds: float) -> Run:
    """Latency at ``rate`` texts/s: text k is due at start + k/rate; at most
    ``concurrency`` in flight; latency counts from the due time. The first second is a
    warm-up at the same rate (the client's connections open then), not counted."""
    run = Run(base)
    warm = int(rate)
    total = warm + int(rate * seconds)
    texts: list[bytes] = []
    while len(texts) < total:  # signed before the clock starts
        texts.extend(people.next())
    slots = asyncio.Semaphore(concurrency)
    async with client(concurrency) as http:
        start = time.perf_counter() + 0.5

        async def send(k: int) -> None:
            due = start + k / rate
            await asyncio.sleep(due - time.perf_counter())
            async with slots:
                await run.post(http, texts[k], due)

        await asyncio.gather(*(send(k) for k in range(warm)))
        run.latency.clear()
        run.warm_accepted, run.accepted = run.accepted, 0
        start = time.perf_counter()
        await asyncio.gather(*(send(k) for k in range(warm, total)))
        run.elapsed = time.perf_counter() - start - warm / rate
    return run


SPREAD = 2000
"""With wrk, a person's texts are this many posts apart."""
WARM_UP = 30


@dataclass
class Load:
    """One saturated run, whichever generator made it: the texts answered 200 (the warm-up's
    and the measured run's), the measured run's length, its ack latency and what failed."""

    warm: int
    accepted: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: list[str]

    @property
    def rps(self) -> float:
        return self.accepted / self.seconds

    def line(self, name: str) -> str:
        return (
            f"  {name:<22} {self.accepted:7d} answered in {self.seconds:5.2f} s:"
            f" {self.rps:7,.0f} req/s   p50 {self.p50_ms:7.2f} ms   p99 {self.p99_ms:7.2f} ms"
        )


async def saturate_python(url: str, people: People, args: argparse.Namespace) -> Load:
    """Capacity under this process's aiohttp client (bench/webhooks.py's)."""
    run = await saturate(url, people, args.concurrency, args.seconds)
    p50, p99 = percentile(run.latency, 0.5), percentile(run.latency, 0.99)
    return Load(run.warm_accepted, run.accepted, run.elapsed, p50, p99, run.errors)


async def saturate_wrk(url: str, people: People, args: argparse.Namespace, tmp: Path) -> Load:
    """Capacity under wrk: ``args.concurrency`` connections for ``args.seconds``, after a
    warm-up of WARM_UP texts from this process. The texts are ``people``'s conversations in
    blocks of SPREAD: each one's first text, then each one's second, and so on."""
    bodies: list[bytes] = []
    while len(bodies) < WARM_UP + args.seconds * 4000:  # more than any run here takes
        block = [people.next() for _ in range(SPREAD)]
        for i in range(args.messages):
            bodies.extend(texts[i] for texts in block)
    path = tmp / "texts.txt"
    path.write_bytes(b"\n".join(bodies) + b"\n")
    warm = Run(url)
    async with aiohttp.ClientSession() as http:
        for body in bodies[:WARM_UP]:
            await warm.post(http, body, time.perf_counter())
    out = await asyncio.to_thread(
        wrk, warm.url, path, WARM_UP, args.concurrency, args.seconds, str(tmp)
    )
    errors = warm.errors
    if out["status_errors"] or out["socket_errors"]:
        errors.append(f"{out['status_errors']} non-2xx, {out['socket_errors']} socket errors")
    if out["requests"] > len(bodies) - WARM_UP:
        errors.append(f"wrk ran out of distinct texts ({len(bodies)})")
    accepted = out["requests"] - out["status_errors"]
    seconds = out["duration_us"] / 1e6
    return Load(warm.accepted, accepted, seconds, out["p50_us"] / 1e3, out["p99_us"] / 1e3, errors)


async def sent_at_simulator(http: aiohttp.ClientSession, sim_url: str) -> int:
    async with http.get(sim_url + "/_bench/sent") as resp:
        return int((await resp.json())["sent"])


async def replies(sim_url: str, expected: int, since: float, timeout: float = 60.0) -> float:
    """Wait until ``expected`` replies reached the simulator; returns the seconds from
    ``since`` until the last arrived (inf when they did not all arrive in time)."""
    deadline = time.perf_counter() + timeout
    async with aiohttp.ClientSession() as http:
        while (sent := await sent_at_simulator(http, sim_url)) < expected:
            if time.perf_counter() > deadline:
                print(f"  only {sent} of {expected} replies reached the simulator")
                return math.inf
            await asyncio.sleep(0.01)
    return time.perf_counter() - since


async def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each run")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--messages", type=int, default=3, help="texts per conversation")
    parser.add_argument("--share", type=float, default=0.30, help="paced load / bare capacity")
    parser.add_argument(
        "--budget", type=int, default=20000, help="conversations signed for convo's runs"
    )
    parser.add_argument("--rate", type=float, help="paced run at this many texts/s instead")
    parser.add_argument(
        "--settle", type=float, default=10.0, help="idle seconds before each paced run"
    )
    parser.add_argument("--profile", help="write convo's cProfile stats to this file")
    parser.add_argument(
        "--store",
        choices=["sqlite", "postgresql", "compare"],
        default="sqlite",
        help="convo's store; compare: SQLite against PostgreSQL, capacity only",
    )
    parser.add_argument("--rounds", type=int, default=2, help="--store compare: runs of each")
    parser.add_argument(
        "--load",
        choices=("wrk", "python"),
        default="wrk",
        help="--store compare: the load generator (wrk, or this process's aiohttp client)",
    )
    args = parser.parse_args()
    if args.store == "compare":
        return await compare_stores(args)
    if args.store == "postgresql":
        async with postgres_schema() as url:
            return await benchmark(args, url)
    return await benchmark(args, None)


async def benchmark(args: argparse.Namespace, store_url: str | None) -> int:
    """The four runs of the module docstring; convo on ``store_url`` (None: SQLite)."""
    ctx = mp.get_context("spawn")
    ready = ctx.Queue()
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "bench_sms.yaml").write_text(FLOW, encoding="utf-8")
        sim_port, bare_port, convo_port = free_port(), free_port(), free_port()
        floor_port = free_port()
        sim_url = f"http://127.0.0.1:{sim_port}"
        children = [
            ctx.Process(target=run_simulator, args=(sim_port, ready)),
            ctx.Process(target=run_bare, args=(bare_port, ready)),
            ctx.Process(target=run_send_only, args=(floor_port, sim_url, ready)),
            ctx.Process(
                target=run_convo,
                args=(tmp, convo_port, sim_url, ready, args.profile, store_url),
            ),
        ]
        for child in children:
            child.start()
        try:
            for _ in children:
                await asyncio.to_thread(ready.get, True, 30)
            bare_url, convo_url = f"http://127.0.0.1:{bare_port}", f"http://127.0.0.1:{convo_port}"
            n, m = args.budget, args.messages
            # Valid Belgian mobile numbers (+32 47x xx xx xx): convo refuses impossible ones.
            bare_people = People("+32470", 5000, m, repeat=True)
            people = People("+32471", n, m)  # convo's: each number once
            print(f"{args.concurrency} conversations at once, {args.messages} texts each, "
                  f"{args.seconds:g} s per run:")  # fmt: skip
            bare = await saturate(bare_url, bare_people, args.concurrency, args.seconds)
            print(bare.line("bare, saturated"))
            floor_url = f"http://127.0.0.1:{floor_port}"
            floor = await saturate(floor_url, bare_people, args.concurrency, args.seconds)
            print(floor.line("send-only, saturated"))
            async with aiohttp.ClientSession() as http:  # the floor's replies: not convo's
                before = await sent_at_simulator(http, sim_url)
            start = time.perf_counter()
            convo = await saturate(convo_url, people, args.concurrency, args.seconds)
            print(convo.line("convo, saturated"))
            answered = convo.warm_accepted + convo.accepted
            done = await replies(sim_url, before + answered, start)
            replies_rps = answered / done
            print(f"  {'':<22} replies: {replies_rps:,.0f}/s (the last arrived "
                  f"{done - convo.elapsed:.2f} s after the last request)")  # fmt: skip
            capacity = min(convo.rps, replies_rps)
            ratio = capacity / bare.rps
            # Latency at the target load, when convo can carry it (at a load it cannot, a
            # paced run only measures a growing queue), and at fractions of its capacity.
            target_rate = args.share * bare.rps
            rates = [target_rate] if capacity >= target_rate else []
            rates += [f * capacity for f in (0.25, 0.5, 0.8)]
            loads: list[tuple[float, Run]] = []
            for rate in [args.rate] if args.rate else rates:
                # Steady state: let convo finish what the run before left behind (measured:
                # straight after the saturated run, p99 at 25% load was 56-61 ms; 15 ms
                # after a pause).
                await asyncio.sleep(args.settle)
                async with aiohttp.ClientSession() as http:
                    before = await sent_at_simulator(http, sim_url)
                load = await paced(convo_url, people, rate, args.concurrency, args.seconds)
                print(load.line(f"convo, {rate:,.0f} texts/s"))
                loads.append((rate, load))
                answered = load.warm_accepted + load.accepted
                done = await replies(sim_url, before + answered, time.perf_counter())
                if done == math.inf:
                    failures.append(
                        f"not every reply of the {rate:.0f}/s run reached the simulator"
                    )
        finally:
            # convo first, while the simulator still answers: its graceful stop drains the
            # outbox (and writes the profile); then the others.
            for child in reversed(children):
                child.terminate()  # SIGTERM
                await asyncio.to_thread(child.join, 30)
    print(f"  send-only / bare: {floor.rps / bare.rps:.1%} (the most any design that sends "
          "each reply from the webhook's process could reach here)")  # fmt: skip
    print(f"  convo capacity / bare: {ratio:.1%} (target >= {args.share:.0%})")
    at_target = {rate: load for rate, load in loads}.get(target_rate)
    if at_target is None:
        print("  p99 at the target load: not measured (convo's capacity is below it)")
    else:
        print(f"  p99 at the target load: {percentile(at_target.latency, 0.99):.2f} ms (< 50 ms?)")
    hit = at_target is not None and percentile(at_target.latency, 0.99) < 50
    print(f"  target: {'met' if hit else 'MISSED'}")
    runs = [(bare, "bare"), (floor, "send-only"), (convo, "convo")]
    for run, name in runs + [(load, f"convo at {rate:.0f}/s") for rate, load in loads]:
        if run.errors:
            failures.append(f"{name}: {len(run.errors)} error(s), first: {run.errors[0]}")
    for failure in failures:
        print(f"  {failure}")
    return 0 if hit and not failures else 1


async def compare_stores(args: argparse.Namespace) -> int:
    """convo's capacity on SQLite and on PostgreSQL, alternating, ``--rounds`` each: the
    simulator runs throughout; each convo is a fresh process on a fresh store."""
    ctx = mp.get_context("spawn")
    ready = ctx.Queue()
    sim_port = free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    simulator = ctx.Process(target=run_simulator, args=(sim_port, ready))
    simulator.start()
    figures: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
    failures: list[str] = []
    prefixes = (f"+3247{n}" for n in itertools.count(2))  # fresh numbers for every run
    try:
        await asyncio.to_thread(ready.get, True, 30)
        print(f"convo's capacity, {args.concurrency} connections at once ({args.load}), "
              f"{args.messages} texts a conversation, {args.seconds:g} s per run:")  # fmt: skip
        for _ in range(args.rounds):
            for store in ("sqlite", "postgresql"):
                async with contextlib.AsyncExitStack() as stack:
                    url = database = counts_file = None
                    tmp = stack.enter_context(tempfile.TemporaryDirectory())
                    if store == "postgresql":
                        url, database = await stack.enter_async_context(postgres_database())
                        counts_file = str(Path(tmp, "round_trips"))
                    Path(tmp, "bench_sms.yaml").write_text(FLOW, encoding="utf-8")
                    port = free_port()
                    profile = args.profile if store == "postgresql" else None
                    child = ctx.Process(
                        target=run_convo,
                        args=(tmp, port, sim_url, ready, profile, url, counts_file),
                    )
                    child.start()
                    try:
                        await asyncio.to_thread(ready.get, True, 30)
                        people = People(next(prefixes), args.budget, args.messages)
                        async with aiohttp.ClientSession() as http:
                            before = await sent_at_simulator(http, sim_url)
                        start = time.perf_counter()
                        base = f"http://127.0.0.1:{port}"
                        if args.load == "wrk":
                            run = await saturate_wrk(base, people, args, Path(tmp))
                        else:
                            run = await saturate_python(base, people, args)
                        answered = run.warm + run.accepted
                        done = await replies(sim_url, before + answered, start)
                        if counts_file is not None and child.pid is not None:
                            os.kill(child.pid, signal.SIGUSR1)
                            for _ in range(500):
                                if Path(counts_file).exists():
                                    break
                                await asyncio.sleep(0.01)
                    finally:
                        child.terminate()
                        await asyncio.to_thread(child.join, 30)
                    capacity = min(run.rps, answered / done)
                    figures[store].append(capacity)
                    print(run.line(f"{store}, saturated"))
                    print(f"  {'':<22} replies: {answered / done:,.0f}/s; capacity "
                          f"{capacity:,.0f} texts answered/s")  # fmt: skip
                    if database is not None and counts_file is not None:
                        trips = int(Path(counts_file).read_text() or 0)
                        commits, written = await database_counts(database)
                        print(f"  {'':<22} per text answered: {trips / answered:.2f} round "
                              f"trips, {commits / answered:.2f} transactions, "
                              f"{written / answered:.2f} rows written")  # fmt: skip
                    if run.errors:
                        failures.append(f"{store}: {len(run.errors)} error(s): {run.errors[0]}")
    finally:
        simulator.terminate()
        await asyncio.to_thread(simulator.join, 30)
    sqlite, postgres = figures["sqlite"], figures["postgresql"]
    # Each round's pair ran side by side (one after the other, minutes apart at most): the
    # median of the rounds' ratios is steadier on a shared machine than a ratio of means.
    ratios = [p / q for p, q in zip(postgres, sqlite, strict=True)]
    ratio = statistics.median(ratios)
    print(f"  SQLite: {', '.join(f'{f:,.0f}' for f in sqlite)} texts answered/s")
    print(f"  PostgreSQL: {', '.join(f'{f:,.0f}' for f in postgres)} texts answered/s")
    print(f"  PostgreSQL / SQLite by round: {', '.join(f'{r:.0%}' for r in ratios)}")
    print(f"  PostgreSQL / SQLite, median of the rounds: {ratio:.1%} (target >= 70%): "
          f"{'met' if ratio >= 0.7 else 'MISSED'}")  # fmt: skip
    for failure in failures:
        print(f"  {failure}")
    return 0 if ratio >= 0.7 and not failures else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))

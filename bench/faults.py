"""Fault injection: convo under real faults, counting what reaches the phone. A report, not a
test: it prints one table and exits 0.

Usage: .venv/bin/python bench/faults.py [--only NAME] [--quick] [--texts 10000]
       [--contacts 500] [--kill-at 0.4] [--outage 60] [--lock 30] [--rate 20]
       [--slow 300] [--normal 200] [--keepalive 15] [--concurrency N]

Everything runs on 127.0.0.1 in child processes: the Vonage simulator (the provider, which
counts convo's replies) and ``convo serve`` with a SQLite file in a temp dir, one Vonage line
whose flow echoes every text (``ready`` to a contact's first text, ``got TEXT`` to each next
one), so every text has exactly one reply and each reply names its text. This process plays
the provider's side of inbound: signed webhooks, each contact's texts in order, a text
resent (same ``messageId``, fresh signature) until convo answers it 2xx, after
``Retry-After`` when given, as Vonage retries. Every loop is bounded in count and time.

For each text the report checks its reply at the simulator: *lost* (acknowledged, never
answered), *duplicates* (answered more than once) and *order violations* (a contact's
replies out of the order of its texts). Scenarios (``--only NAME``):

* ``sigkill``: a burst of ``--texts`` from ``--contacts`` contacts; convo is SIGKILLed once
  ``--kill-at`` of them are acked, restarted on the same SQLite file, the unacked texts are
  resent and the outbox drains. Proves a crash loses nothing stored and sends at most one
  reply twice per kill (a send whose outcome was not recorded yet).
* ``provider-503``: a gate in front of the simulator answers 503 to every send for
  ``--outage`` seconds while texts arrive at ``--rate``/s, then forwards again. Proves the
  outbox retries 5xx without loss, duplicates or reordering; reports the drain time.
* ``store-locked``: another connection holds ``BEGIN EXCLUSIVE`` on the SQLite file for
  ``--lock`` seconds while texts arrive at ``--rate``/s. Proves webhooks are answered 503 with
  ``Retry-After`` while the store cannot write (nothing is acked that is not stored) and that
  everything is answered once after release, without a restart.
* ``slow-clients``: ``--slow`` connections send a partial request head and stall, while
  ``--normal`` ordinary webhooks are timed. Reports their p50/p99 and how long the stalled
  connections stay open (``[server] keepalive_timeout``, set to ``--keepalive``).
* ``fuzz``: runs the route fuzz test (``tests/**/test_fuzz*.py``) with ``pytest -q``, if the
  project has one.

``--quick`` divides counts and durations by 10 (a smoke run); the lock is kept at least 8 s,
longer than the store's 5 s busy timeout, or no webhook would wait long enough to be refused.
Convo's Vonage ``rate_limit`` is raised to 1000/s (the default 30/s would make draining the
subject of every run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import multiprocessing as mp
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from _common import (
    free_port,
    percentile,
    serve_convo,
    serve_counting_vonage,
    vonage_convo,
    wait_ready,
)
from aiohttp import web

from convo.providers.vonage_webhooks import signature

ROOT = Path(__file__).resolve().parent.parent
LINE = "+3225550120"
KEY, SECRET, SIG_SECRET = "faults-key", "faults-secret", "faults-signature-secret"
FLOW = """\
flow: faults_echo
languages: [en]
channels: [sms]
start: ask
steps:
  ask:
    ask:
      text: "{% if said is not none %}got {{ said }}{% else %}ready{% endif %}"
      expect: text
      save_as: said
    then: ask
"""
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


# -- the child processes -------------------------------------------------------------------


def run_simulator(port: int, ready: Any) -> None:
    serve_counting_vonage((KEY, SECRET, SIG_SECRET), port, ready)


def run_convo(
    tmp: str, port: int, provider_url: str, keepalive: float, concurrency: int | None, ready: Any
) -> None:
    import dataclasses
    import logging

    logging.basicConfig(level=logging.CRITICAL)  # the table is the report
    server = {"port": port, "shutdown_grace": 5, "keepalive_timeout": keepalive}
    settings = vonage_convo(
        tmp,
        flow="faults_echo",
        line=LINE,
        credentials=(KEY, SECRET, SIG_SECRET),
        provider_url=provider_url,
        rate_limit=1000.0,
        server=server,
    )
    if concurrency is not None:  # sends in flight to the provider ([outbox] concurrency)
        outbox = dataclasses.replace(settings.outbox, concurrency=concurrency)
        settings = dataclasses.replace(settings, outbox=outbox)
    serve_convo(settings, ready, None)


class Convo:
    """``convo serve`` in a child process, on a fixed port and SQLite file across restarts."""

    def __init__(
        self, tmp: str, provider_url: str, keepalive: float, concurrency: int | None
    ) -> None:
        self.ctx = mp.get_context("spawn")
        self.ready = self.ctx.Queue()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = (tmp, self.port, provider_url, keepalive, concurrency, self.ready)
        self.proc: Any = None

    async def start(self) -> None:
        self.proc = self.ctx.Process(target=run_convo, args=self.args)
        self.proc.start()
        await wait_ready(self.ready, 60)

    async def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        await asyncio.to_thread(self.proc.join, 10)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            self.proc.terminate()  # SIGTERM: a graceful stop
            await asyncio.to_thread(self.proc.join, 30)


class Gate:
    """A provider that can go down: 503 to every request while ``down``, else forwarded to
    the simulator (in this process)."""

    def __init__(self, target: str) -> None:
        self.target, self.down, self.refused = target, False, 0
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self.handle)
        self.http: aiohttp.ClientSession | None = None

    async def handle(self, request: web.Request) -> web.Response:
        if self.down or self.http is None:
            self.refused += 1
            return web.json_response({"error": "simulated outage"}, status=503)
        skip = {"host", "content-length", "transfer-encoding", "connection"}
        headers = {k: v for k, v in request.headers.items() if k.lower() not in skip}
        url = self.target + request.path_qs
        body = await request.read()
        async with self.http.request(request.method, url, data=body, headers=headers) as resp:
            payload = await resp.read()
            return web.Response(body=payload, status=resp.status, content_type=resp.content_type)

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        async with aiohttp.ClientSession() as self.http:
            try:
                yield f"http://127.0.0.1:{port}"
            finally:
                await runner.cleanup()


@dataclass
class World:
    tmp: str
    sim_url: str
    convo: Convo
    gate: Gate | None


@contextlib.asynccontextmanager
async def world(
    keepalive: float = 15.0, *, gate: bool = False, concurrency: int | None = None
) -> AsyncIterator[World]:
    """The simulator and convo (behind a :class:`Gate` with ``gate``), stopped on exit."""
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "faults_echo.yaml").write_text(FLOW, encoding="utf-8")
        ready = ctx.Queue()
        sim = ctx.Process(target=run_simulator, args=(free_port(), ready))
        sim.start()
        convo: Convo | None = None
        try:
            sim_url = await wait_ready(ready)
            async with contextlib.AsyncExitStack() as stack:
                the_gate = Gate(sim_url) if gate else None
                provider_url = sim_url
                if the_gate is not None:
                    provider_url = await stack.enter_async_context(the_gate.serving())
                convo = Convo(tmp, provider_url, keepalive, concurrency)
                await convo.start()
                yield World(tmp, sim_url, convo, the_gate)
        finally:
            if convo is not None:
                await convo.stop()
            sim.terminate()
            await asyncio.to_thread(sim.join, 30)


# -- the provider's side: texts, webhooks, retries -----------------------------------------


def contacts(count: int) -> list[str]:
    """Valid Belgian mobile numbers (convo refuses impossible ones)."""
    return [f"+32471{n:06d}" for n in range(count)]


def text_of(k: int) -> str:
    return "hello" if k == 0 else f"m{k}"


def reply_index(reply: str) -> int | None:
    """Which of a contact's texts a reply answers (the echo flow's wording)."""
    if reply == "ready":
        return 0
    if reply.startswith("got m") and reply[5:].isdigit():
        return int(reply[5:])
    return None


def inbound_body(sender: str, text: str, message_id: str) -> bytes:
    """One inbound SMS webhook as Vonage posts it, signed now (a resend is signed afresh and
    keeps its ``messageId``)."""
    fields = {
        "api-key": KEY,
        "msisdn": sender.lstrip("+"),
        "to": LINE.lstrip("+"),
        "messageId": message_id,
        "text": text,
        "type": "text",
        "keyword": text.split()[0].upper(),
        "message-timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "timestamp": str(int(time.time())),
        "nonce": uuid.uuid4().hex,
    }
    fields["sig"] = signature(fields, SIG_SECRET, "sha256")
    return urlencode(fields).encode()


@dataclass
class Provider:
    """Posts texts like Vonage: each until acked 2xx, retried after ``Retry-After`` (else
    ``backoff``), given up at ``deadline``."""

    url: str
    deadline: float
    backoff: float = 0.5
    acked: int = 0
    sent: dict[str, int] = field(default_factory=dict)  # contact -> texts acked (a prefix)
    statuses: Counter[int] = field(default_factory=Counter)  # non-2xx answers
    retry_after: set[str] = field(default_factory=set)
    failed_connections: int = 0
    resends: int = 0
    gave_up: int = 0
    latency: list[float] = field(default_factory=list)

    async def post(self, http: aiohttp.ClientSession, sender: str, k: int, msg_id: str) -> bool:
        while True:
            started = time.perf_counter()
            wait = self.backoff
            try:
                body = inbound_body(sender, text_of(k), msg_id)
                async with http.post(self.url, data=body, headers=FORM) as resp:
                    await resp.read()
                    if 200 <= resp.status < 300:
                        self.latency.append(time.perf_counter() - started)
                        self.acked += 1
                        self.sent[sender] = k + 1
                        return True
                    self.statuses[resp.status] += 1
                    if "Retry-After" in resp.headers:
                        self.retry_after.add(resp.headers["Retry-After"])
                        wait = float(resp.headers["Retry-After"])
            except (aiohttp.ClientError, TimeoutError):
                self.failed_connections += 1
            if time.monotonic() + wait > self.deadline:
                self.gave_up += 1
                return False
            self.resends += 1
            await asyncio.sleep(wait)

    async def play(self, people: list[str], texts: int, rate: float | None = None) -> None:
        """Each contact's ``texts`` in order (the next after the previous is acked); with
        ``rate``, text k of contact c is due at start + (k * contacts + c) / rate."""
        start = time.monotonic()
        timeout = aiohttp.ClientTimeout(total=30)
        connector = aiohttp.TCPConnector(limit=100)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

            async def contact(c: int, sender: str) -> None:
                for k in range(texts):
                    if rate is not None:
                        await asyncio.sleep(start + (k * len(people) + c) / rate - time.monotonic())
                    if not await self.post(http, sender, k, uuid.uuid4().hex[:16].upper()):
                        return

            await asyncio.gather(*(contact(c, p) for c, p in enumerate(people)))


# -- what reached the phones ---------------------------------------------------------------


async def replies_sent(sim_url: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(sim_url + "/_bench/sent") as resp:
        return int((await resp.json())["sent"])


async def drained(sim_url: str, expected: int, since: float, timeout: float) -> float:
    """Seconds from ``since`` (monotonic) until ``expected`` replies reached the simulator,
    then waits 2 s more for late duplicates; ``inf`` if they did not within ``timeout``."""
    deadline = time.monotonic() + timeout
    while await replies_sent(sim_url) < expected:
        if time.monotonic() > deadline:
            return float("inf")
        await asyncio.sleep(0.25)
    took = time.monotonic() - since
    await asyncio.sleep(2.0)
    return took


@dataclass
class Tally:
    acked: int = 0
    answered: int = 0
    lost: int = 0
    duplicates: int = 0
    order: int = 0
    stray: int = 0  # replies that answer no acked text
    examples: dict[str, str] = field(default_factory=dict)  # the first of each kind seen

    def extra(self) -> str:
        """The notes every fault shares: stray replies, and an example of each problem."""
        seen = "".join(f"; e.g. {kind}: {example}" for kind, example in self.examples.items())
        return f"stray {self.stray}{seen}"


async def tally(sim_url: str, acked: dict[str, int]) -> Tally:
    """Each acked text against its replies at the simulator, per contact, in send order."""
    async with aiohttp.ClientSession() as http, http.get(sim_url + "/_simulator/sent") as resp:
        messages = (await resp.json())["messages"]
    got: dict[str, list[str]] = defaultdict(list)
    for message in messages:
        got["+" + message["to"]].append(message["text"])
    result = Tally(acked=sum(acked.values()))
    for contact in sorted(acked.keys() | got.keys()):
        texts, replies = acked.get(contact, 0), got.get(contact, [])
        counts = Counter(replies)
        indexes = {reply: reply_index(reply) for reply in counts}
        answered = sum(1 for reply, k in indexes.items() if k is not None and k < texts)
        result.answered += answered
        result.lost += texts - answered
        for reply, n in counts.items():
            if indexes[reply] is None or indexes[reply] >= texts:  # type: ignore[operator]
                result.stray += n
                result.examples.setdefault("stray", f"{contact} got {reply!r}")
            elif n > 1:
                result.duplicates += n - 1
                result.examples.setdefault("duplicate", f"{contact} got {reply!r} x{n}")
        firsts = [k for k in dict.fromkeys(indexes[r] for r in replies) if k is not None]
        late = [(a, b) for a, b in itertools.pairwise(firsts) if b < a]
        result.order += len(late)
        if late:
            example = f"{contact} got the reply to text {late[0][1]} after {late[0][0]}'s"
            result.examples.setdefault("order", example)
    return result


@dataclass
class Row:
    scenario: str
    tried: str
    sent: int | str = "-"
    tally: Tally | None = None
    notes: str = ""


def scaled(value: float, quick: bool) -> float:
    return value / 10 if quick else value


# -- the scenarios --------------------------------------------------------------------------


async def kill_when_acked(convo: Convo, provider: Provider, at: int) -> float:
    """SIGKILL convo once ``at`` texts are acked, restart it; returns the restart seconds."""
    while provider.acked < at:
        await asyncio.sleep(0.01)
    await convo.kill()
    started = time.monotonic()
    await convo.start()
    return time.monotonic() - started


async def sigkill(args: argparse.Namespace) -> Row:
    people = contacts(int(args.contacts))
    per_contact = max(1, int(args.texts) // len(people))
    total = per_contact * len(people)
    async with world(concurrency=args.concurrency) as w:
        provider = Provider(w.convo.url + "/webhooks/vonage/inbound", time.monotonic() + 300)
        killer = asyncio.create_task(kill_when_acked(w.convo, provider, int(args.kill_at * total)))
        await provider.play(people, per_contact)
        restart = await asyncio.wait_for(killer, 60)
        acked_at_kill = int(args.kill_at * total)
        drain = await drained(w.sim_url, provider.acked, time.monotonic(), 120)
        result = await tally(w.sim_url, provider.sent)
    notes = (
        f"killed at ~{acked_at_kill} acked, restart {restart:.1f} s; "
        f"{args.concurrency or 'default'} sends in flight at most (dup bound); "
        f"{provider.resends} resends ({provider.failed_connections} failed connections); "
        f"drained {drain:.1f} s after the last ack; {result.extra()}; gave up "
        f"{provider.gave_up}"
    )
    tried = f"{total} texts, {len(people)} contacts x {per_contact}, 1 SIGKILL"
    return Row("sigkill", tried, total, result, notes)


async def go_down(gate: Gate, seconds: float) -> float:
    """The provider answers 503 for ``seconds``; returns when it recovered (monotonic)."""
    gate.down = True
    await asyncio.sleep(seconds)
    gate.down = False
    return time.monotonic()


async def provider_503(args: argparse.Namespace) -> Row:
    outage = scaled(args.outage, args.quick)
    people = contacts(max(1, int(args.contacts) // 5))
    per_contact = max(1, round(args.rate * outage / len(people)))
    async with world(gate=True) as w:
        assert w.gate is not None
        provider = Provider(w.convo.url + "/webhooks/vonage/inbound", time.monotonic() + 300)
        outage_over = asyncio.create_task(go_down(w.gate, outage))
        await provider.play(people, per_contact, rate=args.rate)  # over the outage
        recovered = await outage_over
        drain = await drained(w.sim_url, provider.acked, recovered, outage + 120)
        result = await tally(w.sim_url, provider.sent)
    notes = (
        f"{w.gate.refused} sends refused 503; drained {drain:.1f} s after recovery; "
        f"{result.extra()}"
    )
    tried = f"503 for {outage:g} s, {per_contact * len(people)} texts at {args.rate:g}/s"
    return Row("provider-503", tried, per_contact * len(people), result, notes)


def hold_write_lock(db: Path, seconds: float, held: threading.Event) -> float:
    """``BEGIN EXCLUSIVE`` on ``db`` for ``seconds`` (in a thread); returns when it was
    released (monotonic)."""
    cx = sqlite3.connect(db, isolation_level=None, timeout=30)
    try:
        cx.execute("BEGIN EXCLUSIVE")
        held.set()
        time.sleep(seconds)
        cx.execute("ROLLBACK")
        return time.monotonic()
    finally:
        cx.close()


async def store_locked(args: argparse.Namespace) -> Row:
    lock = max(8.0, scaled(args.lock, args.quick))
    people = contacts(max(1, int(args.contacts) // 5))
    per_contact = max(1, round(args.rate * lock / len(people)))
    async with world() as w:
        provider = Provider(w.convo.url + "/webhooks/vonage/inbound", time.monotonic() + 300)
        held = threading.Event()
        locker = asyncio.create_task(
            asyncio.to_thread(hold_write_lock, Path(w.tmp, "convo.db"), lock, held)
        )
        await asyncio.to_thread(held.wait, 30)
        await provider.play(people, per_contact, rate=args.rate)
        released = await locker
        drain = await drained(w.sim_url, provider.acked, released, 120)
        result = await tally(w.sim_url, provider.sent)
    refused = provider.statuses[503]
    lat = provider.latency or [float("nan")]
    notes = (
        f"{refused} webhooks 503 (Retry-After {'/'.join(sorted(provider.retry_after)) or '-'})"
        f", other non-2xx {sum(provider.statuses.values()) - refused}; "
        f"{provider.failed_connections} timed out; acked webhooks waited up to "
        f"{max(provider.latency, default=0):.1f} s (p50 {percentile(lat, 0.5):.0f} ms); "
        f"drained {drain:.1f} s after release; {result.extra()}; gave up {provider.gave_up}"
    )
    tried = f"lock {lock:g} s, {per_contact * len(people)} texts at {args.rate:g}/s"
    return Row("store-locked", tried, per_contact * len(people), result, notes)


async def stall(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"POST /webhooks/vonage/inbound HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
    await writer.drain()
    return reader, writer


async def closed_after(reader: asyncio.StreamReader, opened: float, limit: float) -> float:
    """Seconds from ``opened`` until the server closed the connection (inf past ``limit``)."""
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(limit):
            while await reader.read(65536):
                pass
            return time.monotonic() - opened
    return float("inf")


async def slow_clients(args: argparse.Namespace) -> Row:
    slow, normal = int(scaled(args.slow, args.quick)), int(scaled(args.normal, args.quick))
    keepalive = scaled(args.keepalive, args.quick)
    async with world(keepalive) as w:
        opened = time.monotonic()
        conns = [await stall("127.0.0.1", w.convo.port) for _ in range(slow)]
        closing = [asyncio.create_task(closed_after(r, opened, keepalive + 30)) for r, _ in conns]
        provider = Provider(w.convo.url + "/webhooks/vonage/inbound", time.monotonic() + 60)
        people = contacts(max(1, normal // 10))
        per_contact = max(1, normal // len(people))
        await provider.play(people, per_contact, rate=normal / keepalive)
        normal_done = time.monotonic() - opened
        closes = await asyncio.gather(*closing)
        for _, writer in conns:
            writer.close()
        await drained(w.sim_url, provider.acked, time.monotonic(), 60)
        result = await tally(w.sim_url, provider.sent)
    shut = [c for c in closes if c != float("inf")]
    lat = provider.latency or [float("nan")]
    notes = (
        f"normal p50 {percentile(lat, 0.5):.1f} ms p99 {percentile(lat, 0.99):.1f} ms "
        f"(done {normal_done:.1f} s after the stalls opened); stalled closed "
        f"{len(shut)}/{slow}, after {min(shut, default=0):.1f}-{max(shut, default=0):.1f} s"
        f" (keepalive_timeout {keepalive:g} s)"
    )
    planned = per_contact * len(people)
    tried = f"{slow} stalled heads + {planned} webhooks over {keepalive:g} s"
    return Row("slow-clients", tried, planned, result, notes)


async def fuzz(_args: argparse.Namespace) -> Row:
    found = sorted(ROOT.glob("tests/**/test_fuzz*.py"))
    if not found:
        return Row("fuzz", "-", notes="not run: the project has no route fuzz test in tests/")
    cmd = [sys.executable, "-m", "pytest", "-q", *map(str, found)]
    started = time.monotonic()
    proc = await asyncio.to_thread(
        subprocess.run, cmd, cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    summary = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
    took = time.monotonic() - started
    tried = ", ".join(p.relative_to(ROOT).as_posix() for p in found)
    return Row("fuzz", tried, notes=f"pytest exit {proc.returncode}: {summary} ({took:.0f} s)")


SCENARIOS = {
    "sigkill": sigkill,
    "provider-503": provider_503,
    "store-locked": store_locked,
    "slow-clients": slow_clients,
    "fuzz": fuzz,
}


def table(rows: list[Row]) -> str:
    head = ("scenario", "tried", "sent/acked/answered", "lost", "dup", "order", "notes")
    lines = []
    for row in rows:
        t = row.tally
        counts = f"{row.sent}/{t.acked}/{t.answered}" if t else "-"
        cells = (t.lost, t.duplicates, t.order) if t else ("-", "-", "-")
        lines.append((row.scenario, row.tried, counts, *map(str, cells), row.notes))
    widths = [max(len(r[i]) for r in [head, *lines]) for i in range(len(head) - 1)]
    out = []
    for r in [head, *lines]:
        out.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])
    return "\n".join(out)


async def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--only", choices=sorted(SCENARIOS), action="append")
    parser.add_argument("--quick", action="store_true", help="sizes / 10 (a smoke run)")
    parser.add_argument("--texts", type=float, default=10000, help="sigkill: texts in the burst")
    parser.add_argument("--contacts", type=float, default=500)
    parser.add_argument("--kill-at", type=float, default=0.4, help="sigkill: share acked")
    parser.add_argument("--outage", type=float, default=60, help="provider-503: seconds")
    parser.add_argument("--lock", type=float, default=30, help="store-locked: seconds")
    parser.add_argument("--rate", type=float, default=20, help="texts/s during a fault")
    parser.add_argument("--slow", type=float, default=300, help="stalled connections")
    parser.add_argument("--normal", type=float, default=200, help="timed webhooks")
    parser.add_argument("--keepalive", type=float, default=15, help="server keepalive_timeout")
    parser.add_argument(
        "--concurrency", type=int, help="sigkill: [outbox] concurrency (sends in flight)"
    )
    args = parser.parse_args()
    if args.quick:
        args.texts, args.contacts = args.texts / 10, args.contacts / 10
    rows = []
    for name in args.only or list(SCENARIOS):
        print(f"faults: {name} ...", flush=True)
        started = time.monotonic()
        try:
            row = await SCENARIOS[name](args)
        except Exception as exc:  # a report: one scenario's failure is a row, not a crash
            row = Row(name, "-", notes=f"harness failed: {type(exc).__name__}: {exc}")
        row.tried += f" [{time.monotonic() - started:.0f} s]"
        rows.append(row)
        print(table([row]).splitlines()[1], flush=True)
    print()
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))

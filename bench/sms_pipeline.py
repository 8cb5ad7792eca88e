"""Replies sent per second: ``convo serve`` against a bare handler and send-only floors.

Usage: .venv/bin/python bench/sms_pipeline.py [--quick] [--seconds 10] [--connections 32]
       [--senders 32] [--floors aiohttp,httpx-aiohttp,durable] [--uvloop] [--profile FILE]

What a user feels is how many replies per second reach the provider, sustained, not how
fast webhooks are acknowledged. Every server below gets the same load and its own fake
Vonage (``convo.simulators.vonage`` in a child process, which answers at once and counts
what it accepted, with the time the last one arrived):

* **bare**: an aiohttp handler that parses the form and answers 200 (the ceiling of acks);
* **floor-aiohttp**: parses the form, answers 200 and hands the reply to ``--senders``
  sender tasks that post it to the fake with one ``aiohttp.ClientSession`` (no store, no
  flow, no signature check): the most replies/s the HTTP stack allows here;
* **floor-httpx-aiohttp**: the same with the client convo's adapters use
  (``convo.providers.http.provider_client``: httpx's API over aiohttp's pool);
* **floor-httpx** (only with ``--floors``): plain httpx, one shared ``AsyncClient``;
* **floor-durable**: the aiohttp floor plus the least durable work convo's contract needs,
  in SQLite with convo's pragmas (WAL, ``synchronous=NORMAL``), its group commit of brief
  jobs (on the event loop: the jobs queued in one loop iteration commit as one transaction
  in the next) and its checkpoint thread: the text is stored and its reply queued before
  the 200 (a repeated ``messageId`` gets no reply), a sender commits the reply as
  ``sending`` before posting it and records ``sent`` after the fake answered. No flow, no
  signature check, no retries. It is what durability alone costs: the ceiling of any
  server that keeps convo's promises on SQLite with this client;
* **convo**: ``convo serve`` with SQLite and the durable outbox (every reply stored before
  the ack), signed webhooks, a 3-step flow that answers every text with exactly one reply,
  and the provider's rate limit far above the load.

Load: wrk (C, one thread, ``--connections`` connections, ``--seconds``), cycling through
Vonage inbound form posts signed before the clock starts (each text once for convo: a
repeated ``messageId`` would be a duplicate and get no reply). A contact's texts are
``CONTACTS`` posts apart, so one person never has two texts in flight. wrk is used because
a Python load generator would take the CPU the servers need on a 2-core machine. Before each
run a few texts warm the server up (Python client), and their replies are awaited.

Replies sent/s is the run's replies divided by the time from the start of the load until
the last of them reached the fake (after the backlog drained), so a server that acks fast
and sends slowly is not flattered. Then a **paced** run (Python client, the only generator
here that can hold a rate: texts are due at start + k/rate, latency counts from when each
was due, so a stall counts in full) offers convo half of its sustained rate (the smaller of
its acks/s and replies/s) and prints its ack latency.

The table's last column is the CPU time the server process used (all its threads, from the
start of the load until its last reply) divided by the texts it acknowledged: the figure
that moves least when other work shares the machine, so compare code changes by it.

Prints one table and the ratios ``convo replies/s / best floor`` (the best send-only
floor; target >= 0.5, aim 0.8), ``floor-durable / floor-aiohttp`` (by replies/s and by
CPU/text: what durability alone costs), ``convo replies/s / floor-durable`` and ``convo
acks/s / bare``, and whether p99 ack at half load is under 25 ms. Exits 1 when a run had
errors or replies went missing. ``--quick``: 3-second runs. ``--uvloop`` runs every server
on uvloop (the ``speed`` extra).
``--profile FILE`` writes convo's cProfile stats (with a profiler attached, figures drop).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing as mp
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from _common import free_port, percentile, serve_convo, vonage_convo, wait_ready, wrk
from aiohttp import web

from convo.providers.vonage_webhooks import signature

LINE = "+3225550120"
KEY, SECRET, SIG_SECRET = "bench-key", "bench-secret", "bench-signature-secret"
CONTACTS = 5000  # posts between two texts of one contact
WARM_UP = 60  # texts sent (one at a time) before each measured run
FLOW = """\
flow: bench_pipeline
languages: [en]
channels: [sms]
start: name
steps:
  name:
    ask: {text: "Hello! What is your name?", expect: text, save_as: name}
    then: day
  day:
    ask: {text: "Thanks {{ name }}. Which day suits you?", expect: text, save_as: day}
    then: done
  done:
    say: "See you on {{ day }}, {{ name }}."
    end: true
"""
TEXTS = ("hello", "Ann", "monday")
# Servers that answer a repeated ``messageId`` with no reply: wrk must not cycle for them.
DISTINCT_TEXTS = ("convo", "floor-durable")


def _loop_policy(uvloop: bool) -> None:
    if uvloop:
        import uvloop as uv

        uv.install()


# -- the servers and fakes (child processes) ---------------------------------------------


def run_fake(port: int, ready: Any, uvloop: bool) -> None:
    """The fake Vonage, plus ``GET /_bench/sent``: how many sends it accepted, and the
    wall-clock time the last one arrived."""
    _loop_policy(uvloop)
    from convo.simulators.vonage import VonageSimulator

    sim = VonageSimulator(
        api_key=KEY, api_secret=SECRET, signature_secret=SIG_SECRET, signature_method="sha256"
    )
    last = [0.0]

    @web.middleware
    async def stamp(request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        if request.path == "/sms/json":
            last[0] = time.time()
        return response

    async def sent(_request: web.Request) -> web.Response:
        return web.json_response({"sent": len(sim.sent), "last": last[0]})

    sim.app.middlewares.append(stamp)
    sim.app.router.add_get("/_bench/sent", sent)
    _serve(sim.app, port, ready)


def _serve(app: web.Application, port: int, ready: Any) -> None:
    async def main() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        ready.put(f"http://127.0.0.1:{port}")
        await asyncio.Event().wait()  # until SIGTERM

    asyncio.run(main())


def run_bare(port: int, ready: Any, uvloop: bool) -> None:
    _loop_policy(uvloop)

    async def inbound(request: web.Request) -> web.Response:
        await request.post()
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/webhooks/vonage/inbound", inbound)
    _serve(app, port, ready)


def run_floor(port: int, ready: Any, uvloop: bool, fake: str, kind: str, senders: int) -> None:
    """Parse the form, answer 200, and let ``senders`` tasks post the replies to ``fake``
    with the ``kind`` client: no store, no flow, no signature check."""
    _loop_policy(uvloop)
    import httpx

    queue: asyncio.Queue[dict[str, str]] = asyncio.Queue()

    async def inbound(request: web.Request) -> web.Response:
        form = await request.post()
        queue.put_nowait(
            {"api_key": KEY, "api_secret": SECRET, "type": "text", "from": str(form["to"]),
             "to": str(form["msisdn"]), "text": "Hello! What is your name?"}
        )  # fmt: skip
        return web.Response(status=200)

    async def send_aiohttp(session: aiohttp.ClientSession) -> None:
        while True:
            reply = await queue.get()
            async with session.post(f"{fake}/sms/json", data=reply) as response:
                json.loads(await response.read())
                response.raise_for_status()

    async def send_httpx(client: httpx.AsyncClient) -> None:
        while True:
            reply = await queue.get()
            response = await client.post(f"{fake}/sms/json", data=reply)
            response.json()
            response.raise_for_status()

    async def senders_ctx(_app: web.Application) -> Any:
        if kind == "aiohttp":
            connector = aiohttp.TCPConnector(limit=senders)
            client: Any = aiohttp.ClientSession(connector=connector)
            tasks = [asyncio.create_task(send_aiohttp(client)) for _ in range(senders)]
        else:
            if kind == "httpx-aiohttp":
                from convo.providers.http import provider_client

                client = provider_client()
            else:
                limits = httpx.Limits(max_connections=senders)
                client = httpx.AsyncClient(limits=limits)
            tasks = [asyncio.create_task(send_httpx(client)) for _ in range(senders)]
        yield
        for task in tasks:
            task.cancel()
        await client.aclose() if kind != "aiohttp" else await client.close()

    app = web.Application()
    app.router.add_post("/webhooks/vonage/inbound", inbound)
    app.cleanup_ctx.append(senders_ctx)
    _serve(app, port, ready)


# The durable floor's tables: what convo's contract needs kept, and nothing else.
DURABLE_SCHEMA = """
CREATE TABLE IF NOT EXISTS inbound (
    seq INTEGER PRIMARY KEY, provider_message_id TEXT NOT NULL UNIQUE, line TEXT NOT NULL,
    contact TEXT NOT NULL, text TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY, line TEXT NOT NULL, contact TEXT NOT NULL, text TEXT NOT NULL,
    status TEXT NOT NULL, provider_message_id TEXT NOT NULL, created_at REAL NOT NULL,
    updated_at REAL NOT NULL);
"""
STORE_TEXT = "INSERT INTO inbound VALUES (NULL, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
QUEUE_REPLY = "INSERT INTO outbox VALUES (NULL, ?, ?, ?, 'queued', '', ?, ?)"
CLAIM = "UPDATE outbox SET status = 'sending', updated_at = ? WHERE seq = ? AND status = 'queued'"
RECORD = "UPDATE outbox SET status = ?, provider_message_id = ?, updated_at = ? WHERE seq = ?"


class GroupCommit:
    """The durable floor's writer: one SQLite connection (WAL, convo's pragmas) used on the
    event loop; the jobs queued in one loop iteration run in the next as one batch, one
    ``BEGIN IMMEDIATE ... COMMIT`` (as convo's brief jobs run under load, when batches are
    large; without its savepoints and without another connection to wait for). ``run``
    returns once its job committed. The WAL is checkpointed as convo's is, by convo's
    checkpoint thread."""

    def __init__(self, path: str) -> None:
        import sqlite3

        from convo.store.sqlite_checkpoints import Checkpointer

        self.cx = sqlite3.connect(path, isolation_level=None)
        for pragma in ("journal_mode = WAL", "synchronous = NORMAL",
                       "wal_autocheckpoint = 4000", "foreign_keys = ON"):  # fmt: skip
            self.cx.execute(f"PRAGMA {pragma}")
        self.cx.executescript(DURABLE_SCHEMA)
        self.checkpointer = Checkpointer(Path(path))
        self.checkpointer.start()
        self.queue: list[tuple[Any, asyncio.Future[Any]]] = []

    async def run(self, job: Any) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self.queue:
            loop.call_soon(self._commit)
        self.queue.append((job, future))
        return await future

    def _commit(self) -> None:
        batch, self.queue = self.queue, []
        self.cx.execute("BEGIN IMMEDIATE")
        results = [job(self.cx) for job, _ in batch]
        self.cx.execute("COMMIT")
        self.checkpointer.written()
        for (_, future), value in zip(batch, results, strict=True):
            future.set_result(value)


def run_floor_durable(
    port: int, ready: Any, uvloop: bool, fake: str, tmp: str, senders: int
) -> None:
    """The aiohttp floor plus the least durable work convo's contract needs: the text is
    stored (a repeated ``messageId`` is a duplicate: no reply) and its reply queued in
    SQLite before the 200; a sender marks the reply ``sending`` (committed) before it
    posts it, and records ``sent`` (with the provider's id) after the fake answered. No
    flow, no signature check, no retries."""
    _loop_policy(uvloop)
    db = GroupCommit(str(Path(tmp, "floor-durable.db")))
    queue: asyncio.Queue[tuple[int, str, str]] = asyncio.Queue()

    def store_text(message_id: str, line: str, contact: str, text: str) -> Any:
        def job(cx: Any) -> int | None:
            now = time.time()
            if cx.execute(STORE_TEXT, (message_id, line, contact, text, now)).rowcount == 0:
                return None  # a duplicate: stored already, answered already
            reply = "Hello! What is your name?"
            return int(cx.execute(QUEUE_REPLY, (line, contact, reply, now, now)).lastrowid)

        return job

    def claim(seq: int) -> Any:
        return lambda cx: cx.execute(CLAIM, (time.time(), seq)).rowcount == 1

    def record(seq: int, status: str, provider_id: str) -> Any:
        return lambda cx: cx.execute(RECORD, (status, provider_id, time.time(), seq))

    async def inbound(request: web.Request) -> web.Response:
        form = await request.post()
        line, contact = str(form["to"]), str(form["msisdn"])
        seq = await db.run(store_text(str(form["messageId"]), line, contact, str(form["text"])))
        if seq is not None:
            queue.put_nowait((seq, line, contact))
        return web.Response(status=200)

    async def send(session: aiohttp.ClientSession) -> None:
        while True:
            seq, line, contact = await queue.get()
            if not await db.run(claim(seq)):
                continue
            reply = {"api_key": KEY, "api_secret": SECRET, "type": "text", "from": line,
                     "to": contact, "text": "Hello! What is your name?"}  # fmt: skip
            async with session.post(f"{fake}/sms/json", data=reply) as response:
                answer = json.loads(await response.read())
                response.raise_for_status()
            message = answer["messages"][0]
            sent = message.get("status") == "0"
            await db.run(record(seq, "sent" if sent else "failed", message.get("message-id", "")))

    async def senders_ctx(_app: web.Application) -> Any:
        connector = aiohttp.TCPConnector(limit=senders)
        client = aiohttp.ClientSession(connector=connector)
        tasks = [asyncio.create_task(send(client)) for _ in range(senders)]
        yield
        for task in tasks:
            task.cancel()
        await client.close()

    app = web.Application()
    app.router.add_post("/webhooks/vonage/inbound", inbound)
    app.cleanup_ctx.append(senders_ctx)
    _serve(app, port, ready)


def convo_settings(home: str, fake: str, port: int) -> Any:
    """convo on ``port`` with its SQLite and FLOW in ``home``, its Vonage line's API at
    ``fake`` and the rate limit far above any load here."""
    return vonage_convo(
        home,
        flow="bench_pipeline",
        line=LINE,
        credentials=(KEY, SECRET, SIG_SECRET),
        provider_url=fake,
        rate_limit=100_000.0,
        server={"port": port, "shutdown_timeout": 5},
    )


def run_convo(
    port: int, ready: Any, uvloop: bool, tmp: str, fake: str, profile: str | None
) -> None:
    _loop_policy(uvloop)
    import logging

    logging.basicConfig(level=logging.WARNING)
    serve_convo(convo_settings(tmp, fake, port), ready, profile)


# -- the load ------------------------------------------------------------------------------


def signed_texts(count: int, prefix: str) -> list[bytes]:
    """``count`` Vonage inbound posts (form, signed), each ``messageId`` new; a contact's
    texts are CONTACTS posts apart and follow the flow (name, day, then a new start)."""
    now = int(time.time())
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now))
    bodies = []
    for k in range(count):
        text = TEXTS[(k // CONTACTS) % len(TEXTS)]
        fields = {
            "api-key": KEY,
            "msisdn": f"{prefix}{k % CONTACTS:06d}".lstrip("+"),
            "to": LINE.lstrip("+"),
            "messageId": uuid.uuid4().hex[:16].upper(),
            "text": text,
            "type": "text",
            "keyword": text.upper(),
            "message-timestamp": stamp,
            "timestamp": str(now),
            "nonce": uuid.uuid4().hex,
        }
        fields["sig"] = signature(fields, SIG_SECRET, "sha256")
        bodies.append(urlencode(fields).encode())
    return bodies


@dataclass
class Result:
    name: str
    acks: int = 0  # 200 answers in the measured run
    seconds: float = 0.0
    p50: float = math.nan  # ms
    p99: float = math.nan
    errors: list[str] = field(default_factory=list)
    replies: int = 0
    reply_seconds: float = math.nan  # start of the load -> last reply at the fake
    cpu: float = math.nan  # CPU seconds the server process used for the run, drain included

    @property
    def acks_per_s(self) -> float:
        return self.acks / self.seconds if self.seconds else math.nan

    @property
    def replies_per_s(self) -> float:
        return self.replies / self.reply_seconds if self.replies else math.nan


async def post(http: aiohttp.ClientSession, url: str, body: bytes) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    async with http.post(url, data=body, headers=headers) as response:
        return response.status, await response.read()


async def at_fake(fake: str) -> tuple[int, float]:
    async with aiohttp.ClientSession() as http, http.get(fake + "/_bench/sent") as response:
        body = await response.json()
    return int(body["sent"]), float(body["last"])


async def replies(fake: str, expected: int, timeout: float) -> tuple[int, float]:
    """Wait until ``expected`` sends reached ``fake`` (or ``timeout`` passes without a new
    one); the count and when the last arrived."""
    seen, last, idle_since = -1, 0.0, time.monotonic()
    while True:
        sent, last = await at_fake(fake)
        if sent >= expected:
            return sent, last
        if sent != seen:
            seen, idle_since = sent, time.monotonic()
        elif time.monotonic() - idle_since > timeout:
            return sent, last
        await asyncio.sleep(0.02)


async def paced(url: str, bodies: list[bytes], rate: float, seconds: float) -> Result:
    """Texts due at start + k/rate for ``seconds`` (the first second a warm-up, not
    counted); latency from when each was due."""
    result = Result(f"convo at {rate:,.0f}/s")
    latency: list[float] = []
    warm = int(rate)
    total = min(len(bodies), warm + int(rate * seconds))
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as http:
        start = time.perf_counter() + 0.2

        async def one(k: int) -> None:
            due = start + k / rate
            await asyncio.sleep(due - time.perf_counter())
            status, text = await post(http, url, bodies[k])
            if k >= warm:
                latency.append(time.perf_counter() - due)
            if status == 200:
                result.acks += k >= warm
            else:
                result.errors.append(f"{status} {text[:200]!r}")

        await asyncio.gather(*(one(k) for k in range(total)))
    result.seconds = (total - warm) / rate
    result.p50, result.p99 = percentile(latency, 0.5), percentile(latency, 0.99)
    return result


# -- one run --------------------------------------------------------------------------------


class Servers:
    """Child processes started for one run, stopped (SIGTERM, then joined) at its end."""

    def __init__(self) -> None:
        self.ctx = mp.get_context("spawn")
        self.ready = self.ctx.Queue()
        self.children: list[Any] = []

    async def start(self, target: Any, *args: Any) -> str:
        """Start ``target(port, ready, *args)``; its base URL once it listens."""
        port = free_port()
        child = self.ctx.Process(target=target, args=(port, self.ready, *args))
        child.start()
        self.children.append(child)
        return await wait_ready(self.ready)

    @property
    def pid(self) -> int:
        """The process started last (the server under test)."""
        return int(self.children[-1].pid)

    async def stop(self) -> None:
        for child in reversed(self.children):  # the server first: it drains while the fake lives
            child.terminate()
            await asyncio.to_thread(child.join, 30)
        self.children.clear()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads) so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(
    name: str, base: str, fake: str | None, args: argparse.Namespace, tmp: str, pid: int
) -> Result:
    """Warm ``base`` up, load it with wrk, then wait for its replies at ``fake``."""
    url = base + "/webhooks/vonage/inbound"
    # Enough distinct texts for a fast convo; the bare handler and floors cycle through them.
    count = WARM_UP + int(args.seconds * args.max_rate)
    bodies = signed_texts(count, prefix=f"+3247{uuid.uuid4().int % 10}")
    path = Path(tmp, f"{name}.txt")
    path.write_bytes(b"\n".join(bodies) + b"\n")
    result = Result(name)
    async with aiohttp.ClientSession() as http:
        for body in bodies[:WARM_UP]:
            status, text = await post(http, url, body)
            if status != 200:
                result.errors.append(f"warm-up: {status} {text[:200]!r}")
    before = 0
    if fake is not None:
        before, _ = await replies(fake, WARM_UP, args.drain_timeout)
    start, cpu = time.time(), cpu_seconds(pid)
    out = await asyncio.to_thread(wrk, url, path, WARM_UP, args.connections, args.seconds, tmp)
    result.seconds = out["duration_us"] / 1e6
    result.acks = out["requests"] - out["status_errors"]
    result.p50, result.p99 = out["p50_us"] / 1000, out["p99_us"] / 1000
    if out["status_errors"] or out["socket_errors"]:
        result.errors.append(
            f"{out['status_errors']} non-2xx answers, {out['socket_errors']} socket errors"
        )
    if name in DISTINCT_TEXTS and out["requests"] > count - WARM_UP:
        result.errors.append(f"wrk ran out of distinct texts ({count}): raise --max-rate")
    if fake is not None:
        sent, last = await replies(fake, before + result.acks, args.drain_timeout)
        result.replies = sent - before
        result.reply_seconds = last - start
        if sent < before + result.acks:
            result.errors.append(f"only {sent - before} of {result.acks} replies arrived")
    result.cpu = cpu_seconds(pid) - cpu
    return result


async def run_one(name: str, args: argparse.Namespace, tmp: str) -> tuple[Result, Any]:
    servers = Servers()
    try:
        if name == "bare":
            base = await servers.start(run_bare, args.uvloop)
            return await measure(name, base, None, args, tmp, servers.pid), None
        fake = await servers.start(run_fake, args.uvloop)
        if name == "convo":
            home = Path(tmp, "convo")
            home.mkdir()
            Path(home, "bench_pipeline.yaml").write_text(FLOW, encoding="utf-8")
            base = await servers.start(run_convo, args.uvloop, str(home), fake, args.profile)
            result = await measure(name, base, fake, args, tmp, servers.pid)
            paced_result = None
            if args.paced and not math.isnan(result.replies_per_s):
                rate = 0.5 * min(result.acks_per_s, result.replies_per_s)
                await asyncio.sleep(args.settle)
                bodies = signed_texts(int(rate) + int(rate * args.seconds), prefix="+32479")
                before, _ = await at_fake(fake)
                paced_result = await paced(base + "/webhooks/vonage/inbound", bodies, rate,
                                           args.seconds)  # fmt: skip
                expected = before + len(bodies) - sum(1 for e in paced_result.errors)
                sent, _ = await replies(fake, expected, args.drain_timeout)
                if sent < expected:
                    paced_result.errors.append(f"only {sent - before} replies arrived")
            return result, paced_result
        if name == "floor-durable":
            base = await servers.start(run_floor_durable, args.uvloop, fake, tmp, args.senders)
            return await measure(name, base, fake, args, tmp, servers.pid), None
        kind = name.removeprefix("floor-")
        base = await servers.start(run_floor, args.uvloop, fake, kind, args.senders)
        return await measure(name, base, fake, args, tmp, servers.pid), None
    finally:
        await servers.stop()


def row(result: Result) -> str:
    replies = "-" if math.isnan(result.replies_per_s) else f"{result.replies_per_s:,.0f}"
    cpu = "-" if math.isnan(result.cpu) else f"{result.cpu / max(1, result.acks) * 1e6:,.0f} µs"
    return (
        f"| {result.name} | {result.acks_per_s:,.0f} | {replies} "
        f"| {result.p50:.1f} ms | {result.p99:.1f} ms | {cpu} |"
    )


async def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s runs")
    parser.add_argument("--seconds", type=float, help="length of each wrk run (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--senders", type=int, default=32, help="sender tasks of the floors")
    parser.add_argument(
        "--floors",
        default="aiohttp,httpx-aiohttp,durable",
        help="of aiohttp, httpx-aiohttp, httpx, durable",
    )
    parser.add_argument("--max-rate", type=float, default=6000.0,
                        help="distinct texts signed per second of load")  # fmt: skip
    parser.add_argument("--no-paced", dest="paced", action="store_false",
                        help="skip the paced run at half of convo's rate")  # fmt: skip
    parser.add_argument("--settle", type=float, default=3.0,
                        help="idle seconds before the paced run")  # fmt: skip
    parser.add_argument("--drain-timeout", type=float, default=30.0,
                        help="seconds without a new reply before giving up")  # fmt: skip
    parser.add_argument("--uvloop", action="store_true", help="run the servers on uvloop")
    parser.add_argument("--only", help="comma-separated subset of the servers to run")
    parser.add_argument("--profile", help="write convo's cProfile stats to this file")
    args = parser.parse_args()
    args.seconds = args.seconds or (3.0 if args.quick else 10.0)
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is not installed (apt-get install wrk)")
    names = ["bare", *(f"floor-{k}" for k in args.floors.split(",")), "convo"]
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    print(
        f"wrk -t1 -c{args.connections} -d{args.seconds:g}s, Vonage inbound form posts; "
        f"{args.senders} floor senders; {'uvloop' if args.uvloop else 'asyncio'} loops; "
        f"{os.cpu_count()} cores"
    )
    results: dict[str, Result] = {}
    paced_result = None
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            results[name], paced_now = await run_one(name, args, tmp)
            paced_result = paced_result or paced_now
            print(f"  {row(results[name])}", flush=True)
    print("\n| server | webhook acks/s | replies sent/s | p50 ack | p99 ack | server CPU/text |")
    print("|---|---|---|---|---|---|")
    for result in results.values():
        print(row(result))
    if paced_result is not None:
        print(row(paced_result) + " (paced: latency from when each text was due)")
    failures = [f"{r.name}: {e}" for r in [*results.values(), paced_result] if r for e in r.errors]
    convo, bare = results.get("convo"), results.get("bare")
    floors = [r for n, r in results.items() if n.startswith("floor-") and n != "floor-durable"]
    durable, aiohttp_floor = results.get("floor-durable"), results.get("floor-aiohttp")
    if convo is not None and floors:
        best = max(floors, key=lambda r: r.replies_per_s)
        ratio = convo.replies_per_s / best.replies_per_s
        print(f"\nconvo replies/s / best floor ({best.name}): {ratio:.2f} (>= 0.5; aim 0.8)")
    if durable is not None and aiohttp_floor is not None:
        ratio = durable.replies_per_s / aiohttp_floor.replies_per_s
        cpu = (durable.cpu / max(1, durable.acks)) / (
            aiohttp_floor.cpu / max(1, aiohttp_floor.acks)
        )
        print(f"floor-durable / floor-aiohttp: {ratio:.2f} by replies/s, {cpu:.2f}x the CPU/text")
    if convo is not None and durable is not None:
        print(f"convo replies/s / floor-durable: {convo.replies_per_s / durable.replies_per_s:.2f}")
    if convo is not None and bare is not None:
        print(f"convo acks/s / bare: {convo.acks_per_s / bare.acks_per_s:.2f}")
    if paced_result is not None:
        verdict = "met" if paced_result.p99 < 25 else "MISSED"
        print(f"p99 ack at half of convo's rate: {paced_result.p99:.1f} ms (< 25 ms: {verdict})")
    for failure in failures:
        print(f"  {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))

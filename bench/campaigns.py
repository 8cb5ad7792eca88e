"""Campaigns: creating a large one from CSV, and pacing against a provider that throttles.
A report, not a test: it prints its figures and exits 0 (1 when a target is missed).

Usage: .venv/bin/python bench/campaigns.py [--only create|pace] [--contacts 100000]
       [--small 10000] [--rate 200] [--hold 2000] [--finish 1000]
       [--store sqlite|postgresql|compare] [--rounds 1]

* ``create``: ``convo broadcast reminder --to FILE.csv --no-follow`` as a user runs it (a
  child process, SQLite in a temp dir, no server), for a CSV of ``--small`` and of
  ``--contacts`` rows: the wall time of the whole command (interpreter start included) and
  its peak RSS (``wait4``), beside ``convo campaigns list``'s as the floor. Memory is flat
  when the large file's peak is close to the small one's: the rows stream from the file
  into the store in batches. Target: < 10 s for 100,000. ``--store postgresql`` stores it
  in PostgreSQL instead (a schema of its own on ``CONVO_TEST_POSTGRES_URL``, default
  postgresql://postgres@127.0.0.1:5432/test, dropped after); ``--store compare`` creates
  the large campaign on both, alternately, ``--rounds`` times, and prints the median
  PostgreSQL / SQLite ratio of the wall times.
* ``pace``: a Vonage-shaped fake provider (a child process) that answers 429 to a send
  beyond ``--rate``/s (a token bucket holding a quarter second of sends), and ``convo serve`` (a
  child) with one Vonage line whose ``rate_limit`` is ``--rate``. A campaign of ``--hold``
  contacts at that rate, created through the admin API: the rate the provider accepted,
  first send to last (target: within 2 % of ``--rate``), and its 429s (target: 0). Then a
  campaign of ``--finish`` contacts: the time from the POST to the provider's last accepted
  send, against the ideal ``finish / rate`` (target: within 10 %).

Every loop is bounded in count and time; everything runs on 127.0.0.1. The machine's load
average is printed with the figures: on a shared machine whose load is several times its
cores, the processes here get a fraction of a core, and paced figures measure that.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from _common import (
    free_port,
    postgres_schema,
    serve_app,
    serve_convo,
    vonage_convo,
    wait_ready,
)
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
CONVO = Path(sys.executable).parent / "convo"
LINE = "+32460000103"
TOKEN = "bench-token"
BURST = 0.25  # seconds of sends the fake provider's bucket holds


# -- create ---------------------------------------------------------------------------------


def write_csv(path: Path, rows: int) -> None:
    langs = ("nl", "fr", "en")
    with path.open("w", encoding="utf-8") as out:
        out.write("number,name,language,date,customer\n")
        for i in range(rows):
            out.write(f"+32471{i:06d},Person {i},{langs[i % 3]},2026-12-{1 + i % 28:02d},C{i}\n")


def run_measured(args: list[str], cwd: Path) -> tuple[float, float, int, float]:
    """Wall seconds, peak RSS (MiB), exit code and CPU seconds of one child process (the
    CPU time is what a shared, loaded machine does not inflate)."""
    began = time.perf_counter()
    child = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    took = time.perf_counter() - began
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        print(child.stderr.read().decode()[-2000:] if child.stderr else "", file=sys.stderr)
    if child.stderr:
        child.stderr.close()
    return took, usage.ru_maxrss / 1024, child.returncode, usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def store_config(store: str, folder: Path, name: str) -> Iterator[Path]:
    """A configuration whose store is a new SQLite file in ``folder``, or a new PostgreSQL
    schema (dropped on exit); the sandbox line runs the reminder flow."""
    with contextlib.ExitStack() as stack:
        if store == "sqlite":
            url = f"sqlite:///{folder / f'{name}.db'}"
        else:
            loop = stack.enter_context(contextlib.closing(asyncio.new_event_loop()))
            schema = postgres_schema()
            url = loop.run_until_complete(schema.__aenter__())
            stack.callback(lambda: loop.run_until_complete(schema.__aexit__(None, None, None)))
        config = folder / f"{name}.toml"
        config.write_text(
            f'[store]\nurl = "{url}"\n'
            f'[flows]\npaths = ["{ROOT / "flows" / "reminder.yaml"}"]\n'
            f'[[lines]]\nnumber = "{LINE}"\nprovider = "sandbox"\nflow = "reminder"\n',
            encoding="utf-8",
        )
        yield config


def broadcast(config: Path, csv: Path, folder: Path) -> tuple[float, float, int, float]:
    return run_measured(
        [str(CONVO), "broadcast", "reminder", "--to", str(csv), "--no-follow",
         "--config", str(config)],
        folder,
    )  # fmt: skip


def bench_create(args: argparse.Namespace) -> list[str]:
    if args.store == "compare":
        return compare_create(args)
    missed: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for rows in (args.small, args.contacts):
            write_csv(folder / f"contacts-{rows}.csv", rows)
        with store_config(args.store, folder, "convo") as config:
            floor = run_measured([str(CONVO), "campaigns", "list", "--config", str(config)], folder)
            print(f"create ({args.store}): `convo campaigns list` (the floor): {floor[0]:.2f} s "
                  f"({floor[3]:.2f} s of CPU), peak RSS {floor[1]:.0f} MiB")  # fmt: skip
            for rows in (args.small, args.contacts):
                took, rss, code, cpu = broadcast(config, folder / f"contacts-{rows}.csv", folder)
                print(f"create ({args.store}): {rows:>7,} contacts from CSV: {took:.2f} s "
                      f"({rows / took:,.0f} rows/s; {cpu:.2f} s of CPU), peak RSS {rss:.0f} "
                      f"MiB, exit {code}")  # fmt: skip
                if code:
                    missed.append(f"broadcast of {rows} exited {code}")
                if rows >= 100_000 and took >= 10:
                    missed.append(f"{rows} contacts took {took:.1f} s (target < 10 s)")
    return missed


def compare_create(args: argparse.Namespace) -> list[str]:
    """The large campaign created on SQLite and on PostgreSQL, alternately, each round on a
    fresh store: the wall times and their median ratio."""
    missed: list[str] = []
    took: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        csv = folder / "contacts.csv"
        write_csv(csv, args.contacts)
        for round_ in range(args.rounds):
            for store in ("sqlite", "postgresql"):
                with store_config(store, folder, f"{store}-{round_}") as config:
                    wall, rss, code, cpu = broadcast(config, csv, folder)
                print(f"create ({store}, round {round_ + 1}): {args.contacts:,} contacts: "
                      f"{wall:.2f} s ({cpu:.2f} s of CPU), peak RSS {rss:.0f} MiB, "
                      f"exit {code}")  # fmt: skip
                if code:
                    missed.append(f"broadcast on {store} exited {code}")
                took[store].append(wall)
    ratios = [p / s for s, p in zip(took["sqlite"], took["postgresql"], strict=True)]
    print(f"create: PostgreSQL / SQLite wall time, median of {len(ratios)}: "
          f"{statistics.median(ratios):.2f}x")  # fmt: skip
    return missed


# -- pace -----------------------------------------------------------------------------------


def throttling_provider(rate: float) -> web.Application:
    """POST /sms/json (Vonage's shape): accepted within ``rate``/s, else 429. GET /_stats:
    what it accepted (times) and refused; POST /_stats/reset forgets both."""
    capacity = max(1.0, rate * BURST)
    state: dict[str, Any] = {"tokens": capacity, "last": time.monotonic(), "times": [],
                             "throttled": 0, "n": 0}  # fmt: skip

    async def send(request: web.Request) -> web.Response:
        now = time.monotonic()
        state["tokens"] = min(capacity, state["tokens"] + (now - state["last"]) * rate)
        state["last"] = now
        await request.read()
        if state["tokens"] < 1.0:
            state["throttled"] += 1
            return web.Response(status=429, headers={"Retry-After": "1"})
        state["tokens"] -= 1.0
        state["times"].append(time.time())
        state["n"] += 1
        return web.json_response(
            {"message-count": "1", "messages": [{"status": "0", "message-id": f"m{state['n']}",
                                                  "message-price": "0.05"}]}
        )  # fmt: skip

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"times": state["times"], "throttled": state["throttled"]})

    async def reset(request: web.Request) -> web.Response:
        state["times"], state["throttled"] = [], 0
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/sms/json", send)
    app.router.add_get("/_stats", stats)
    app.router.add_post("/_stats/reset", reset)
    return app


def run_provider(port: int, rate: float, ready: Any) -> None:
    serve_app(throttling_provider(rate), port, ready)


def run_convo(tmp: str, port: int, provider_url: str, rate: float, ready: Any) -> None:
    settings = vonage_convo(
        tmp,
        flow="reminder",
        line=LINE,
        credentials=("bench-key", "bench-secret", "bench-signature"),
        provider_url=provider_url,
        rate_limit=rate,
        server={"port": port, "api_token": TOKEN},
    )
    serve_convo(settings, ready, None)


async def campaign(client: httpx.AsyncClient, convo: str, first: int, count: int) -> float:
    """POST a campaign of ``count`` contacts; returns when it was posted (time.time)."""
    contacts = [f"+32472{i:06d}" for i in range(first, first + count)]
    body = {"flow": "reminder", "contacts": contacts, "params": {"date": "2026-12-01"}}
    posted = time.time()
    answer = await client.post(f"{convo}/api/campaigns", json=body,
                               headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    answer.raise_for_status()
    return posted


async def accepted(client: httpx.AsyncClient, provider: str, count: int) -> dict[str, Any]:
    """The fake's stats once it accepted ``count`` sends (or after 120 s)."""
    deadline = time.monotonic() + 120
    while True:
        stats: dict[str, Any] = (await client.get(f"{provider}/_stats")).json()
        if len(stats["times"]) >= count or time.monotonic() > deadline:
            return stats
        await asyncio.sleep(0.1)


async def bench_pace(args: argparse.Namespace) -> list[str]:
    missed: list[str] = []
    ctx = mp.get_context("spawn")
    ready = ctx.Queue()
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(ROOT / "flows" / "reminder.yaml", Path(tmp) / "reminder.yaml")
        provider_port, convo_port = free_port(), free_port()
        provider = f"http://127.0.0.1:{provider_port}"
        children = [ctx.Process(target=run_provider, args=(provider_port, args.rate, ready))]
        children[0].start()
        await wait_ready(ready)
        convo_args = (tmp, convo_port, provider, args.rate, ready)
        children.append(ctx.Process(target=run_convo, args=convo_args))
        children[1].start()
        convo = await wait_ready(ready)
        try:
            async with httpx.AsyncClient(timeout=60) as client:
                await campaign(client, convo, 0, args.hold)
                stats = await accepted(client, provider, args.hold)
                times = stats["times"]
                held = (len(times) - 1) / (times[-1] - times[0])
                off = abs(held - args.rate) / args.rate * 100
                print(f"pace: {len(times):,} of {args.hold:,} sends accepted at {held:.1f}/s "
                      f"(target {args.rate:g}/s: {off:.2f} % off), {stats['throttled']} "
                      "throttled (429)")  # fmt: skip
                if off > 2 or stats["throttled"] or len(times) < args.hold:
                    missed.append(f"held {held:.1f}/s with {stats['throttled']} 429s")
                await client.post(f"{provider}/_stats/reset")
                posted = await campaign(client, convo, args.hold, args.finish)
                stats = await accepted(client, provider, args.finish)
                took = stats["times"][-1] - posted
                ideal = args.finish / args.rate
                print(f"pace: {args.finish:,} contacts finished {took:.2f} s after the POST "
                      f"(ideal {ideal:.2f} s: {took / ideal:.3f}x), {stats['throttled']} "
                      "throttled (429)")  # fmt: skip
                if took > ideal * 1.1 or stats["throttled"]:
                    missed.append(f"{args.finish} contacts took {took:.2f} s (ideal {ideal:.2f})")
        finally:
            for child in children:
                child.terminate()
                child.join(10)
    return missed


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--only", choices=["create", "pace"])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--hold", type=int, default=2000)
    parser.add_argument("--finish", type=int, default=1000)
    parser.add_argument("--store", choices=["sqlite", "postgresql", "compare"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average {load} on {os.cpu_count()} core(s)")
    missed: list[str] = []
    if args.only in (None, "create"):
        missed += bench_create(args)
    if args.only in (None, "pace"):
        missed += asyncio.run(bench_pace(args))
    for line in missed:
        print(f"MISSED: {line}")
    print(json.dumps({"missed": len(missed)}))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

"""CPU an idle ``convo serve`` on PostgreSQL uses while replies wait out a backoff.

Usage: .venv/bin/python bench/idle_cpu.py [--seconds 20] [--waiting 20]

``convo serve`` (a child process) on a fresh schema of the PostgreSQL server at
``CONVO_TEST_POSTGRES_URL`` (default postgresql://postgres@127.0.0.1:5432/test, dropped
after), one Vonage line whose provider does not answer (a closed port: every send fails
and is retried later), and ``--waiting`` texts from as many contacts: their replies wait
out their backoff in the outbox, so its senders are busy but have nothing to do. After 3
settling seconds, prints the process's CPU time per second over ``--seconds``: what its
background loops (timers, recovery, outbox sweeps, notices) cost when nothing happens.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from _common import free_port, postgres_schema, serve_convo, vonage_convo
from webhooks import FLOW, KEY, LINE, SECRET, SIG_SECRET, inbound_body


def run_convo(tmp: str, port: int, store_url: str, ready: Any) -> None:
    settings = vonage_convo(
        tmp,
        flow="bench_sms",
        line=LINE,
        credentials=(KEY, SECRET, SIG_SECRET),
        provider_url=f"http://127.0.0.1:{free_port()}",  # nothing listens: sends fail
        rate_limit=10000.0,
        server={"port": port, "shutdown_timeout": 5},
        store_url=store_url,
    )
    serve_convo(settings, ready, None)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--waiting", type=int, default=20, help="replies in backoff")
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    ready = ctx.Queue()
    async with postgres_schema() as url:
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "bench_sms.yaml").write_text(FLOW, encoding="utf-8")
            port = free_port()
            child = ctx.Process(target=run_convo, args=(tmp, port, url, ready))
            child.start()
            try:
                await asyncio.to_thread(ready.get, True, 30)
                headers = {"Content-Type": "application/x-www-form-urlencoded"}
                async with aiohttp.ClientSession() as http:
                    for n in range(args.waiting):
                        body = inbound_body(f"+3247100{n:04d}", "hello")
                        inbound = f"http://127.0.0.1:{port}/webhooks/vonage/inbound"
                        async with http.post(inbound, data=body, headers=headers) as resp:
                            if resp.status != 200:
                                raise SystemExit(f"bench: convo answered {resp.status}")
                await asyncio.sleep(3.0)
                assert child.pid is not None
                used, began = cpu_seconds(child.pid), time.monotonic()
                await asyncio.sleep(args.seconds)
                per_second = (cpu_seconds(child.pid) - used) / (time.monotonic() - began)
            finally:
                child.terminate()
                await asyncio.to_thread(child.join, 30)
    print(f"idle, {args.waiting} replies in backoff: {per_second * 1000:.1f} ms of CPU per second")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))

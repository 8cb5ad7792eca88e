"""Inbound SMS webhooks per second with ``convo serve --workers 2`` against one worker, on
PostgreSQL.

Usage: .venv/bin/python bench/workers.py [--seconds 10] [--concurrency 100]
       [--messages 3] [--rounds 1] [--workers 2] [--load wrk|python] [--postgres URL]

On one machine, all on 127.0.0.1: the Vonage simulator (a child process, counting the
replies it receives, from bench/webhooks.py), the load generator (the same conversations as
bench/webhooks.py: signed Vonage webhooks, each text answered by one reply) and ``convo
serve --config ... --workers N`` as a user runs it (a subprocess), on a fresh schema of the
PostgreSQL database (``--postgres``, else ``CONVO_TEST_POSTGRES_URL``, else
``postgresql://postgres@127.0.0.1:5432/test``) dropped afterwards, the provider's
``rate_limit`` raised to 10 000/s.

For one worker, then for ``--workers``: ``--concurrency`` connections each post their next
text as soon as the previous one is answered, for ``--seconds``; then the run waits until
every acknowledged text's reply reached the simulator. The load generator is wrk (``--load
wrk``, the default: C, one thread; a person's texts are 2,000 posts apart, so one person
never has two in flight) or this process (``--load python``: an aiohttp client playing
``--concurrency`` conversations, each text after the previous one's answer). Capacity is
the smaller of requests/s and replies/s (replies counted until the last one arrived).
``--rounds`` repeats the pair. Prints each run, the cores each part used while saturated
(convo, PostgreSQL, the load generator and simulator, and everything else on the machine:
where the limit is), and the ratio of the workers' capacity to one worker's, against the
issue's target of 1.5x.

Everything shares the machine's cores: the load generator, the simulator and PostgreSQL
take their part of them too, which is the point (the issue asks for the figure "with the
load generator running"); with wrk the generator takes the least of them, as it would on
a machine of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg
from _common import free_port, wait_ready
from webhooks import (
    FLOW,
    KEY,
    LINE,
    SECRET,
    SIG_SECRET,
    People,
    replies,
    run_simulator,
    saturate_python,
    saturate_wrk,
    sent_at_simulator,
)

CONVO = Path(sys.executable).parent / "convo"


def config(tmp: Path, store_url: str, sim_url: str) -> Path:
    path = tmp / "convo.toml"
    path.write_text(
        f"""
[server]
host = "127.0.0.1"
port = 0
shutdown_grace = 5

[store]
url = "{store_url}"

[flows]
paths = ["{tmp / "bench_sms.yaml"}"]

[[lines]]
number = "{LINE}"
provider = "vonage"
flow = "bench_sms"

[providers.vonage]
api_key = "{KEY}"
api_secret = "{SECRET}"
signature_secret = "{SIG_SECRET}"
signature_method = "sha256"
base_url = "{sim_url}"
rate_limit = 10000

[logging]
level = "warning"
access_log = false

[webhooks]
rejected_dir = "{tmp / "rejected"}"
""",
        encoding="utf-8",
    )
    return path


async def one_run(
    args: argparse.Namespace,
    base_url: str,
    sim: tuple[str, int],
    workers: int,
    people: People,
) -> tuple[float, float]:
    """Serve with ``workers`` on a new schema, saturate it; (requests/s, replies/s).
    ``sim`` is the simulator's URL and process id."""
    sim_url, sim_pid = sim
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(base_url)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base_url else "?"
    process = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "bench_sms.yaml").write_text(FLOW, encoding="utf-8")
            cfg = config(Path(tmp), f"{base_url}{sep}search_path={schema}", sim_url)
            process = await asyncio.create_subprocess_exec(
                *(str(CONVO), "serve", "--config", str(cfg), "--workers", str(workers)),
                stdout=asyncio.subprocess.PIPE,
                cwd=tmp,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            assert process.stdout is not None
            line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
            if not line.startswith("convo: serving on "):
                raise SystemExit(f"bench: convo did not start: {line!r}")
            url = line.split()[3]
            before = await _sent(sim_url)
            start = time.perf_counter()
            cpu_before = cpu_seconds(process.pid, sim_pid)
            if args.load == "wrk":
                run = await saturate_wrk(url, people, args, Path(tmp))
            else:
                run = await saturate_python(url, people, args)
            cpu_after = cpu_seconds(process.pid, sim_pid)
            wall = time.perf_counter() - start
            spent = dict.fromkeys(GROUPS, 0.0)
            for pid, (group, seconds) in cpu_after.items():  # processes gone are not counted
                spent[group] += seconds - cpu_before.get(pid, (group, 0.0))[1]
            answered = run.warm + run.accepted
            done = await replies(sim_url, before + answered, start)
            replies_rps = answered / done
            print(run.line(f"{workers} worker{'s' if workers > 1 else ''}, saturated"))
            if run.errors:
                print(f"  {'':<22} errors: {len(run.errors)}, first: {run.errors[0]}")
            print(f"  {'':<22} replies: {replies_rps:,.0f}/s")
            cores = {k: v / wall for k, v in spent.items()}
            used = ", ".join(f"{k} {v:.2f}" for k, v in cores.items())
            print(f"  {'':<22} cores used while saturated: {used}")
            return run.rps, replies_rps
    finally:
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await process.wait()
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


GROUPS = ("convo", "postgresql", "load generator + simulator", "everything else")


def cpu_seconds(convo_pid: int, sim_pid: int) -> dict[int, tuple[str, float]]:
    """Each process alive now: its group and CPU seconds so far. Groups: convo (the serve
    process and its workers), PostgreSQL's processes, this load generator and the
    simulator, and everything else on the machine (other work sharing its cores)."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    commands: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as cmd:
                commands[int(entry)] = cmd.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    out: dict[int, tuple[str, float]] = {}
    for pid, seconds in times.items():
        if pid == convo_pid or parents.get(pid) == convo_pid:
            group = "convo"
        elif commands[pid].startswith("postgres"):
            group = "postgresql"
        elif pid in (os.getpid(), sim_pid) or commands[pid].startswith("wrk "):
            group = "load generator + simulator"
        else:
            group = "everything else"
        out[pid] = (group, seconds)
    return out


async def _sent(sim_url: str) -> int:
    async with aiohttp.ClientSession() as http:
        return await sent_at_simulator(http, sim_url)


async def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each run")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--messages", type=int, default=3, help="texts per conversation")
    parser.add_argument("--rounds", type=int, default=1, help="how many pairs of runs")
    parser.add_argument("--workers", type=int, default=2, help="the workers to compare with 1")
    parser.add_argument(
        "--load", choices=("wrk", "python"), default="wrk", help="the load generator"
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "CONVO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    ready = ctx.Queue()
    sim_port = free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    simulator = ctx.Process(target=run_simulator, args=(sim_port, ready))
    simulator.start()
    try:
        await wait_ready(ready)
        if args.load == "wrk" and shutil.which("wrk") is None:
            raise SystemExit("bench: wrk is not installed (apt-get install wrk), or --load python")
        print(f"{args.concurrency} connections at once ({args.load}), {args.messages} texts "
              f"a conversation, {args.seconds:g} s per run, PostgreSQL:")  # fmt: skip
        ratios = []
        for r in range(args.rounds):
            capacity = {}
            for workers in (1, args.workers):
                people = People(f"+3247{(3 * r + workers) % 10}", 20000, args.messages)
                sim = (sim_url, simulator.pid or 0)
                rps, replies_rps = await one_run(args, args.postgres, sim, workers, people)
                capacity[workers] = min(rps, replies_rps)
            ratio = capacity[args.workers] / capacity[1]
            ratios.append(ratio)
            print(f"  {args.workers} workers / 1 worker: {ratio:.2f}x (target 1.5x)")
        ratios.sort()
        print(f"median ratio over {len(ratios)} round(s): {ratios[len(ratios) // 2]:.2f}x")
    finally:
        simulator.terminate()
        simulator.join(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))

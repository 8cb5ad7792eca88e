"""Instructions per text: what convo's own process executes to take and answer one SMS.

Usage: .venv/bin/python bench/text_instructions.py [--texts 600] [--base 150]
       [--concurrency 4] [--no-valgrind] [--keep DIR]

A deterministic measure of convo's CPU work per text, for comparing code changes on a busy
machine where timings are noise. ``convo serve`` (SQLite in a temp dir, one signed Vonage
line, the 3-step flow of ``bench/sms_pipeline.py``, the provider's rate limit far above
the load) runs in a child process under ``valgrind --tool=callgrind``; this process plays
Vonage on loopback: it posts signed inbound texts (each contact texts the flow's three
answers in turn, one text in flight per contact, ``--concurrency`` contacts at once) and
answers convo's sends at once (the Vonage simulator), waiting for each text's reply before
that contact's next text. A run posts warm-up texts, then its texts, waits for every reply,
and stops convo (SIGTERM); callgrind counts every instruction of the process, start-up and
shutdown included.

So convo runs twice, with ``--base`` texts and with ``--texts``, and the figure is
``(instructions(texts) - instructions(base)) / (texts - base)``: start-up, warm-up and
shutdown cancel out. It is printed for the whole process and for its event loop's thread
alone (callgrind's thread 1; the others are SQLite's and the executor's threads), with each
run's totals. Every third text is a new contact's first (as in ``bench/sms_pipeline.py``,
where most texts are). Runs of one tree differ by up to ~2% (the order of events between
convo's threads, and so what SQLite's group commit puts in one batch, depends on timing):
compare trees by a few runs each, and a change smaller than that by measuring its code
alone.

``--no-valgrind`` runs the same workload without callgrind (a check that it works, in
seconds); with it, ``--profile FILE`` runs convo under cProfile, timing the event loop
thread's CPU time, and writes the stats of the longer run to FILE (``python -m pstats
FILE``; the counts of calls per text are what to read, the profiler's own cost swamps the
times). ``--keep DIR`` keeps callgrind's files in DIR (for ``callgrind_annotate``: Python
functions show as the interpreter's C functions, so they say which C code is hot, not
which Python code).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from _common import free_port
from aiohttp import web
from sms_pipeline import FLOW, KEY, SECRET, SIG_SECRET, TEXTS, convo_settings
from webhooks import inbound_body

# One conversation is the flow of bench/sms_pipeline.py: each contact texts TEXTS in turn.
WARM_UP = 30


# -- convo, in the child process ------------------------------------------------------------


def serve(home: str, fake: str, port: int, profile: str) -> None:
    """``convo serve`` on ``port`` with its SQLite and flow in ``home``; prints its URL.
    With ``profile`` (not ""), under cProfile timing the event loop thread's CPU time, its
    stats written there."""
    import logging

    from _common import serve_convo

    logging.basicConfig(level=logging.WARNING)
    settings = convo_settings(home, fake, port)

    class Ready:
        @staticmethod
        def put(url: str) -> None:
            print(f"ready {url}", flush=True)

    if not profile:
        serve_convo(settings, Ready, None)
        return
    import cProfile

    # The event loop thread's CPU time, not the wall clock: what it waits for is left out.
    with cProfile.Profile(time.thread_time) as prof:
        serve_convo(settings, Ready, None)
    prof.dump_stats(profile)


# -- the driver -----------------------------------------------------------------------------


class Fake:
    """The Vonage simulator on loopback, telling who waits for a reply that it came."""

    def __init__(self) -> None:
        from convo.simulators.vonage import VonageSimulator

        self.sim = VonageSimulator(
            api_key=KEY, api_secret=SECRET, signature_secret=SIG_SECRET,
            signature_method="sha256",
        )  # fmt: skip
        self.waiting: dict[str, asyncio.Future[None]] = {}  # contact digits -> its reply
        self.sim.app.middlewares.append(self._stamp)

    @web.middleware
    async def _stamp(self, request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        if request.path == "/sms/json" and self.sim.sent:
            to = str(self.sim.sent[-1].get("to", ""))
            future = self.waiting.pop(to, None)
            if future is not None and not future.done():
                future.set_result(None)
        return response

    def expect(self, contact: str) -> asyncio.Future[None]:
        future = asyncio.get_running_loop().create_future()
        self.waiting[contact.lstrip("+")] = future
        return future


async def play(url: str, fake: Fake, prefix: str, count: int, concurrency: int) -> None:
    """``count`` texts from contacts ``prefix + n``: each contact texts TEXTS in order, one
    in flight, the next after the reply to the previous; ``concurrency`` contacts at once."""
    contacts = [f"{prefix}{n:06d}" for n in range((count + len(TEXTS) - 1) // len(TEXTS))]
    texts = [(contact, TEXTS[i]) for contact in contacts for i in range(len(TEXTS))][:count]
    bodies = [inbound_body(contact, text) for contact, text in texts]
    per_contact: dict[str, list[bytes]] = {}
    for (contact, _), body in zip(texts, bodies, strict=True):
        per_contact.setdefault(contact, []).append(body)
    queue = list(per_contact.items())
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker() -> None:
            while queue:
                contact, own = queue.pop(0)
                for body in own:
                    reply = fake.expect(contact)
                    async with http.post(url, data=body, headers=headers) as response:
                        answer = await response.read()
                        if response.status != 200:
                            raise SystemExit(f"bench: {response.status} {answer[:200]!r}")
                    await asyncio.wait_for(reply, 600)

        await asyncio.gather(*(worker() for _ in range(concurrency)))


async def run_once(texts: int, args: argparse.Namespace, out_dir: Path) -> dict[int, int]:
    """One convo process: warm up, ``texts`` texts, stop. Instructions by thread (1 is the
    event loop's), or an empty dict without valgrind."""
    fake = Fake()
    runner = web.AppRunner(fake.sim.app, access_log=None)
    await runner.setup()
    fake_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", fake_port).start()
    home = Path(tempfile.mkdtemp(prefix="convo-instr-"))
    Path(home, "bench_pipeline.yaml").write_text(FLOW, encoding="utf-8")
    out = out_dir / f"callgrind.{texts}"
    command = [sys.executable, __file__, "--serve", str(home), f"http://127.0.0.1:{fake_port}",
               str(free_port()), args.profile or ""]  # fmt: skip
    if args.valgrind:
        command = ["valgrind", "--tool=callgrind", "--separate-threads=yes",
                   f"--callgrind-out-file={out}.%p", *command]  # fmt: skip
    child = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        assert child.stdout is not None
        while not (line := (await child.stdout.readline()).decode()).startswith("ready "):
            if not line:
                raise SystemExit("bench: convo stopped before it was ready")
        url = line.split()[1] + "/webhooks/vonage/inbound"
        started = time.monotonic()
        await play(url, fake, "+32471", WARM_UP, 1)
        await play(url, fake, "+32472", texts, args.concurrency)
        print(f"  {texts} texts answered in {time.monotonic() - started:.0f} s", flush=True)
    finally:
        if child.returncode is None:
            child.send_signal(signal.SIGTERM)
        await child.wait()
        await runner.cleanup()
        shutil.rmtree(home, ignore_errors=True)
    return _totals(out_dir, out.name) if args.valgrind else {}


def _totals(out_dir: Path, stem: str) -> dict[int, int]:
    """Instructions per thread in callgrind's files ``stem.PID-NN`` (NN: the thread)."""
    totals: dict[int, int] = {}
    for path in out_dir.glob(f"{stem}.*-*"):
        thread = int(path.name.rpartition("-")[2])
        text = path.read_text(errors="replace")
        found = re.search(r"^(?:totals|summary): (\d+)", text, re.MULTILINE)
        totals[thread] = totals.get(thread, 0) + int(found.group(1) if found else 0)
    return totals


async def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--texts", type=int, default=600, help="texts of the longer run")
    parser.add_argument("--base", type=int, default=150, help="texts of the shorter run")
    parser.add_argument("--concurrency", type=int, default=4, help="contacts texting at once")
    parser.add_argument("--no-valgrind", dest="valgrind", action="store_false")
    parser.add_argument("--keep", help="keep callgrind's files in this directory")
    parser.add_argument(
        "--profile", help="with --no-valgrind: convo's cProfile stats (the longer run)"
    )
    args = parser.parse_args()
    if args.valgrind and shutil.which("valgrind") is None:
        raise SystemExit("bench: valgrind is not installed (apt-get install valgrind)")
    out_dir = Path(args.keep or tempfile.mkdtemp(prefix="convo-callgrind-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    print(
        f"convo serve, SQLite, one signed Vonage line, {len(TEXTS)}-step flow; "
        f"{args.concurrency} contacts at once; runs of {args.base} and {args.texts} texts"
        + ("" if args.valgrind else " (no valgrind)"),
        flush=True,
    )
    try:
        base = await run_once(args.base, args, out_dir)
        full = await run_once(args.texts, args, out_dir)
    finally:
        if not args.keep:
            shutil.rmtree(out_dir, ignore_errors=True)
    if not args.valgrind:
        return 0
    texts = args.texts - args.base
    loop_per_text = (full.get(1, 0) - base.get(1, 0)) / texts
    all_per_text = (sum(full.values()) - sum(base.values())) / texts
    print(f"  totals, {args.base} texts: {sum(base.values()):,} ({base.get(1, 0):,} event loop)")
    print(f"  totals, {args.texts} texts: {sum(full.values()):,} ({full.get(1, 0):,} event loop)")
    print(f"instructions per text: {all_per_text:,.0f} (event loop thread {loop_per_text:,.0f})")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--serve":
        serve(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    else:
        raise SystemExit(asyncio.run(main()))

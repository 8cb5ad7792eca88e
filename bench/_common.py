"""What the server benchmarks share: a free port, percentiles, the settings of a convo with
one signed Vonage line, serving convo (optionally under cProfile) or any aiohttp app in a
child process, waiting for a child to be ready, a PostgreSQL schema of its own, and load
from wrk."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

from convo.config import Settings, parse_settings
from convo.web.server import serve, tune_gc


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (seconds), in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def vonage_convo(
    tmp: str,
    *,
    flow: str,
    line: str,
    credentials: tuple[str, str, str],
    provider_url: str,
    rate_limit: float,
    server: dict[str, Any],
    store_url: str | None = None,
) -> Settings:
    """Settings for a benchmarked convo: SQLite in ``tmp`` (or the store at ``store_url``),
    the flow ``tmp/FLOW.yaml`` on one Vonage line whose webhooks are signed (sha256) and
    whose API is at ``provider_url``; ``credentials`` is (api_key, api_secret,
    signature_secret); ``server`` adds to ``[server]`` (host 127.0.0.1)."""
    key, secret, signature_secret = credentials
    vonage = {
        "api_key": key,
        "api_secret": secret,
        "signature_secret": signature_secret,
        "signature_method": "sha256",
        "base_url": provider_url,
        "rate_limit": rate_limit,
    }
    return parse_settings(
        {
            "server": {"host": "127.0.0.1", **server},
            "store": {"url": store_url or f"sqlite:///{tmp}/convo.db"},
            "flows": {"paths": [f"{tmp}/{flow}.yaml"]},
            "webhooks": {"rejected_dir": f"{tmp}/rejected"},
            "lines": [{"number": line, "provider": "vonage", "flow": flow}],
            "providers": {"vonage": vonage},
        },
        source="bench",
        env={},
    )


def serve_convo(settings: Settings, ready: Any, profile: str | None) -> None:
    """Run ``convo serve`` until stopped, its garbage collector tuned as ``convo serve``
    tunes it (``run_server``); with ``profile``, write cProfile stats there."""

    def on_ready(url: str) -> None:
        tune_gc()
        ready.put(url)

    main = serve(settings, on_ready=on_ready)
    if profile is None:
        asyncio.run(main)
        return
    import cProfile

    with cProfile.Profile() as prof:
        asyncio.run(main)
    prof.dump_stats(profile)


def serve_app(app: web.Application, port: int, ready: Any) -> None:
    """Serve ``app`` on 127.0.0.1:``port`` until SIGTERM; put its base URL on ``ready``."""

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready.put(f"http://127.0.0.1:{port}")
        await asyncio.Event().wait()  # until SIGTERM

    asyncio.run(main())


def serve_counting_vonage(credentials: tuple[str, str, str], port: int, ready: Any) -> None:
    """The Vonage simulator (signed sha256 with ``credentials``: api_key, api_secret,
    signature_secret) on ``port``, plus ``GET /_bench/sent``: how many sends it accepted."""
    from convo.simulators.vonage import VonageSimulator

    key, secret, signature_secret = credentials
    sim = VonageSimulator(
        api_key=key, api_secret=secret, signature_secret=signature_secret,
        signature_method="sha256",
    )  # fmt: skip

    async def sent(_request: web.Request) -> web.Response:
        return web.json_response({"sent": len(sim.sent)})

    sim.app.router.add_get("/_bench/sent", sent)
    serve_app(sim.app, port, ready)


async def wait_ready(ready: Any, timeout: float = 30.0) -> str:
    """The next base URL a child put on ``ready`` (it fails after ``timeout`` seconds)."""
    return str(await asyncio.to_thread(ready.get, True, timeout))


@contextlib.asynccontextmanager
async def postgres_schema(prefix: str = "convo_bench") -> AsyncIterator[str]:
    """A fresh schema on the PostgreSQL server at ``CONVO_TEST_POSTGRES_URL`` (default
    postgresql://postgres@127.0.0.1:5432/test), dropped on exit: the URL that lands in it."""
    import secrets
    import urllib.parse

    import asyncpg

    admin = os.environ.get("CONVO_TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/test"
    schema = f"{prefix}_{secrets.token_hex(6)}"
    connection = await asyncpg.connect(admin, timeout=5)
    try:
        await connection.execute(f"CREATE SCHEMA {schema}")
        parts = urllib.parse.urlsplit(admin)
        query = [*urllib.parse.parse_qsl(parts.query), ("search_path", schema)]
        yield urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
    finally:
        await connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await connection.close()


def voice_flow(questions: int) -> str:
    """A voice flow of ``questions`` number questions, then goodbye: the voice benches' load."""
    steps = "".join(
        f"  q{i}:\n    ask:\n      text: 'Question {i}: press a number, then hash.'\n"
        f"      expect: number\n      save_as: a{i}\n      reprompt: ['Again, please?']\n"
        f"    then: {'q' + str(i + 1) if i < questions else 'done'}\n"
        for i in range(1, questions + 1)
    )
    return (
        "flow: bench_voice\nlanguages: [en]\nchannels: [voice]\nstart: q1\nsteps:\n"
        + steps
        + "  done:\n    say: 'Thank you, goodbye.'\n    end: true\n"
    )


# wrk: cycle through the pre-signed bodies from an offset; print the summary as JSON.
WRK_SCRIPT = """\
local requests, count, next_one = {}, 0, 0
function init(args)
  local offset = tonumber(args[2])
  local headers = {["Content-Type"] = "application/x-www-form-urlencoded"}
  for line in io.lines(args[1]) do
    count = count + 1
    requests[count] = wrk.format("POST", nil, headers, line)
  end
  next_one = offset
end
function request()
  next_one = next_one + 1
  return requests[(next_one - 1) % count + 1]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "status_errors": %d, "socket_errors": %d, '
    .. '"p50_us": %d, "p99_us": %d, "max_us": %d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def wrk(url: str, bodies: Path, offset: int, connections: int, seconds: float, tmp: str) -> Any:
    """Load ``url`` with wrk (C, one thread, ``connections`` keep-alive connections, each
    posting its next body when the previous one is answered) for ``seconds``: the bodies
    are ``bodies``' lines (form posts), in order from ``offset``, cycling. Returns wrk's
    summary: requests, duration_us, status_errors, socket_errors, p50_us, p99_us, max_us.
    A load generator in C leaves the servers the cores a Python one would take."""
    script = Path(tmp, "texts.lua")
    script.write_text(WRK_SCRIPT, encoding="utf-8")
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s"]
    command += ["-s", str(script), url, "--", str(bodies), str(offset)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])

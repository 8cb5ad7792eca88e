"""What the server benchmarks share: a free port, percentiles, and serving convo in a child
process (optionally under cProfile)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from convo.config import Settings
from convo.web.server import serve


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (seconds), in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def serve_convo(settings: Settings, ready: Any, profile: str | None) -> None:
    """Run ``convo serve`` until stopped; with ``profile``, write cProfile stats there."""
    main = serve(settings, on_ready=ready.put)
    if profile is None:
        asyncio.run(main)
        return
    import cProfile

    with cProfile.Profile() as prof:
        asyncio.run(main)
    prof.dump_stats(profile)

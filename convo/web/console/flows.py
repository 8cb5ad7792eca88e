"""Console page of the flows: each loaded flow's graph with its drop-off, and the flow
files that do not load.

``GET /console/flows?period=1h|24h|7d|30d`` (default 7d). For each flow the server is
running, the graph (:mod:`convo.web.console.graph`) with, on each step, how many
conversations entered it in the period, how many ended there and how many were abandoned
there: still open on it and silent for more than :data:`ABANDONED_AFTER` (the store's
``step_counts``).

Above them, the flow files that do not load, with their errors as ``convo validate``
prints them (``file:line:col``): those the last reload left out (``Runtime.flow_errors``:
the server runs the previous version of such a flow, if it had one), and any file under
``flows.paths`` that does not load as it is on disk now (broken since: the next reload
will leave it out). Files are checked again only when they change (size or modification
time).
"""

from __future__ import annotations

import time
from pathlib import Path

from aiohttp import web

from convo.exceptions import Diagnostic
from convo.flow.loader import check_flow, discover
from convo.store.base import StepCount
from convo.web.console.auth import console_page
from convo.web.console.graph import BOX_W, layout
from convo.web.console.render import html
from convo.web.state import RUNTIME, SETTINGS

PERIODS = {"1h": 3600.0, "24h": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0}
DEFAULT_PERIOD = "7d"
#: Seconds of silence after which an open conversation counts as abandoned on its step.
ABANDONED_AFTER = 3600.0

# path -> ((size, mtime_ns), errors): a file is checked again only when it changes.
_checked: dict[Path, tuple[tuple[int, int], list[Diagnostic]]] = {}


def broken_files(paths: tuple[str, ...], hooks: dict[str, str] | None) -> list[Diagnostic]:
    """The errors of the flow files under ``paths`` that do not load now."""
    found: list[Diagnostic] = []
    for path in discover([p for p in paths if Path(p).exists()]):
        try:
            stat = path.stat()
        except OSError:
            continue  # gone since it was listed
        stamp = (stat.st_size, stat.st_mtime_ns)
        kept = _checked.get(path)
        if kept is None or kept[0] != stamp:
            _, diagnostics = check_flow(path, hooks=hooks)
            kept = _checked[path] = (stamp, [d for d in diagnostics if d.severity == "error"])
        found.extend(kept[1])
    return found


@console_page
async def flows(request: web.Request) -> web.StreamResponse:
    runtime = request.app[RUNTIME]
    period = request.query.get("period", DEFAULT_PERIOD)
    if period not in PERIODS:
        period = DEFAULT_PERIOD
    now = time.time()
    since = now - PERIODS[period]
    shown = []
    for flow_id, spec in sorted(runtime.flows.items()):
        counts = await runtime.store.step_counts(
            flow_id, since, now + 1, idle_before=now - ABANDONED_AFTER
        )
        by_step = {c.step: c for c in counts}
        shown.append(
            {
                "spec": spec,
                "graph": layout(spec),
                "counts": {s: by_step.get(s, StepCount(s)) for s in spec.steps},
            }
        )
    bot = runtime.bot
    on_disk = broken_files(request.app[SETTINGS].flows.paths, bot.hook_names() if bot else None)
    errors = list(dict.fromkeys([*runtime.flow_errors, *on_disk]))  # each error once
    return html(
        request,
        "flows.html",
        flows=shown,
        period=period,
        periods=list(PERIODS),
        errors=errors,
        abandoned_after=int(ABANDONED_AFTER // 60),
        box_w=BOX_W,
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console/flows", flows)

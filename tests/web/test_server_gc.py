"""The garbage collector of a process that runs the server (``convo.web.server``, "Garbage
collection"): tuned once the server is up, and only by ``run_server``."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
from pathlib import Path

from convo.web.server import GC_THRESHOLD, tune_gc

ROOT = Path(__file__).resolve().parents[2]


def test_tune_gc_freezes_what_exists_and_raises_the_young_threshold() -> None:
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold() == (GC_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > 1000  # the modules, classes and functions loaded
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_run_server_tunes_the_collector_once_it_serves(tmp_path: Path) -> None:
    """In a process of its own, as ``convo serve``: before the server is up the collector
    has Python's defaults; when it announces its URL, it is tuned."""
    script = textwrap.dedent(
        f"""
        import gc, os, signal, sys
        from convo.web.server import run_server
        from tests.web.conftest import make_settings
        from pathlib import Path

        print("before", gc.get_threshold()[0], gc.get_freeze_count(), flush=True)

        def ready(url):
            print("ready", gc.get_threshold()[0], gc.get_freeze_count(), flush=True)
            os.kill(os.getpid(), signal.SIGTERM)

        settings = make_settings(Path({str(tmp_path)!r}), server={{"port": 0}})
        run_server(settings, on_ready=ready)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = [line.split() for line in done.stdout.splitlines()]
    assert lines[0] == ["before", "700", "0"]
    assert lines[1][:2] == ["ready", str(GC_THRESHOLD)] and int(lines[1][2]) > 1000

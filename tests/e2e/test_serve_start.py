"""`convo serve` when a start-up step fails: it stops with the error, promptly, and leaves
no thread behind (the SQLite store's worker kept the process alive before)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from convo.exceptions import ConfigError
from convo.web.server import serve
from tests.e2e.sms_world import Enco, settings_for


def live_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.is_alive() and not t.daemon}


async def test_a_failed_start_closes_what_it_opened(tmp_path: Path) -> None:
    provider = Enco(line="7777", address="7777")  # the account only has 8888
    sim = TestServer(provider.sim.app, host="127.0.0.1")
    await sim.start_server()
    before = live_threads()
    try:
        sim_url = str(sim.make_url("")).rstrip("/")
        settings = settings_for(tmp_path, provider, "http://127.0.0.1:9", sim_url)
        with pytest.raises(ConfigError, match=r"address: '7777' is not one of .*8888"):
            await asyncio.wait_for(serve(settings, on_ready=lambda url: None), timeout=10)
    finally:
        await sim.close()
    assert (tmp_path / "convo.db").exists()  # the store had opened: it was closed again
    left = live_threads() - before
    for thread in left:  # a closed store's thread may still be on its way out: let it end
        thread.join(timeout=5)
    assert {t for t in left if t.is_alive()} == set()

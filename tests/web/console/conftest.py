"""A real convo server on loopback (in a thread of its own) and Debian's chromium driven
by Playwright, one of each per test module.

The server serves the repository's example flows on the sandbox default lines (so the
``support_line`` flow's calls go through ``sandbox_voice``), over SQLite in a temporary
directory, with an admin token. Chromium is ``/usr/bin/chromium`` (``apt-get install
chromium``; Playwright's own browser download is not used): without it the browser tests
fail, saying so, rather than skip.

Screenshots: ``shot(page, name)`` saves one under the test's temporary directory, and
also under ``$CONVO_SCREENSHOTS`` when that is set (``CONVO_SCREENSHOTS=docs make test``
refreshes the README's pictures).
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from convo.config import parse_settings
from convo.web.app import create_app

CHROMIUM = Path("/usr/bin/chromium")
FLOWS = Path(__file__).parents[3] / "flows"
TOKEN = "console-test-token"


class Server:
    """``create_app`` served on 127.0.0.1 by an event loop in its own thread."""

    def __init__(self, directory: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = parse_settings(
            {
                "server": {"api_token": TOKEN, "public_url": self.url, "port": self.port},
                "store": {"url": f"sqlite:///{directory / 'convo.db'}"},
                "flows": {"paths": [str(FLOWS)]},
                "webhooks": {"rejected_dir": str(directory / "rejected")},
                "outbox": {"sweep_interval": 0.2},
            },
            source="console-test.toml",
            env={},
        )
        self.app = create_app(self.settings)
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="convo-server", daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._started.set()
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
            self._started.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def start(self) -> None:
        self._thread.start()
        if not self._started.wait(30) or self._error is not None:
            raise RuntimeError(f"the convo server did not start: {self._error!r}")

    def run(self, coro: Any) -> Any:
        """Run ``coro`` on the server's loop (to read its store) and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("console"))
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"the browser tests need chromium at {CHROMIUM}: install it with "
            "`apt-get install -y chromium` (.ci/run does); Playwright's own download is "
            "not used",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    fresh = browser.new_context(viewport={"width": 1280, "height": 860})
    fresh.set_default_timeout(10_000)
    yield fresh
    fresh.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def shot(tmp_path: Path) -> Any:
    def save(page: Page, name: str) -> Path:
        path = tmp_path / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        wanted = os.environ.get("CONVO_SCREENSHOTS")
        if wanted:
            Path(wanted).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(wanted) / f"{name}.png"), full_page=True)
        return path

    return save


@pytest.fixture
def signed_in(page: Page, server: Server) -> Page:
    """A page signed in to the console, on the conversations page."""
    page.goto(server.url + "/console/conversations")
    page.fill("input[name=token]", TOKEN)
    page.click("#signin-form button[type=submit]")
    page.wait_for_url("**/console/conversations")
    return page

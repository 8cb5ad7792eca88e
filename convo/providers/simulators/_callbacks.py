"""What every simulator that calls convo back needs: one HTTP session, tracked tasks.

Automatic status callbacks run as tasks the simulator keeps; :meth:`CallbackSender.aclose`
(also run on the app's cleanup) cancels the ones still pending and closes the session, so a
test never leaves a callback in flight after its server stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import aiohttp
from aiohttp import web


class CallbackSender:
    """Mixin state: call :meth:`_init_callbacks` from ``__init__`` after creating ``app``."""

    app: web.Application

    def _init_callbacks(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._session: aiohttp.ClientSession | None = None
        self.app.on_cleanup.append(self._on_cleanup)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Cancel pending automatic callbacks and close the callback HTTP session."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _on_cleanup(self, _app: web.Application) -> None:
        await self.aclose()

"""When flows are reloaded: on SIGHUP, and with ``convo serve --reload`` when their files
change.

:class:`FlowReloader` runs :meth:`convo.runtime.Runtime.reload_flows` one at a time: a
request that comes while a reload runs is folded into one more reload after it, so the
files are always read again after their last change. :meth:`FlowReloader.watch` follows
``flows.paths`` with watchfiles (inotify where there is one) and asks for a reload after
each batch of changes to ``*.yaml``/``*.yml`` files; a path that does not exist is left
out (with a warning), since there is nothing to follow.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from convo.runtime.system import Runtime

log = logging.getLogger("convo.runtime")

#: Milliseconds watchfiles gathers changes into one batch: an editor's save is several.
DEBOUNCE_MS = 200


class FlowReloader:
    """Reloads ``runtime``'s flows on request, one reload at a time."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.reloads = 0  # reloads done, for tests and logs
        self._wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def request(self, why: str) -> None:
        """Ask for a reload (from a signal handler too: this only sets a flag)."""
        log.info("reloading flows (%s)", why)
        self._wanted.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while self._wanted.is_set():
            self._wanted.clear()
            try:
                errors = await self.runtime.reload_flows()
            except Exception:
                log.exception("reloading flows failed; the loaded flows stay")
            else:
                self.reloads += 1
                if errors:
                    log.error("flows reloaded with %d error(s); those files were not", len(errors))
                else:
                    log.info("flows reloaded")

    async def watch(self, stop: asyncio.Event) -> None:
        """Reload after every change to the flow files until ``stop`` is set."""
        from watchfiles import Change, awatch

        # A stat per configured path, once: not worth a thread.
        given = self.runtime.settings.flows.paths
        paths = [p for p in given if Path(p).exists()]  # noqa: ASYNC240
        for missing in sorted(set(given) - set(paths)):
            log.warning("--reload: %s does not exist; not watched", missing)
        if not paths:
            return

        def is_flow_file(change: Change, path: str) -> bool:
            return path.endswith((".yaml", ".yml"))

        async for _ in awatch(
            *paths, watch_filter=is_flow_file, stop_event=stop, debounce=DEBOUNCE_MS
        ):
            self.request("flow files changed")

    async def aclose(self) -> None:
        """Wait for the reload in progress, if any."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

"""Supervised background loops: each one restarted after a failure, all stopped together.

The server's background work (the outbox, timers, polling, reconciliation) runs as loops
under one :class:`Supervisor`::

    supervisor = Supervisor()
    supervisor.start()                                   # from any task of the running loop
    supervisor.run("outbox", outbox_loop)                # a body that runs forever
    supervisor.every("timers", 1.0, fire_timers)         # a tick every second
    supervisor.status()                                  # {"outbox": True, "timers": True}
    await supervisor.aclose()                            # from any task: stops all of them

or ``async with Supervisor() as supervisor: ...`` (start on entry, ``aclose`` on exit).
Loops may be added before or after :meth:`Supervisor.start`; they begin once it is
started.

Contract:

* ``run(name, body)``: ``body()`` is awaited again and again. When it raises an
  ``Exception`` (any, not only convo's), the traceback is logged on ``convo.supervisor``
  with the loop's name and the body is restarted after a backoff: ``backoff`` seconds,
  doubling after each consecutive failure up to ``max_backoff``; a body that ran at least
  ``reset_after`` seconds before failing starts again from ``backoff``. A body that returns
  has finished: it is not restarted and leaves :meth:`Supervisor.status` (so a one-shot
  job, such as recovery at start-up, is retried until it succeeds once).
* ``every(name, interval, tick)``: ``tick()`` runs at once, then ``interval`` seconds after
  each previous tick ended. A tick that raises is logged the same way, and the next tick
  still runs on time.
* ``aclose()`` cancels every loop and returns once all of them have ended (their
  ``finally`` blocks ran). It may be called from a different task than ``start()``: the
  loops live in an anyio task group owned by the supervisor's own host task, because
  aiohttp may run the start-up and clean-up halves of one ``cleanup_ctx`` in different
  tasks, and a task group must be entered and left by the same task. Cancellation is
  anyio's: once a loop is cancelled, every ``await`` left in it is cancelled too, so a
  clean-up that must await (closing a connection) goes under
  ``with anyio.CancelScope(shield=True):``.
* ``status()`` maps each loop's name to whether it is alive: True while its body runs (a
  periodic loop stays alive across failed ticks), False while it waits out a backoff
  after a failure, before ``start()`` and after ``aclose()``.

``BaseException`` that is not an ``Exception`` (cancellation, ``KeyboardInterrupt``) is
never caught: it ends the supervisor, and ``aclose()`` raises it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType

import anyio
from anyio.abc import TaskGroup

log = logging.getLogger("convo.supervisor")

Body = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class _Loop:
    name: str
    body: Body
    alive: bool = False


class Supervisor:
    """Runs named background loops, restarting a failed one; see the module docstring."""

    def __init__(
        self, *, backoff: float = 0.1, max_backoff: float = 30.0, reset_after: float = 60.0
    ) -> None:
        if not 0 < backoff <= max_backoff:
            raise ValueError(f"need 0 < backoff <= max_backoff, got {backoff}, {max_backoff}")
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.reset_after = reset_after
        self._loops: dict[str, _Loop] = {}
        self._waiting: list[_Loop] = []  # added before the task group was there
        self._group: TaskGroup | None = None
        self._host: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "started" if self._host else "new"
        return f"<Supervisor {state} loops={sorted(self._loops)}>"

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the host task (in the running event loop) and with it every loop added so
        far. Starting again does nothing; starting after :meth:`aclose` raises."""
        if self._closed:
            raise RuntimeError("the supervisor is closed")
        if self._host is None:
            self._host = asyncio.get_running_loop().create_task(
                self._serve(), name="convo-supervisor"
            )

    async def aclose(self) -> None:
        """Cancel every loop and wait until all have ended. Safe to call twice, from any
        task of the loop that started it, or without a start."""
        self._closed = True
        self._stop.set()
        if self._host is not None:
            await self._host

    async def __aenter__(self) -> Supervisor:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- loops -------------------------------------------------------------------------------

    def run(self, name: str, body: Body) -> None:
        """Run ``body()`` under supervision: restarted after each failure, with backoff,
        until it returns or the supervisor closes. Names are unique."""
        self._add(_Loop(name, body))

    def every(self, name: str, interval: float, tick: Body) -> None:
        """Run ``tick()`` now and then ``interval`` seconds after each tick ends; a tick that
        raises is logged and the next one still runs."""
        if interval <= 0:
            raise ValueError(f"{name}: interval must be greater than 0, got {interval}")

        async def periodic() -> None:
            while True:
                try:
                    await tick()
                except Exception:
                    log.exception("%s: tick failed; next tick in %ss", name, interval)
                await anyio.sleep(interval)

        self._add(_Loop(name, periodic))

    def status(self) -> dict[str, bool]:
        """Each loop's name -> alive (running, not waiting out a backoff after a failure)."""
        return {name: loop.alive for name, loop in self._loops.items()}

    def _add(self, loop: _Loop) -> None:
        if self._closed:
            raise RuntimeError(f"the supervisor is closed; cannot run {loop.name!r}")
        if loop.name in self._loops:
            raise ValueError(f"a loop named {loop.name!r} is already supervised")
        self._loops[loop.name] = loop
        if self._group is None:
            self._waiting.append(loop)
        else:
            self._group.start_soon(self._supervise, loop, name=f"convo-{loop.name}")

    # -- the host task -----------------------------------------------------------------------

    async def _serve(self) -> None:
        try:
            async with anyio.create_task_group() as group:
                self._group = group
                for loop in self._waiting:
                    group.start_soon(self._supervise, loop, name=f"convo-{loop.name}")
                self._waiting.clear()
                await self._stop.wait()
                group.cancel_scope.cancel()
        finally:
            self._group = None

    async def _supervise(self, loop: _Loop) -> None:
        delay = self.backoff
        try:
            while True:
                loop.alive = True
                began = anyio.current_time()
                try:
                    await loop.body()
                except Exception:
                    loop.alive = False
                    if anyio.current_time() - began >= self.reset_after:
                        delay = self.backoff  # it had recovered: this is a new failure
                    log.exception("loop %s failed; restarting in %.2fs", loop.name, delay)
                    await anyio.sleep(delay)
                    delay = min(delay * 2, self.max_backoff)
                else:
                    log.info("loop %s finished", loop.name)
                    del self._loops[loop.name]
                    return
        finally:
            loop.alive = False

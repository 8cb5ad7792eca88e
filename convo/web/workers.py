"""``convo serve --workers N``: N server processes on one port, watched and stopped together.

The parent process (this module's :class:`WorkerPool`) serves nothing itself. It

1. refuses a store that several processes cannot share (:func:`check_workers`: memory and
   SQLite keep their conversation locks in one process), before anything starts;
2. reserves the port: it binds (without listening) a socket with ``SO_REUSEPORT`` on
   ``server.host``/``server.port``, so a busy port fails at once and port 0 becomes one
   real port that every worker shares;
3. starts N workers (fresh interpreters, ``multiprocessing``'s *spawn*), each running
   :func:`convo.web.server.serve` with a listening socket of its own on that port, also
   ``SO_REUSEPORT``: the kernel spreads new connections over the workers' sockets, so a
   busy worker does not take a burst of connections from the others;
4. once every worker is ready, prints ``convo: serving on http://HOST:PORT`` (what one
   ``convo serve`` prints) and, on stderr, the workers' process ids.

Each worker sets up logging as the parent was told to (``--log-format`` and the rest) and
reloads its own flows (``--reload``, SIGHUP). ``/metrics`` on the server's port is the
metrics of whichever worker took the request; with ``[metrics] port``, worker ``i`` serves
its own on that port plus ``i - 1``, so Prometheus scrapes each worker as a target.

Stopping. SIGTERM or SIGINT to the parent is passed on to every worker as SIGTERM: each
stops as a single ``convo serve`` does (no new connections, the requests, turns and sends
in flight get ``server.shutdown_grace`` seconds, the rest stays queued in the store), and
the parent exits 0 once all have exited 0. (Ctrl-C in a terminal signals the workers
directly too; that is the same stop.) A worker still running :data:`STOP_MARGIN` seconds
after its grace period, or any worker at a second signal, is killed (SIGKILL) and the
parent exits 1. A worker whose parent dies (even by SIGKILL) gets SIGTERM from the kernel
(Linux) and stops the same way. SIGHUP is passed on to every worker, which reloads its
flows as ``convo serve`` does; it stops nothing.

A worker that dies. During the start, a worker that exits before it is ready (a bad flow,
an unreachable database, a port it cannot bind) stops the whole pool, as one process would
have stopped: the parent passes the worker's exit status on (2 for configuration errors).
Once the pool has started, a worker that exits on its own (a crash, SIGKILL, the OOM
killer) is restarted, and the others keep serving meanwhile: connections queued on the
dead worker's socket are reset (providers retry them), and what it had claimed in the store
(replies being sent, timers being fired) goes to the other workers once the claims' lease
runs out (``[outbox] claim_lease``). The restart waits :data:`RESTART_BACKOFF` seconds,
doubling up to :data:`MAX_RESTART_BACKOFF` while a worker keeps dying within
:data:`STABLE_AFTER` seconds of its start, and is logged (stderr) each time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import FrameType

from convo.config import Settings
from convo.exceptions import ConfigError, ConvoError
from convo.store.urls import open_store

RESTART_BACKOFF = 1.0
MAX_RESTART_BACKOFF = 30.0
STABLE_AFTER = 60.0  # a worker that ran this long before dying had recovered
STOP_MARGIN = 15.0  # seconds past the grace period before a stopping worker is killed
_TICK = 0.2  # seconds between two looks at the workers when nothing happens


def check_workers(settings: Settings, count: int) -> None:
    """Raise ConfigError (one line) unless ``count`` workers may run on the configured
    store: at least 1, and above 1 only on a store several processes share."""
    if count < 1:
        raise ConfigError(f"--workers: expected at least 1, got {count}")
    if count == 1:
        return
    store = open_store(settings.store.url, f"{settings.source}: [store] url")  # opens nothing
    if not store.shared:
        kind = settings.store.url.split(":", 1)[0]
        raise ConfigError(
            f"--workers {count}: a {kind} store belongs to one process (its conversation "
            "locks live there); several workers need a shared store: "
            '[store] url = "postgresql://..."'
        )


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound (not listening) to ``host``/``port`` with ``SO_REUSEPORT``: it keeps
    the port for the workers' own sockets and tells which port 0 picked. Raises
    ConfigError when the port cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def run_workers(
    settings: Settings,
    count: int,
    bot_ref: str | None = None,
    *,
    reload: bool = False,
    on_ready: Callable[[str], None] | None = None,
) -> int:
    """Serve with ``count`` worker processes until a signal; the exit status (module
    docstring). ``reload`` is ``serve``'s, in each worker; ``on_ready`` gets the URL once
    every worker is ready (default: print it). ConfigError before anything starts
    (:func:`check_workers`, the port)."""
    check_workers(settings, count)
    reserved = reserve_port(settings.server.host, settings.server.port)
    try:
        port = int(reserved.getsockname()[1])
        pool = WorkerPool(settings.with_server(port=port), count, bot_ref, reload=reload)
        return pool.run(on_ready)
    finally:
        reserved.close()


@dataclass(slots=True)
class _Worker:
    index: int
    process: BaseProcess | None = None
    inbox: Connection | None = None  # the worker says "ready" on it
    ready: bool = False
    started_at: float = 0.0
    backoff: float = RESTART_BACKOFF
    restart_at: float | None = None  # when a dead worker is started again
    exits: list[int] = field(default_factory=list)


class WorkerPool:
    """Starts, watches and stops the worker processes (module docstring)."""

    def __init__(
        self, settings: Settings, count: int, bot_ref: str | None = None, *, reload: bool = False
    ) -> None:
        self.settings = settings
        self.bot_ref = bot_ref
        self.reload = reload
        self.workers = [_Worker(i + 1) for i in range(count)]
        self._context = multiprocessing.get_context("spawn")
        self._signals: list[int] = []
        self._url = ""

    # -- the parent's main loop --------------------------------------------------------------

    def run(self, on_ready: Callable[[str], None] | None = None) -> int:
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _SIGNALS}
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._on_hangup)
        try:
            for worker in self.workers:
                self._start(worker)
            status = self._starting()
            if status is None:
                self._announce(on_ready)
                self._serving()
                status = 0
            return self._stop(status)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals.append(signum)

    def _on_hangup(self, signum: int, frame: FrameType | None) -> None:
        for worker in self.workers:
            if worker.process is not None and worker.process.is_alive():
                _kill(worker.process, signal.SIGHUP)

    def _starting(self) -> int | None:
        """Wait until every worker is ready: None, or the status to stop with (a signal, or
        a worker that died starting)."""
        while not all(w.ready for w in self.workers):
            if self._signals:
                return 0
            self._watch()
            for worker in self.workers:
                process = worker.process
                if not worker.ready and process is not None and process.exitcode is not None:
                    code = process.exitcode
                    _say(f"worker {worker.index} failed to start ({_describe(code)}); stopping")
                    return code if code > 0 else 1
        return None

    def _serving(self) -> None:
        while not self._signals:
            self._watch()
            now = time.monotonic()
            for worker in self.workers:
                process = worker.process
                if worker.restart_at is not None:
                    if now >= worker.restart_at:
                        self._start(worker)
                elif process is not None and process.exitcode is not None:
                    self._schedule_restart(worker, process.exitcode, now)

    def _schedule_restart(self, worker: _Worker, code: int, now: float) -> None:
        if now - worker.started_at >= STABLE_AFTER:
            worker.backoff = RESTART_BACKOFF
        delay = worker.backoff
        worker.backoff = min(worker.backoff * 2, MAX_RESTART_BACKOFF)
        worker.exits.append(code)
        worker.restart_at = now + delay
        pid = worker.process.pid if worker.process is not None else "?"
        _say(f"worker {worker.index} (pid {pid}) {_describe(code)}; restarting in {delay:g}s")

    def _stop(self, status: int) -> int:
        """SIGTERM every worker, wait for them (module docstring); the exit status."""
        alive = [w.process for w in self.workers if w.process is not None and w.process.is_alive()]
        for process in alive:
            _kill(process, signal.SIGTERM)
        seen = len(self._signals)
        deadline = time.monotonic() + self.settings.server.shutdown_grace + STOP_MARGIN
        while any(p.is_alive() for p in alive):
            forced = len(self._signals) > max(seen, 1)  # a second signal: stop now
            if forced or time.monotonic() >= deadline:
                for process in alive:
                    if process.is_alive():
                        _say(f"worker pid {process.pid} did not stop; killing it")
                        _kill(process, signal.SIGKILL)
                status = status or 1
                for process in alive:
                    process.join(5)
                break
            wait([p.sentinel for p in alive if p.is_alive()], _TICK)
        for worker in self.workers:
            child = worker.process
            if child is None:
                continue
            child.join(5)
            code = child.exitcode
            if code not in (0, None, -signal.SIGTERM) and child in alive and status == 0:
                _say(f"worker {worker.index} {_describe(code)} while stopping")
                status = 1
            if worker.inbox is not None:
                worker.inbox.close()
        _say("stopped")
        return status

    # -- workers -----------------------------------------------------------------------------

    def _start(self, worker: _Worker) -> None:
        if worker.inbox is not None:
            worker.inbox.close()
        inbox, outbox = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=serve_worker,
            args=(self.settings, self.bot_ref, worker.index, outbox, os.getpid(), self.reload),
            name=f"convo-worker-{worker.index}",
        )
        process.start()
        outbox.close()  # the child's end: ours would keep the pipe open after it died
        worker.process, worker.inbox, worker.ready = process, inbox, False
        worker.started_at, worker.restart_at = time.monotonic(), None

    def _watch(self) -> None:
        """Wait a tick for a worker to exit or say it is ready; note who became ready."""
        handles: list[Connection | int] = []
        for worker in self.workers:
            if worker.process is not None and worker.process.exitcode is None:
                handles.append(worker.process.sentinel)
            if worker.inbox is not None and not worker.ready:
                handles.append(worker.inbox)
        timeout = _TICK
        pending = [w.restart_at for w in self.workers if w.restart_at is not None]
        if pending:
            timeout = max(0.0, min(timeout, min(pending) - time.monotonic()))
        for handle in wait(handles, timeout) if handles else ():
            for worker in self.workers:
                if handle is worker.inbox:
                    self._read_ready(worker)

    def _read_ready(self, worker: _Worker) -> None:
        assert worker.inbox is not None
        try:
            url = worker.inbox.recv()
        except (EOFError, OSError):  # the worker died before it was ready
            worker.inbox.close()
            worker.inbox = None
            return
        worker.ready = True
        self._url = str(url)
        if worker.exits:
            _say(f"worker {worker.index} (pid {_pid(worker)}) is serving again")

    def _announce(self, on_ready: Callable[[str], None] | None) -> None:
        if on_ready is None:
            print(f"convo: serving on {self._url}", flush=True)
        else:
            on_ready(self._url)
        pids = ", ".join(str(_pid(w)) for w in self.workers)
        _say(f"{len(self.workers)} workers (pids {pids})")


def serve_worker(
    settings: Settings,
    bot_ref: str | None,
    index: int,
    ready: Connection,
    parent: int,
    reload: bool = False,
) -> None:
    """One worker's process (the target of the pool's processes): ``convo serve`` on a
    ``SO_REUSEPORT`` socket, saying its URL on ``ready`` once it listens. Its metrics, when
    ``[metrics] port`` gives them a port of their own, are on that port plus ``index - 1``
    (one scrape target per worker). Exits 0 after a graceful stop, 2 with one line on
    stderr when the start fails on bad configuration."""
    from convo import logs
    from convo.bot import load_bot
    from convo.web.server import run_server

    logs.configure(settings.logging, own_numbers=[line.number for line in settings.lines])
    if settings.metrics.port:
        metrics = dataclasses.replace(settings.metrics, port=settings.metrics.port + index - 1)
        settings = dataclasses.replace(settings, metrics=metrics)

    # SIGHUP is the parent's to pass on (serve() reloads the flows on it once it runs).
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    _stop_with_parent(parent)
    try:
        bot = load_bot(bot_ref) if bot_ref is not None else None
        run_server(settings, bot=bot, reload=reload, reuse_port=True, on_ready=ready.send)
    except ConvoError as exc:
        print(f"convo: worker {index}: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)
    except KeyboardInterrupt:  # a Ctrl-C before serve() took the signal over: not serving
        sys.exit(0)
    finally:
        with contextlib.suppress(OSError):
            ready.close()


_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _stop_with_parent(parent: int) -> None:
    """Have the kernel send this worker SIGTERM when the parent dies (Linux), so a parent
    that was SIGKILLed leaves no worker serving on its own; elsewhere, nothing."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _kill(process: BaseProcess, sig: signal.Signals) -> None:
    if process.pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, sig)


def _describe(code: int | None) -> str:
    if code is None:
        return "is running"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with status {code}"


def _pid(worker: _Worker) -> int | str:
    return worker.process.pid if worker.process is not None and worker.process.pid else "?"


def _say(message: str) -> None:
    print(f"convo: {message}", file=sys.stderr, flush=True)

"""The SQLite store's checkpoints, on a thread and a connection of their own.

Why. In WAL mode a commit appends pages to the ``-wal`` file; a *checkpoint* copies them
into the database file and syncs it, so the WAL can start again from its beginning.
SQLite's automatic checkpoint runs inside the commit that crosses ``wal_autocheckpoint``
pages, on the writer's thread: meanwhile every queued job waits, and with them every
webhook whose text is being stored before its 200. Measured with
``bench/sms_pipeline.py`` at half of convo's rate: a stall of 25-45 ms every ~0.3 s, which
made 5-10% of the acks take over 25 ms.

How. :class:`Checkpointer` runs ``PRAGMA wal_checkpoint(PASSIVE)`` from its own
connection after writes, at most once per ``interval``. A passive checkpoint takes no lock
a writer waits for: commits go on appending to the WAL while it copies and syncs. It
copies what was committed when it began, so under steady writes it runs again at once
while the last pass found new pages, up to :data:`PASSES` times, to let the WAL catch up
and start again. The writer keeps its automatic checkpoint as a backstop (for pages the
checkpointer could not reach, or a checkpointer that stopped): it then finds little left
to copy. Durability is unchanged: ``synchronous=NORMAL`` here too, so a checkpoint syncs the
WAL before copying and the database file after, as the automatic one does.

Failures. A checkpoint that fails (a full disk, a file made read-only) is logged once, and
again when checkpoints succeed once more; the writer's own checkpoint stays the backstop.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger("convo.store")

CHECKPOINT_INTERVAL = 0.1
"""Seconds between the starts of two checkpoints while writes go on (none while idle)."""

PASSES = 3
"""Checkpoints in a row at most, while each finds pages committed during the last."""


class Checkpointer:
    """Checkpoints the WAL of the SQLite file at ``path`` after :meth:`written` says there
    were writes (module docstring). :meth:`start` once, :meth:`stop` to end it; the
    thread holds its connection only between the two."""

    def __init__(self, path: Path, *, interval: float = CHECKPOINT_INTERVAL) -> None:
        self.path = path
        self.interval = interval
        self._wrote = threading.Event()
        self._stopping = threading.Event()
        self._failing = False
        self._thread = threading.Thread(
            target=self._run, name="convo-sqlite-checkpoints", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def written(self) -> None:
        """Say the writer committed: a checkpoint follows within :attr:`interval`. Called
        after every batch, so it only reads a flag while one is already due."""
        if not self._wrote.is_set():
            self._wrote.set()

    def stop(self) -> None:
        """End the thread, after the checkpoint in progress, and close its connection.
        Blocks until then: call it from a thread, not the event loop."""
        self._stopping.set()
        self._wrote.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        try:
            cx = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        except sqlite3.Error as exc:
            log.warning(
                "SQLite store %s: no checkpoint thread (%s); commits checkpoint", self.path, exc
            )
            return
        try:
            cx.execute("PRAGMA synchronous = NORMAL")
            while True:
                self._wrote.wait()
                if self._stopping.is_set():
                    return
                self._wrote.clear()
                self._checkpoint(cx)
                if self._stopping.wait(self.interval):
                    return
        except sqlite3.Error as exc:
            log.warning("SQLite store %s: checkpoint thread stopped (%s)", self.path, exc)
        finally:
            cx.close()

    def _checkpoint(self, cx: sqlite3.Connection) -> None:
        for _ in range(PASSES):
            try:
                busy, frames, copied = cx.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error as exc:
                if not self._failing:
                    self._failing = True
                    log.warning(
                        "SQLite store %s: checkpoint failed (%s); commits checkpoint until "
                        "it works again",
                        self.path,
                        exc,
                    )
                return
            if self._failing:
                self._failing = False
                log.info("SQLite store %s: checkpoints work again", self.path)
            if busy or copied <= 0:
                return  # another checkpoint runs (the writer's), or nothing was copied
            if copied >= frames:
                return  # the WAL is copied whole: the next commit starts it again

"""The SQLite store's checkpoint thread: the WAL reaches the database file without a commit
doing it, and nothing of it is left when the store closes."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from convo.store.sqlite_connection import SqliteConnection, transaction

DEADLINE = 10.0  # seconds: the thread checkpoints within ~0.1 s; a slow machine gets room


def in_database_file(path: Path) -> list[str]:
    """The rows of ``notes`` in the database file itself, the WAL ignored (``immutable``:
    read as it is on disk, no WAL, no locks); none while the file cannot be read whole."""
    cx = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return [row[0] for row in cx.execute("SELECT text FROM notes ORDER BY text")]
    except sqlite3.OperationalError:  # the table itself is not in the file yet
        return []
    except sqlite3.DatabaseError:  # "malformed": read while a checkpoint wrote it (no lock)
        return []
    finally:
        cx.close()


def wal_of(path: Path) -> Path:
    return path.with_name(f"{path.name}-wal")


def write(cx: sqlite3.Connection, text: str) -> None:
    with transaction(cx):
        cx.execute("CREATE TABLE IF NOT EXISTS notes (text TEXT)")
        cx.execute("INSERT INTO notes VALUES (?)", (text,))


async def test_commits_reach_the_database_file_without_the_writer_checkpointing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.db"
    cx = SqliteConnection(path)
    await cx.open()
    try:
        for text in ("a", "b", "c"):
            await cx.run("write", lambda db, text=text: write(db, text))
        # Three small commits are far below the writer's automatic checkpoint (4,000 pages
        # of WAL): only the checkpoint thread copies them into the file.
        (frames,) = await cx.run(
            "wal size", lambda db: db.execute("PRAGMA wal_autocheckpoint").fetchone()
        )
        assert frames == 4000
        deadline = time.monotonic() + DEADLINE
        while (found := in_database_file(path)) != ["a", "b", "c"]:
            assert time.monotonic() < deadline, f"the database file holds {found}"
            await asyncio.sleep(0.02)
    finally:
        await cx.close()


async def test_closing_leaves_no_wal_behind(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    cx = SqliteConnection(path)
    await cx.open()
    await cx.run("write", lambda db: write(db, "a"))
    await asyncio.sleep(0.3)  # let the thread checkpoint (and hold its connection)
    await cx.close()
    # The last connection to close removes the WAL: the thread's closed before the writer.
    assert not wal_of(path).exists()
    assert in_database_file(path) == ["a"]

"""Writing message rows to the SQLite store (the row codec itself is :mod:`convo.store.rows`)."""

from __future__ import annotations

import sqlite3

from convo.exceptions import StoreError
from convo.store.rows import Row, message, message_row, session, session_row
from convo.store.sqlite_schema import INSERT_MESSAGE

__all__ = ["Row", "insert_messages", "message", "message_row", "session", "session_row"]


def insert_messages(cx: sqlite3.Connection, rows: list[Row]) -> None:
    """Insert message rows; StoreError naming the id when one is already in the log."""
    before = cx.total_changes
    try:
        cx.executemany(INSERT_MESSAGE, rows)
    except sqlite3.IntegrityError as exc:
        # executemany stops at the first failing row: the rows before it went in.
        failed = rows[cx.total_changes - before][0]
        raise StoreError(f"message id {failed} is already in the log ({exc})") from None

"""Stores: sessions, message log, suppressions, fragments, seen tokens; memory, SQLite and
PostgreSQL.

The protocols are in :mod:`convo.store.base`; :func:`open_store` (from
:mod:`convo.store.urls`) turns the ``[store] url`` of convo.toml into a store, importing
only the backend that URL names (so a memory-store user never imports aiosqlite, and only a
PostgreSQL user imports asyncpg), and
:func:`store_url` checks such a URL without opening anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from convo.store.base import ConversationLocks, MessageQuery, Store
from convo.store.locks import LocalLocks
from convo.store.memory import MemoryStore
from convo.store.urls import StoreUrl, open_store, store_url

if TYPE_CHECKING:
    from convo.store.postgres import PostgresStore
    from convo.store.sqlite import SqliteStore

__all__ = [
    "ConversationLocks",
    "LocalLocks",
    "MemoryStore",
    "MessageQuery",
    "PostgresStore",
    "SqliteStore",
    "Store",
    "StoreUrl",
    "open_store",
    "store_url",
]


def __getattr__(name: str) -> Any:
    # The SQL stores are exported but imported on first use: they pull in their drivers.
    if name == "SqliteStore":
        from convo.store.sqlite import SqliteStore

        return SqliteStore
    if name == "PostgresStore":
        from convo.store.postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

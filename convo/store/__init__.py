"""Stores: sessions, message log, suppressions, fragments; memory and SQLite built in.

:func:`open_store` turns the ``[store] url`` of convo.toml (DESIGN §4) into a store, importing
only the backend that URL names (so a SQLite user never imports a Redis client)::

    memory://                  MemoryStore (nothing survives the process)
    sqlite:///var/convo.db     SqliteStore, path relative to the working directory
    sqlite:////srv/convo.db    SqliteStore, absolute path
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from convo.exceptions import ConfigError
from convo.store.base import ConversationLocks, MessageQuery, Store
from convo.store.locks import LocalLocks
from convo.store.memory import MemoryStore

if TYPE_CHECKING:
    from convo.store.sqlite import SqliteStore

__all__ = [
    "ConversationLocks",
    "LocalLocks",
    "MemoryStore",
    "MessageQuery",
    "SqliteStore",
    "Store",
    "open_store",
]

# scheme -> "module:class", imported on first use.
_BACKENDS = {
    "memory": "convo.store.memory:MemoryStore",
    "sqlite": "convo.store.sqlite:SqliteStore",
}
_LATER = ("redis", "rediss", "postgresql", "postgres")


def open_store(url: str) -> Store:
    """The store a URL names, not yet opened (``await store.open()`` next).

    Raises ConfigError for an unknown scheme, a backend that is not available yet
    (``redis://``, ``postgresql://``) or a SQLite URL without a file path.
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or not scheme:
        raise ConfigError(f"store url {url!r} has no scheme; {_accepted()}")
    if scheme in _LATER:
        raise ConfigError(f"store url scheme {scheme!r} is not available yet; {_accepted()}")
    target = _BACKENDS.get(scheme)
    if target is None:
        raise ConfigError(f"store url scheme {scheme!r} is unknown; {_accepted()}")
    module, _, name = target.partition(":")
    backend: Any = getattr(importlib.import_module(module), name)
    if scheme == "memory":
        if rest:
            raise ConfigError(f"store url {url!r}: memory:// takes nothing after it")
        return backend()  # type: ignore[no-any-return]  # backends are Store classes
    return backend(_sqlite_path(url, rest))  # type: ignore[no-any-return]  # as above


def _sqlite_path(url: str, rest: str) -> Path:
    # sqlite:///var/x.db -> rest "/var/x.db" -> relative "var/x.db";
    # sqlite:////abs/x.db -> rest "//abs/x.db" -> absolute "/abs/x.db".
    if not rest.startswith("/"):
        raise ConfigError(
            f"store url {url!r}: a SQLite url has three slashes and a path, "
            "like sqlite:///var/convo.db (relative) or sqlite:////srv/convo.db (absolute)"
        )
    path = unquote(rest[1:].partition("?")[0])
    if not path or path.endswith("/"):
        raise ConfigError(f"store url {url!r}: no database file name after sqlite:///")
    return Path(path)


def _accepted() -> str:
    return "accepted: memory://, sqlite:///relative/path.db, sqlite:////absolute/path.db"


def __getattr__(name: str) -> Any:
    # SqliteStore is exported but imported on first use: it pulls in aiosqlite.
    if name == "SqliteStore":
        from convo.store.sqlite import SqliteStore

        return SqliteStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

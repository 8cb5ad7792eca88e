"""The store URL (``[store] url`` in convo.toml): what it may say, and the store it names.

This is the one place that reads a store URL. :func:`store_url` checks one without opening
anything (the configuration loader calls it, so a bad URL fails at load), and
:func:`open_store` builds the store it names, importing only that backend::

    memory://                  MemoryStore (nothing survives the process)
    sqlite:///var/convo.db     SqliteStore, path relative to the working directory
    sqlite:////srv/convo.db    SqliteStore, absolute path
    postgresql://user:password@host:5432/db?sslmode=require
                               PostgresStore (also postgres://); needs convo[postgres];
                               ?pool_size=N: connections per process (20)

Every other URL is a :class:`~convo.exceptions.ConfigError` of one line that names the
setting, what is wrong and the URLs that work. A URL of a scheme that is not SQLite or
memory is never echoed whole: it may carry a database password.

A SQLite path is taken as written (no percent-decoding); ``?`` options are refused rather
than silently ignored or made part of a file name.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from convo.exceptions import ConfigError
from convo.store.base import Store

SUPPORTED = (
    "memory://, sqlite:///relative/path.db, sqlite:////absolute/path.db, "
    "postgresql://user:password@host:port/database"
)
"""The store URLs convo can open, as error messages list them."""

# Backends that will come: their URLs are refused as "not supported yet", not as unknown.
_LATER = {"redis": "redis", "rediss": "redis"}
_POSTGRES = ("postgresql", "postgres")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True, slots=True)
class StoreUrl:
    """A store URL that :func:`store_url` accepted: its backend and, for SQLite, the file;
    for PostgreSQL, the URL to connect to (it may hold a password: never log it)."""

    backend: Literal["memory", "sqlite", "postgresql"]
    path: Path | None = None  # the database file (relative to the working directory or not)
    dsn: str = ""  # the PostgreSQL URL, as given


def store_url(url: str, where: str = "[store] url") -> StoreUrl:
    """Check ``url`` and say what it names; opens nothing. ``where`` starts each error
    message (the configuration loader gives the file and key). Raises ConfigError."""
    found = _SCHEME.match(url)
    if found is None:
        raise ConfigError(f"{where}: {url!r} is not a store URL (supported: {SUPPORTED})")
    scheme, rest = found[1].lower(), url[found.end() :]
    if scheme in _LATER:
        raise ConfigError(
            f"{where}: {_LATER[scheme]}:// is not supported yet (supported: {SUPPORTED})"
        )
    if scheme == "memory":
        if rest:
            raise ConfigError(f"{where}: {url!r}: memory:// takes nothing after it")
        return StoreUrl("memory")
    if scheme == "sqlite":
        return StoreUrl("sqlite", _sqlite_path(url, rest, where))
    if scheme in _POSTGRES:
        _check_postgres(url, where)
        return StoreUrl("postgresql", dsn=url)
    raise ConfigError(f"{where}: {scheme}:// is not a known store (supported: {SUPPORTED})")


def open_store(url: str, where: str = "[store] url", *, migrate: bool = True) -> Store:
    """The store ``url`` names, not yet opened (``await store.open()`` next; SQLite creates
    the file and its folders then, and migrates it as PostgreSQL does unless ``migrate``
    is False: ``convo db`` then migrates or reports). Raises ConfigError as
    :func:`store_url` does, and when the backend's library is not installed."""
    parsed = store_url(url, where)
    if parsed.backend == "postgresql":
        try:
            from convo.store.postgres import PostgresStore  # imports asyncpg: only when asked
        except ModuleNotFoundError as exc:
            if exc.name != "asyncpg":
                raise
            raise ConfigError(
                f"{where}: postgresql:// needs asyncpg: pip install 'convo[postgres]'"
            ) from None
        return PostgresStore(parsed.dsn, migrate=migrate)
    if parsed.path is None:
        from convo.store.memory import MemoryStore

        return MemoryStore()
    from convo.store.sqlite import SqliteStore  # imports aiosqlite: only when asked for

    return SqliteStore(parsed.path, migrate=migrate)


def _check_postgres(url: str, where: str) -> None:
    """What can be checked of a PostgreSQL URL without connecting; each error names the
    part that is wrong and never echoes the URL (it may hold a password)."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError as exc:
        raise ConfigError(f"{where}: the postgresql:// URL is malformed ({exc})") from None
    if parts.fragment:
        raise ConfigError(f"{where}: a postgresql:// URL takes no #fragment")
    if parts.path.strip("/") == "" and not parts.query:
        raise ConfigError(
            f"{where}: the postgresql:// URL names no database; write "
            "postgresql://user:password@host:port/database"
        )
    if parts.query:
        try:
            urllib.parse.parse_qs(parts.query, strict_parsing=True)
        except ValueError:
            raise ConfigError(
                f"{where}: the postgresql:// URL's options are not name=value pairs"
            ) from None
        found = re.search(r"(?:^|&)pool_size=([^&]*)", parts.query)
        if found and not (found[1].isdigit() and 1 <= int(found[1]) <= 1000):
            raise ConfigError(
                f"{where}: the postgresql:// URL's pool_size must be a whole number "
                f"from 1 to 1000, got {found[1]!r}"
            )


def _sqlite_path(url: str, rest: str, where: str) -> Path:
    # sqlite:///var/x.db -> rest "/var/x.db" -> relative "var/x.db";
    # sqlite:////abs/x.db -> rest "//abs/x.db" -> absolute "/abs/x.db".
    if not rest.startswith("/"):
        raise ConfigError(
            f"{where}: {url!r} has no file path; write sqlite:///relative/path.db "
            "or sqlite:////absolute/path.db (three or four slashes)"
        )
    path = rest[1:]
    if "?" in path or "#" in path:
        raise ConfigError(f"{where}: {url!r}: a SQLite URL takes no options (? or #)")
    if not path.strip("/") or path.endswith("/"):
        raise ConfigError(f"{where}: {url!r} names no database file after sqlite:///")
    return Path(path)

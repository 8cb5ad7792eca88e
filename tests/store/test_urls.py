"""The store URL: the URLs that open a store, and a one-line error for every other."""

from __future__ import annotations

from pathlib import Path

import pytest

from convo.exceptions import ConfigError
from convo.store import MemoryStore, StoreUrl, open_store, store_url
from convo.store.sqlite import SqliteStore
from convo.store.urls import SUPPORTED as LISTED

SUPPORTED = f"(supported: {LISTED})"


def test_relative_sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert store_url("sqlite:///var/convo.db") == StoreUrl("sqlite", Path("var/convo.db"))
    store = open_store("sqlite:///var/convo.db")
    assert isinstance(store, SqliteStore)
    assert store.path == Path("var/convo.db")
    assert not store.path.is_absolute()
    assert not (tmp_path / "var").exists()  # nothing is created before open()


async def test_relative_url_lands_under_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///var/data/convo.db")  # open() creates the folders
    await store.open()
    assert await store.ping()
    await store.close()
    assert (tmp_path / "var" / "data" / "convo.db").is_file()


def test_absolute_sqlite_url(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/x.db")  # tmp_path starts with "/"
    assert isinstance(store, SqliteStore)
    assert store.path == tmp_path / "x.db" and store.path.is_absolute()


async def test_memory_url() -> None:
    assert store_url("memory://") == StoreUrl("memory")
    store = open_store("MEMORY://")  # schemes are case-insensitive
    assert isinstance(store, MemoryStore)
    await store.open()
    assert await store.ping()


BAD_URLS = [
    ("redis://localhost:6379/0", f"redis:// is not supported yet {SUPPORTED}"),
    ("rediss://h", f"redis:// is not supported yet {SUPPORTED}"),
    ("postgresql://x", "the postgresql:// URL names no database; write postgresql://"),
    ("postgres://u:pw@db:port/convo", "the postgresql:// URL is malformed (Port could not"),
    ("postgresql://u@db/convo?sslmode", "the postgresql:// URL's options are not name=value"),
    ("postgresql://u@db/c?pool_size=0", "the postgresql:// URL's pool_size must be a whole number"),
    ("ftp://files.example/convo.db", f"ftp:// is not a known store {SUPPORTED}"),
    ("convo.db", f"'convo.db' is not a store URL {SUPPORTED}"),
    ("sqlite://nopath", "'sqlite://nopath' has no file path; write sqlite:///relative/path.db"),
    ("sqlite:///", "'sqlite:///' names no database file after sqlite:///"),
    ("sqlite:///var/", "'sqlite:///var/' names no database file"),
    ("sqlite:///x.db?mode=ro", "'sqlite:///x.db?mode=ro': a SQLite URL takes no options"),
    ("memory://x", "'memory://x': memory:// takes nothing after it"),
]


@pytest.mark.parametrize(("url", "message"), BAD_URLS)
def test_bad_urls_fail_in_one_line_naming_the_setting(url: str, message: str) -> None:
    for check in (store_url, open_store):
        with pytest.raises(ConfigError) as info:
            check(url)
        text = str(info.value)
        assert text.startswith(f"[store] url: {message}")
        assert "\n" not in text


def test_errors_start_with_where_the_url_came_from() -> None:
    with pytest.raises(ConfigError, match=r"^convo.toml: \[store\] url: redis:// is not"):
        open_store("redis://h", "convo.toml: [store] url")


def test_a_postgresql_url_names_the_postgres_store_without_opening_it() -> None:
    url = "postgresql://convo:pw@db.example:5433/convo?sslmode=require"
    assert store_url(url) == StoreUrl("postgresql", dsn=url)
    assert store_url("POSTGRES://h/db").backend == "postgresql"
    store = open_store(url)
    assert type(store).__name__ == "PostgresStore"
    assert "pw" not in repr(store) and "db.example:5433/convo" in repr(store)


def test_a_password_in_an_unsupported_url_is_not_echoed() -> None:
    for url in (
        "postgresql://convo:hunter2@db:x/convo",
        "postgresql://convo:hunter2@db",
        "mongodb://convo:hunter2@db/convo",
    ):
        with pytest.raises(ConfigError) as info:
            store_url(url)
        assert "hunter2" not in str(info.value)

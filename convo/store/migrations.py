"""Versioned schema migrations, one mechanism for every SQL store.

A store's schema history is a list of scripts: ``scripts[i]`` brings a database from
version ``i`` to ``i + 1`` (append only; never edit an old one). A database records the
number of scripts applied. :func:`upgrade` applies the missing ones, and is safe when
several processes start on one database at once: it holds the store's **migration lock**
while it reads the version and applies what is missing, so the first process migrates and
the others, once they get the lock, find nothing left to do.

What differs per store is behind :class:`MigrationTarget`, three small steps:

* SQLite: the lock is an immediate transaction (SQLite's write lock) around all of it, and
  the version is ``PRAGMA user_version``: the scripts and the version change commit
  together or not at all;
* PostgreSQL: the lock is a session advisory lock (``pg_advisory_lock``) held while each
  missing script runs in a transaction of its own with its version change, and the version
  is a one-row table.

A database at a version above the scripts this convo knows was written by a newer convo:
:func:`upgrade` refuses it (StoreError) rather than run old code on a newer schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from convo.exceptions import StoreError


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """Where a database's schema is: ``version`` scripts applied of the ``latest`` this
    convo knows. ``store`` names the database (never with a password)."""

    store: str
    version: int
    latest: int

    @property
    def pending(self) -> int:
        """How many scripts are still to apply (0 when current or newer)."""
        return max(self.latest - self.version, 0)

    @property
    def newer(self) -> bool:
        """True when a newer convo wrote the database: this one must not open it."""
        return self.version > self.latest

    def describe(self) -> str:
        """One line for people, e.g. ``schema version 5 of 6: 1 migration pending``."""
        text = f"{self.store}: schema version {self.version} of {self.latest}"
        if self.newer:
            return text + ": written by a newer convo; upgrade convo to open it"
        if self.pending:
            return text + f": {self.pending} migration(s) pending (convo db upgrade)"
        return text + ": up to date"


class MigrationTarget(Protocol):
    """The three steps :func:`upgrade` needs from a store's database."""

    def migration_lock(self) -> AbstractAsyncContextManager[None]:
        """Held while the version is read and scripts applied: one holder at a time among
        every process on the database."""

    async def schema_version(self) -> int:
        """How many scripts the database has (0 for an empty one)."""

    async def apply_migration(self, version: int, script: str) -> None:
        """Run ``script`` (brings ``version`` to ``version + 1``) and record ``version +
        1`` as one unit: both happen or neither does."""


async def upgrade(target: MigrationTarget, scripts: Sequence[str], store: str) -> SchemaStatus:
    """Bring ``target`` to ``len(scripts)`` under its migration lock; returns the status
    before the upgrade (``version``: what it found). StoreError, applying nothing, for a
    database newer than ``scripts``."""
    async with target.migration_lock():
        found = SchemaStatus(store, await target.schema_version(), len(scripts))
        check_not_newer(found)
        for version in range(found.version, found.latest):
            await target.apply_migration(version, scripts[version])
    return found


def check_not_newer(status: SchemaStatus) -> None:
    """StoreError when a newer convo wrote the database (see :attr:`SchemaStatus.newer`)."""
    if status.newer:
        raise StoreError(
            f"{status.store} has schema version {status.version}, newer than this convo "
            f"knows (version {status.latest}): upgrade convo to open it"
        )

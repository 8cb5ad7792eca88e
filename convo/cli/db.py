"""``convo db``: the configured store's schema version, and its migrations.

``convo db status`` prints where the schema is (``... schema version 5 of 6: 1
migration(s) pending``) and exits 0 when it is up to date, 1 when it is not (behind, or
written by a newer convo): a deploy script can check before it starts servers.
``convo db upgrade`` applies the missing migrations under the store's migration lock
(:mod:`convo.store.migrations`), so it is safe while servers start or run; it prints what
it did and exits 0. ``convo serve`` migrates on start the same way: ``upgrade`` is for
migrating ahead of a deploy, as its own step. A ``memory://`` store keeps no schema.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from convo.store.base import VersionedSchema
    from convo.store.migrations import SchemaStatus

    Action = Callable[[VersionedSchema], Awaitable[SchemaStatus]]

DESCRIPTION = (
    "The store's schema: status prints its version against this convo's (exit 1 when it "
    "is not up to date); upgrade applies the missing migrations, safely while other convo "
    "processes start or run."
)


def cmd_db_status(args: argparse.Namespace) -> int:
    status = _with_store(args, lambda store: store.schema_status())
    if status is None:
        return 0
    print(status.describe())
    return 0 if status.pending == 0 and not status.newer else 1


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    before = _with_store(args, lambda store: store.upgrade_schema())
    if before is None:
        return 0
    if before.pending:
        print(f"{before.store}: migrated from schema version {before.version} to {before.latest}")
    else:
        print(f"{before.store}: schema version {before.version} is up to date; nothing to do")
    return 0


def add_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], config: argparse.ArgumentParser
) -> None:
    """``convo db status|upgrade``; ``config`` is the parent parser that gives ``--config``."""
    db = sub.add_parser(
        "db", help="the store's schema version and migrations", description=DESCRIPTION
    )
    actions = db.add_subparsers(dest="action", required=True)
    p = actions.add_parser("status", parents=[config], help="the schema version (exit 1: behind)")
    p.set_defaults(func=cmd_db_status)
    p = actions.add_parser("upgrade", parents=[config], help="apply the missing migrations")
    p.set_defaults(func=cmd_db_upgrade)


def _with_store(args: argparse.Namespace, action: Action) -> SchemaStatus | None:
    """Open the configured store without migrating, run ``action(store)``, close it.
    None (after saying why) for a store without a schema."""
    from convo.config import load_settings
    from convo.store import open_store
    from convo.store.base import VersionedSchema

    settings = load_settings(args.config)
    store = open_store(settings.store.url, f"{settings.source}: [store] url", migrate=False)
    if not isinstance(store, VersionedSchema):
        print("convo: a memory:// store keeps no schema: nothing to migrate", file=sys.stderr)
        return None

    async def run(store: VersionedSchema) -> SchemaStatus:
        await store.open()  # type: ignore[attr-defined]  # every VersionedSchema is a Store
        try:
            return await action(store)
        finally:
            await store.close()  # type: ignore[attr-defined]

    return asyncio.run(run(store))

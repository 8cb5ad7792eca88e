"""``convo contacts import FILE.csv [--strict] [--region BE] [--encoding utf-8]``.

Reads the CSV as it streams (:mod:`convo.contacts.csv_reader`) and puts its good rows in
the configured store in batches (:mod:`convo.contacts.importing`); a contact already there
is replaced. Every bad row is printed to standard error as ``FILE:LINE: reason`` as it is
met, and a summary comes last. ``--strict`` reads the whole file first and imports nothing
if any row is bad. Exit 0 when every row was good, 1 when some were not (with ``--strict``:
nothing imported), 2 when the file cannot be read or has no usable header, or the store
is ``memory://`` (which would forget the contacts when the command ends).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from convo.contacts.csv_reader import CsvRow

DESCRIPTION = (
    "Import contacts from a CSV file: a header row with a 'number' column; 'name', "
    "'language' and 'timezone' columns fill those attributes, every other column becomes "
    "one of the contact's fields. Bad rows are reported with their line numbers; the good "
    "ones are imported unless --strict."
)


def cmd_contacts_import(args: argparse.Namespace) -> int:
    from convo.config import load_settings
    from convo.contacts.csv_reader import CsvProblem, read_csv_file
    from convo.contacts.importing import ImportReport, import_contacts
    from convo.runtime import STORE_ONLY, Runtime
    from convo.store.urls import store_url

    path = Path(args.file)
    settings = load_settings(args.config)
    if store_url(settings.store.url).backend == "memory":
        print(
            f"convo: contacts import: {settings.source}: [store] url is memory://, which "
            "keeps nothing after this command: configure a SQLite store",
            file=sys.stderr,
        )
        return 2

    def show(problem: CsvProblem) -> None:
        print(f"{path}:{problem.line}: {problem.kind}: {problem.reason}", file=sys.stderr)

    def rows() -> Iterator[CsvRow]:
        return read_csv_file(path, region=args.region, encoding=args.encoding)

    async def run() -> tuple[ImportReport, bool]:
        if args.strict:
            check = await import_contacts(None, rows(), on_problem=show)
            if check.header is not None or check.skipped:
                return check, False
        async with Runtime(settings, parts=STORE_ONLY) as runtime:
            report = await import_contacts(
                runtime.store,
                rows(),
                on_problem=None if args.strict else show,
            )
        return report, True

    try:
        report, stored = asyncio.run(run())
    except (OSError, ValueError) as exc:
        print(f"convo: contacts import: {path}: {exc}", file=sys.stderr)
        return 2
    if args.strict and not stored:
        print(f"{report.describe(stored=False)} (--strict: a file with bad rows is not imported)")
    else:
        print(report.describe())
    if report.header is not None:
        return 2
    return 1 if report.skipped else 0


def add_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], config: argparse.ArgumentParser
) -> None:
    """``convo contacts import``; ``config`` is the parent parser that gives ``--config``."""
    contacts = sub.add_parser("contacts", help="contacts: import a CSV file")
    actions = contacts.add_subparsers(dest="action", required=True)
    p = actions.add_parser(
        "import", parents=[config], help="import contacts from CSV", description=DESCRIPTION
    )
    p.add_argument("file", help="the CSV file")
    p.add_argument("--strict", action="store_true", help="import nothing if any row is bad")
    p.add_argument("--region", default="BE", help="country of numbers written without +prefix (BE)")
    p.add_argument("--encoding", default="utf-8", help="the file's encoding (utf-8)")
    p.set_defaults(func=cmd_contacts_import)

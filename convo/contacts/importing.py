"""Importing contacts: CSV rows into the store, in batches, with a report of every problem.

:func:`import_contacts` takes the rows of :mod:`convo.contacts.csv_reader` as they stream
and puts the good ones in the store ``batch_size`` at a time (one transaction each, so a
large file neither holds its contacts in memory nor commits row by row). Each problem goes
to ``on_problem`` as it is met, and is counted in the :class:`ImportReport`; with
``store=None`` nothing is written (a check before a ``--strict`` import).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from convo.contacts.csv_reader import CsvContact, CsvProblem, CsvRow
from convo.models import Contact
from convo.store.base import Contacts

BATCH_SIZE = 1000


@dataclass(slots=True)
class ImportReport:
    """What an import did: ``good`` rows (``new`` of them new contacts, the others
    replacing one), the problems by kind, and the header problem that stopped it, if any."""

    good: int = 0
    new: int = 0
    problems: Counter[str] = field(default_factory=Counter)
    header: CsvProblem | None = None

    @property
    def skipped(self) -> int:
        return sum(self.problems.values())

    def describe(self, *, stored: bool = True) -> str:
        """One line for a person: ``12 contacts imported (10 new, 2 updated); 3 rows
        skipped: 2 invalid, 1 duplicate``."""
        if self.header is not None:
            return f"nothing imported: {self.header.reason}"
        if stored:
            done = f"{self.good} contacts imported ({self.new} new, {self.good - self.new} updated)"
        else:
            done = f"{self.good} good contacts, none imported"
        if not self.skipped:
            return done
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.problems.items()))
        return f"{done}; {self.skipped} rows skipped: {kinds}"


async def import_contacts(
    store: Contacts | None,
    rows: Iterable[CsvRow],
    *,
    batch_size: int = BATCH_SIZE,
    on_problem: Callable[[CsvProblem], None] | None = None,
) -> ImportReport:
    """Put the good ``rows`` in ``store`` (module docstring); returns the report."""
    report = ImportReport()
    batch: list[Contact] = []
    for row in rows:
        if isinstance(row, CsvContact):
            report.good += 1
            batch.append(row.contact)
            if len(batch) >= batch_size:
                report.new += await _put(store, batch)
                batch = []
            continue
        if row.kind == "header":
            report.header = row
        else:
            report.problems[row.kind] += 1
        if on_problem is not None:
            on_problem(row)
    report.new += await _put(store, batch)
    return report


async def _put(store: Contacts | None, batch: list[Contact]) -> int:
    if store is None or not batch:
        return 0
    return await store.put_contacts(batch)

"""Contacts streamed from a CSV file, each row a contact or a problem with its line number.

The file is read one line at a time and never held whole in memory (a 100,000-row import
keeps one row, plus the set of numbers seen so far for duplicates). Its shape:

- a header row is required, and one column must be ``number`` (any case). ``name``,
  ``language`` (or ``lang``) and ``timezone`` columns fill the contact's own attributes;
  every other column becomes one of its ``fields``, under its header name as written (an
  empty cell is an empty string, so every contact of a file has the same fields);
- the delimiter is the first line's most frequent of ``,``, ``;`` and tab (spreadsheets set
  to a locale with a decimal comma write ``;``);
- numbers are normalised to E.164, national ones read in ``region``;
- the encoding is UTF-8 (a byte order mark is skipped) unless told otherwise; any
  ASCII-compatible encoding (``cp1252``, ``latin-1``) can be named.

For every data row the readers yield a :class:`CsvContact` or a :class:`CsvProblem`; blank
rows (no cell filled) yield nothing. Problem kinds: ``invalid`` (no number, an impossible
number, a bad language or time zone, cells beyond the header, unparseable CSV),
``duplicate`` (a number an earlier row has: the first row wins), ``encoding`` (bytes that
are not in the file's encoding) and ``header`` (no header, no ``number`` column, a column
named twice): a header problem is the last thing yielded, since no row can be read without
one. Line numbers are the file's physical lines, 1-based, the header being line 1; a row
with a quoted line break is reported at its first line.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

from convo.contacts.contact import make_contact
from convo.exceptions import InvalidNumber
from convo.models import Contact
from convo.values import value

ProblemKind = Literal["invalid", "duplicate", "encoding", "header"]

_ATTRIBUTES = {"number": "number", "name": "name", "language": "language", "lang": "language",
               "timezone": "timezone"}  # fmt: skip
_DELIMITERS = (",", ";", "\t")


@value
class CsvContact:
    """Data row ``line`` of a file, a good contact."""

    line: int
    contact: Contact


@value
class CsvProblem:
    """Row ``line`` of a file cannot be a contact: ``kind`` (module docstring) and a
    ``reason`` for a person; ``number`` is its number cell as written (empty if none)."""

    line: int
    kind: ProblemKind
    reason: str
    number: str = ""

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


CsvRow = CsvContact | CsvProblem


def read_csv_file(
    path: str | os.PathLike[str], *, region: str = "BE", encoding: str = "utf-8"
) -> Iterator[CsvRow]:
    """The rows of the CSV file at ``path`` (module docstring). Raises ``OSError`` when the
    file cannot be opened and ValueError for an encoding that is not ASCII-compatible; the
    file is closed when the iterator is exhausted or closed."""
    _check_encoding(encoding)
    with Path(path).open("rb") as file:
        yield from read_csv_lines(file, region=region, encoding=encoding)


def read_csv_text(text: str, *, region: str = "BE") -> Iterator[CsvRow]:
    """The rows of CSV ``text`` (module docstring), such as a file sent in a JSON body."""
    return _read(_text_lines(text), region)


def read_csv_lines(
    lines: Iterable[bytes], *, region: str = "BE", encoding: str = "utf-8"
) -> Iterator[CsvRow]:
    """The rows of a CSV file given as its lines of bytes (an open binary file, an upload),
    each ending with its line break (module docstring)."""
    _check_encoding(encoding)
    return _read(_decoded_lines(lines, encoding), region)


# A physical line: its text, and the reason it did not decode (None when it did).
_Line = tuple[str, str | None]


def _check_encoding(encoding: str) -> None:
    try:
        ascii_compatible = "number,\n".encode(encoding) == b"number,\n"
    except LookupError:
        raise ValueError(f"unknown encoding {encoding!r}") from None
    if not ascii_compatible:
        raise ValueError(f"encoding {encoding!r} is not ASCII-compatible; save the file as UTF-8")


def _decoded_lines(lines: Iterable[bytes], encoding: str) -> Iterator[_Line]:
    first = True
    for raw in lines:
        if first and encoding.replace("_", "-").lower() in ("utf-8", "utf8"):
            raw = raw.removeprefix(codecs.BOM_UTF8)
        first = False
        try:
            yield raw.decode(encoding), None
        except UnicodeDecodeError as exc:
            bad = raw[exc.start : exc.end].hex(" ")
            reason = f"bytes {bad} at column {exc.start + 1} are not {encoding}"
            yield raw.decode(encoding, errors="replace"), reason


def _text_lines(text: str) -> Iterator[_Line]:
    # Lines end at "\n" only, as in a file read as bytes: str.splitlines would also end
    # them at U+2028 and other separators that may sit inside a cell.
    for line in io.StringIO(text.removeprefix("\ufeff"), newline="\n"):
        yield line, None


class _Lines:
    """The decoded lines fed to the csv module, remembering which ones did not decode."""

    def __init__(self, lines: Iterator[_Line]) -> None:
        self._lines = lines
        self.count = 0
        self.bad: dict[int, str] = {}

    def __iter__(self) -> Iterator[str]:
        for text, bad in self._lines:
            self.count += 1
            if bad is not None:
                self.bad[self.count] = bad
            yield text


def _delimiter(header: str) -> str:
    return max(_DELIMITERS, key=header.count) if any(d in header for d in _DELIMITERS) else ","


def _read(lines: Iterator[_Line], region: str) -> Iterator[CsvRow]:
    first = next(lines, None)
    if first is None or not first[0].strip():
        yield CsvProblem(1, "header", "no header row: the first line must name the columns, "
                         "one of them 'number'")  # fmt: skip
        return
    if first[1] is not None:
        yield CsvProblem(1, "header", f"header row: {first[1]}")
        return
    source = _Lines(_chain(first, lines))
    reader = csv.reader(source, delimiter=_delimiter(first[0]))
    header = next(reader)
    columns = _columns(header)
    if isinstance(columns, CsvProblem):
        yield columns
        return
    seen: dict[str, int] = {}
    done = reader.line_num
    while True:
        start = done + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            done = reader.line_num
            yield CsvProblem(start, "invalid", f"not readable as CSV: {exc}")
            continue
        done = reader.line_num
        bad = next((source.bad[n] for n in range(start, done + 1) if n in source.bad), None)
        if bad is not None:
            yield CsvProblem(start, "encoding", bad)
            continue
        if not any(cell.strip() for cell in cells):
            continue
        yield _row(start, cells, columns, seen, region)


def _chain(first: _Line, rest: Iterator[_Line]) -> Iterator[_Line]:
    yield first
    yield from rest


# Column index -> attribute name ("number", "name", ...) or ("field", header name); None for a
# column without a name.
_Columns = list[tuple[str, str] | None]


def _columns(header: list[str]) -> _Columns | CsvProblem:
    columns: _Columns = []
    taken: set[str] = set()
    for i, raw in enumerate(header, start=1):
        name = raw.strip()
        if not name:
            columns.append(None)
            continue
        attribute = _ATTRIBUTES.get(name.lower())
        column = (attribute, name) if attribute else ("field", name)
        ident = attribute or f"field:{name}"
        if ident in taken:
            return CsvProblem(1, "header", f"header row: column {i} ({name!r}) is named twice")
        taken.add(ident)
        columns.append(column)
    if "number" not in taken:
        names = ", ".join(repr(c.strip()) for c in header) or "none"
        return CsvProblem(1, "header", f"header row has no 'number' column (columns: {names})")
    return columns


def _row(
    line: int, cells: list[str], columns: _Columns, seen: dict[str, int], region: str
) -> CsvRow:
    given: dict[str, str] = {}
    fields: dict[str, str] = {}
    for i, column in enumerate(columns):
        cell = cells[i] if i < len(cells) else ""
        if column is None:
            if cell.strip():
                return CsvProblem(line, "invalid", f"a value in column {i + 1}, which has no "
                                  "name in the header")  # fmt: skip
        elif column[0] == "field":
            fields[column[1]] = cell
        else:
            given[column[0]] = cell
    number = given.get("number", "").strip()
    if len(cells) > len(columns) and any(c.strip() for c in cells[len(columns) :]):
        reason = f"{len(cells)} cells, but the header names {len(columns)} columns"
        return CsvProblem(line, "invalid", reason, number)
    if not number:
        return CsvProblem(line, "invalid", "no number")
    try:
        contact = make_contact(
            number,
            name=given.get("name"),
            language=given.get("language"),
            timezone=given.get("timezone"),
            fields=fields,
            region=region,
        )
    except (InvalidNumber, ValueError) as exc:
        return CsvProblem(line, "invalid", str(exc), number)
    first = seen.setdefault(contact.number, line)
    if first != line:
        reason = f"duplicate of line {first} ({contact.number})"
        return CsvProblem(line, "duplicate", reason, number)
    return CsvContact(line, contact)

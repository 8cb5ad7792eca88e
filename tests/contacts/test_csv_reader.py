"""The contacts CSV reader: good rows become contacts, every bad row a problem on its line."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from convo.contacts import CsvContact, CsvProblem, read_csv_file, read_csv_text
from convo.contacts.csv_reader import CsvRow, read_csv_lines


def contacts(rows: Iterator[CsvRow]) -> list[CsvContact]:
    return [r for r in rows if isinstance(r, CsvContact)]


def problems(rows: Iterator[CsvRow]) -> list[CsvProblem]:
    return [r for r in rows if isinstance(r, CsvProblem)]


def test_good_rows_become_contacts_with_attributes_and_fields() -> None:
    text = (
        "Number,name,Language,timezone,appointment,room\n"
        "0470 12 34 56,An Peeters,NL_be,,2026-12-01,3\n"
        "+33 6 12 34 56 78,Jean,fr,Europe/Paris,2026-12-02,\n"
    )
    rows = list(read_csv_text(text))
    assert [r.line for r in rows] == [2, 3]
    an, jean = (r.contact for r in contacts(iter(rows)))
    assert an.number == "+32470123456"
    assert (an.name, an.lang, an.timezone) == ("An Peeters", "nl-BE", "Europe/Brussels")
    assert an.fields == {"appointment": "2026-12-01", "room": "3"}
    assert jean.number == "+33612345678"
    assert (jean.lang, jean.timezone) == ("fr", "Europe/Paris")
    assert jean.fields == {"appointment": "2026-12-02", "room": ""}


def test_region_reads_national_numbers() -> None:
    rows = contacts(read_csv_text("number\n06 12 34 56 78\n", region="FR"))
    assert rows[0].contact.number == "+33612345678"


def test_bad_rows_are_reported_with_line_and_reason_and_good_rows_go_on() -> None:
    text = (
        "number;name;language;timezone\n"  # semicolons: a spreadsheet in a comma locale
        "0470123456;An;nl;\n"
        "12;Too short;;\n"
        "\n"
        ";No number;;\n"
        "+32 470 12 34 56;An again;;\n"
        "0470111222;Bad lang;dutch!;\n"
        "0470111333;Bad zone;;Mars/Olympus\n"
        '"0470111444";"Two\nlines";en;\n'
        "0470111555;Extra;en;;surplus\n"
        ";;;\n"
    )
    rows = list(read_csv_text(text))
    assert [r.contact.number for r in contacts(iter(rows))] == ["+32470123456", "+32470111444"]
    found = {p.line: p for p in problems(iter(rows))}
    assert sorted(found) == [3, 5, 6, 7, 8, 11]
    assert found[3].kind == "invalid" and "'12'" in found[3].reason and found[3].number == "12"
    assert found[5].reason == "no number"
    assert found[6].kind == "duplicate" and "duplicate of line 2" in found[6].reason
    assert "language 'dutch!'" in found[7].reason
    assert "Mars/Olympus" in found[8].reason
    assert found[11].kind == "invalid" and "5 cells" in found[11].reason
    assert str(found[6]).startswith("line 6: duplicate of line 2")


def test_missing_number_column_is_one_header_problem() -> None:
    rows = list(read_csv_text("phone,name\n0470123456,An\n"))
    assert rows == [
        CsvProblem(1, "header", "header row has no 'number' column (columns: 'phone', 'name')")
    ]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "no header row"),
        ("\n0470123456\n", "no header row"),
        ("number,name,NAME\n", "column 3 ('NAME') is named twice"),
        ("number,lang,language\n", "column 3 ('language') is named twice"),
    ],
)
def test_header_problems(text: str, reason: str) -> None:
    (problem,) = read_csv_text(text)
    assert problem.line == 1 and problem.kind == "header" and reason in problem.reason


def test_unnamed_column_with_a_value_is_a_problem_without_is_ignored() -> None:
    rows = list(read_csv_text("number,,name\n0470123456,,An\n0470123457,x,Bo\n"))
    assert [r.line for r in rows] == [2, 3]
    assert isinstance(rows[0], CsvContact) and rows[0].contact.fields == {}
    assert isinstance(rows[1], CsvProblem) and "column 2" in rows[1].reason


def test_bad_encoding_is_reported_on_its_line_and_the_rest_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_bytes(
        b"\xef\xbb\xbfnumber,name\r\n"  # a BOM, CRLF lines: what Excel writes
        b"0470123456,Ren\xc3\xa9\r\n"
        b"0470123457,Ren\xe9\r\n"  # latin-1 in a UTF-8 file
        b"0470123458,Zo\xc3\xab\r\n"
    )
    rows = list(read_csv_file(path))
    assert [type(r).__name__ for r in rows] == ["CsvContact", "CsvProblem", "CsvContact"]
    assert rows[0].contact.name == "René"  # type: ignore[union-attr]
    bad = rows[1]
    assert isinstance(bad, CsvProblem) and bad.line == 3 and bad.kind == "encoding"
    assert "e9" in bad.reason and "utf-8" in bad.reason
    path.write_bytes(b"number,name\n0470123457,Ren\xe9\n")
    (latin,) = read_csv_file(path, encoding="cp1252")
    assert isinstance(latin, CsvContact) and latin.contact.name == "René"


def test_bad_encoding_in_the_header_and_unusable_encodings(tmp_path: Path) -> None:
    (problem,) = read_csv_lines([b"num\xffber\n", b"0470123456\n"])
    assert problem.kind == "header" and "ff" in problem.reason
    with pytest.raises(ValueError, match="not ASCII-compatible"):
        list(read_csv_lines([], encoding="utf-16"))
    with pytest.raises(ValueError, match="unknown encoding"):
        list(read_csv_lines([], encoding="klingon"))


def test_unparseable_csv_is_a_row_problem() -> None:
    huge = "x" * 200_000  # beyond the csv module's field size limit
    rows = list(read_csv_text(f"number,name\n0470123456,{huge}\n0470123457,Bo\n"))
    assert isinstance(rows[0], CsvProblem) and rows[0].line == 2
    assert "not readable as CSV" in rows[0].reason
    assert isinstance(rows[1], CsvContact) and rows[1].line == 3


def test_a_big_file_is_streamed(tmp_path: Path) -> None:
    """Reading 20,000 rows holds the numbers seen, never the file: memory stays far below
    the file's size times Python's per-row cost."""
    path = tmp_path / "big.csv"
    with path.open("w") as f:
        f.write("number,name,note\n")
        for i in range(20_000):
            f.write(f"+3247{i:07d},Person {i},{'x' * 200}\n")
    tracemalloc.start()
    try:
        count = sum(1 for r in read_csv_file(path) if isinstance(r, CsvContact))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 20_000
    assert peak < path.stat().st_size  # the rows (~4.5 MB as contacts) are never all held


def test_text_lines_end_at_newlines_only() -> None:
    rows = list(read_csv_text("number,name\r\n0470123456,An\u2028Peeters\r\n0470123457,Bo"))
    assert [r.contact.name for r in contacts(iter(rows))] == ["An\u2028Peeters", "Bo"]
    assert [r.line for r in rows] == [2, 3]

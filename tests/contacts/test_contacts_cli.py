"""`convo contacts import FILE.csv [--strict] [--region]` into a real SQLite file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from convo.cli import main
from convo.models import Contact
from convo.store.sqlite import SqliteStore

CONFIG = """
[store]
url = "sqlite:///{db}"
"""

CSV = (
    "number,name,language,room\n"
    "0470 00 00 01,An,nl,3B\n"
    "+32 470 00 00 01,An again,,\n"  # line 3: duplicate of line 2
    "12345,Nobody,,\n"  # line 4: impossible
    "0470000002,Bo,en,\n"
)


def setup(tmp_path: Path, csv: str = CSV) -> tuple[Path, Path, Path]:
    db = tmp_path / "convo.db"
    config = tmp_path / "convo.toml"
    config.write_text(CONFIG.format(db=db))
    path = tmp_path / "contacts.csv"
    path.write_text(csv, encoding="utf-8")
    return db, config, path


def stored(db: Path, *numbers: str) -> list[Contact | None]:
    async def read() -> list[Contact | None]:
        store = SqliteStore(db)
        await store.open()
        try:
            return [await store.get_contact(n) for n in numbers]
        finally:
            await store.close()

    return asyncio.run(read())


def test_import_reports_bad_rows_and_imports_the_good(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, config, path = setup(tmp_path)
    code = main(["--config", str(config), "contacts", "import", str(path)])
    out, err = capsys.readouterr()
    assert code == 1
    assert f"{path}:3: duplicate: duplicate of line 2" in err
    assert f"{path}:4: invalid: '12345'" in err
    assert out.strip() == (
        "2 contacts imported (2 new, 0 updated); 2 rows skipped: 1 duplicate, 1 invalid"
    )
    an, bo = stored(db, "+32470000001", "+32470000002")
    assert an == Contact("+32470000001", "nl", "An", "Europe/Brussels", {"room": "3B"})
    assert bo is not None and bo.lang == "en"
    # Again: the same contacts are replaced, not added.
    main(["contacts", "import", str(path), "--config", str(config)])
    assert "(0 new, 2 updated)" in capsys.readouterr().out


def test_strict_imports_nothing_from_a_file_with_bad_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, config, path = setup(tmp_path)
    code = main(["--config", str(config), "contacts", "import", "--strict", str(path)])
    out, err = capsys.readouterr()
    assert code == 1
    assert ":4: invalid" in err and "--strict" in out and "none imported" in out
    assert not db.exists() or stored(db, "+32470000001") == [None]
    good = tmp_path / "good.csv"
    good.write_text("number\n0470000002\n")
    assert main(["--config", str(config), "contacts", "import", "--strict", str(good)]) == 0
    assert stored(db, "+32470000002")[0] is not None


def test_region_and_unusable_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, config, path = setup(tmp_path, "number\n06 12 34 56 78\n")
    assert main(["--config", str(config), "contacts", "import", str(path), "--region", "FR"]) == 0
    found = stored(db, "+33612345678")[0]
    assert found is not None and found.timezone == "Europe/Paris"
    capsys.readouterr()
    path.write_text("phone\n0470000001\n")
    assert main(["--config", str(config), "contacts", "import", str(path)]) == 2
    assert "no 'number' column" in capsys.readouterr().out
    missing = str(tmp_path / "nope.csv")
    assert main(["--config", str(config), "contacts", "import", missing]) == 2
    assert "nope.csv" in capsys.readouterr().err


def test_a_memory_store_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, config, path = setup(tmp_path)
    config.write_text('[store]\nurl = "memory://"\n')
    assert main(["--config", str(config), "contacts", "import", str(path)]) == 2
    assert "memory://" in capsys.readouterr().err

"""``convo db status|upgrade`` on SQLite and PostgreSQL, and ``convo serve`` facing a
database it cannot reach: real processes, real files and a real PostgreSQL schema."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from convo.store.postgres import MIGRATIONS as PG_MIGRATIONS
from convo.store.sqlite import MIGRATIONS as SQLITE_MIGRATIONS
from tests.cli.test_cli import ROOT, convo


def configure(tmp_path: Path, url: str) -> None:
    flows = ROOT / "flows"
    (tmp_path / "convo.toml").write_text(f'[store]\nurl = "{url}"\n[flows]\npaths = ["{flows}"]\n')


def test_db_status_and_upgrade_on_a_new_sqlite_file(tmp_path: Path) -> None:
    configure(tmp_path, "sqlite:///var/convo.db")
    latest = len(SQLITE_MIGRATIONS)
    status = convo("db", "status", cwd=tmp_path)
    assert status.returncode == 1, status.stderr
    assert status.stdout.strip().endswith(
        f"schema version 0 of {latest}: {latest} migration(s) pending (convo db upgrade)"
    )
    upgrade = convo("db", "upgrade", cwd=tmp_path)
    assert upgrade.returncode == 0, upgrade.stderr
    assert upgrade.stdout.strip().endswith(f"migrated from schema version 0 to {latest}")
    status = convo("db", "status", cwd=tmp_path)
    assert (status.returncode, status.stdout.strip()[-10:]) == (0, "up to date")
    again = convo("db", "upgrade", cwd=tmp_path)
    assert again.returncode == 0 and "is up to date; nothing to do" in again.stdout


def test_db_on_a_memory_store_says_there_is_nothing_to_migrate(tmp_path: Path) -> None:
    configure(tmp_path, "memory://")
    result = convo("db", "status", cwd=tmp_path)
    assert result.returncode == 0 and "keeps no schema" in result.stderr


async def test_two_upgrades_racing_on_an_empty_postgres_schema(
    tmp_path: Path, postgres_url: str
) -> None:
    configure(tmp_path, "${CONVO_DATABASE_URL}")  # the URL from the environment
    env = {"CONVO_DATABASE_URL": postgres_url, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}

    async def upgrade() -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "convo", "db", "upgrade",
            cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode is not None
        return process.returncode, out.decode() + err.decode()

    results = await asyncio.gather(upgrade(), upgrade())
    assert [code for code, _ in results] == [0, 0], results
    said = sorted(text.split(": ", 1)[1].strip() for _, text in results)
    latest = len(PG_MIGRATIONS)
    assert said == [
        f"migrated from schema version 0 to {latest}",
        f"schema version {latest} is up to date; nothing to do",
    ]
    assert "@127.0.0.1" in results[0][1] and "password" not in results[0][1]


def test_serve_facing_a_database_that_refuses_connections_fails_in_one_line(
    tmp_path: Path,
) -> None:
    configure(tmp_path, "postgresql://convo:hunter2@127.0.0.1:1/convo")
    result = convo("serve", "--port", "0", cwd=tmp_path)
    assert result.returncode == 2
    # The start-up log may come first; the error is one line, last, with no traceback.
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("convo: ")]
    assert line.startswith("convo: PostgreSQL store convo@127.0.0.1:1/convo: connect failed:")
    assert result.stderr.rstrip("\n").endswith(line)
    assert "hunter2" not in result.stderr + result.stdout

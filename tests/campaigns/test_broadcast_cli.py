"""``convo broadcast`` and ``convo campaigns`` as a user runs them: the ``make run`` path
(a default ``convo serve`` with the sandbox, then ``convo broadcast reminder --to
examples/contacts.csv``, then replies), the dry run's report, ``--strict``, Ctrl-C, and the
campaign commands, on the SQLite file of the embedded defaults."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from convo.cli import main
from convo.store.sqlite import SqliteStore
from tests.e2e.sms_world import eventually

ROOT = Path(__file__).resolve().parents[2]
CONVO = Path(sys.executable).parent / "convo"
LINE = "+32460000103"  # the reminder's sandbox line: flows sorted, numbered from 101
STARTED = {  # examples/contacts.csv's good rows, and how each answers "1"
    "+32470111201": "Bedankt, tot dan!",
    "+32470111202": "Bedankt, tot dan!",
    "+32470111203": "Merci, à la prochaine !",
    "+32470111204": "Thank you, see you then!",
    "+32470111205": "Bedankt, tot dan!",
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder like a fresh checkout: the example flows and contacts, no convo.toml."""
    shutil.copytree(ROOT / "flows", tmp_path / "flows")
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CONVO_CONFIG", raising=False)
    return tmp_path


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "CONVO_CONFIG"} | {"PYTHONUNBUFFERED": "1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def server(project: Path) -> AsyncIterator[str]:
    """``convo serve`` with the embedded defaults (what ``make run`` starts)."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        str(CONVO), "serve", "--port", str(port), cwd=project, env=env(),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:

            async def up() -> bool:
                assert process.returncode is None, await process.communicate()
                try:
                    return (await client.get(f"{url}/livez")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(up, "convo serve to listen", 30)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.communicate(), 30)


async def broadcast(project: Path, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        str(CONVO), "broadcast", "reminder", "--to", "examples/contacts.csv", *args,
        cwd=project, env=env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_make_run_then_broadcast_shows_texts_and_replies_continue(
    project: Path, server: str
) -> None:
    code, out, err = await broadcast(project)
    assert code == 0, err
    assert " done: started 5, sent 5" in out
    assert "line 7: duplicate" in err and "line 8: invalid: '12345'" in err
    async with httpx.AsyncClient(base_url=server) as client:
        for number, thanks in STARTED.items():

            async def texts(number: str = number) -> list[str]:
                got = await client.get("/sandbox/messages", params={"number": number})
                return [m["text"] for m in got.json()["messages"]]

            [first] = await texts()
            assert "1" in first and "2" in first  # "reply 1 to confirm, 2 to cancel"
            sent = {"from": number, "to": LINE, "text": "1"}
            reply = await client.post("/sandbox/messages", json=sent)
            assert [r["text"] for r in reply.json()["replies"]] == [thanks]

            async def answered(number: str = number, thanks: str = thanks) -> bool:
                return thanks in await texts(number)

            await eventually(answered, f"{number}'s answer in the sandbox", 10)


def test_dry_run_reports_and_sends_nothing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def opt_out() -> None:
        store = SqliteStore(project / "var" / "convo.db")
        await store.open()
        await store.set_suppressed(LINE, "+32470111204", True)
        await store.close()

    asyncio.run(opt_out())
    code = main(["broadcast", "reminder", "--to", "examples/contacts.csv", "--dry-run"])
    out, err = capsys.readouterr()
    assert code == 0, err
    for line in ("contacts: 5", "invalid rows: 1", "duplicates: 1", "opted out: 1",
                 "[nl] 3 contact(s), 1 SMS part(s) each:", "[fr] 1 contact(s)",
                 "SMS parts in total: 4"):  # fmt: skip
        assert line in out, out
    assert "[en]" not in out  # its one contact opted out
    assert "Hallo An Peeters, u hebt een afspraak op 14 december 2026 om 09:30" in out
    assert "line 8: invalid" in err
    assert main(["campaigns", "list"]) == 0
    assert capsys.readouterr().out == ""  # nothing was stored


def test_strict_refuses_a_file_with_bad_rows(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["broadcast", "reminder", "--to", "examples/contacts.csv", "--strict"]) == 1
    err = capsys.readouterr().err
    assert "line 7: duplicate" in err and "--strict: 2 bad row(s)" in err
    assert main(["campaigns", "list"]) == 0
    assert capsys.readouterr().out == ""


def test_campaign_commands(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["broadcast", "reminder", "--to", "examples/contacts.csv", "--no-follow",
                 "--rate", "5", "--quiet-hours", "21:00-09:00", "--name", "Dec"]) == 0  # fmt: skip
    campaign_id = capsys.readouterr().out.split()[1]
    assert main(["campaigns", "show", campaign_id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["name"], shown["rate_per_second"], shown["status"]) == ("Dec", 5, "running")
    assert shown["quiet_hours"] == {"from": "21:00", "to": "09:00"}
    assert shown["counts"]["total"] == 7 and shown["counts"]["pending"] == 5
    assert main(["campaigns", "pause", campaign_id]) == 0
    assert main(["campaigns", "resume", campaign_id]) == 0
    assert main(["campaigns", "cancel", campaign_id]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"campaign {campaign_id} paused",
        f"campaign {campaign_id} running",
        f"campaign {campaign_id} cancelled",
    ]
    assert main(["campaigns", "resume", campaign_id]) == 1
    assert "is cancelled: cannot resume it" in capsys.readouterr().err
    assert main(["campaigns", "pause", "nope"]) == 1
    assert main(["campaigns", "list"]) == 0
    assert capsys.readouterr().out.startswith(f"{campaign_id}  cancelled")


def test_bad_options_are_usage_errors(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["broadcast", "reminder", "--to", "examples/contacts.csv"]
    assert main([*base, "--quiet-hours", "late"]) == 2
    assert "FROM-TO" in capsys.readouterr().err
    assert main([*base, "--rate", "5000"]) == 2
    assert "at most 1000" in capsys.readouterr().err
    assert main(["broadcast", "nope", "--to", "examples/contacts.csv"]) == 2
    assert "flow 'nope'" in capsys.readouterr().err
    (project / "convo.toml").write_text('[store]\nurl = "memory://"\n', encoding="utf-8")
    assert main(base) == 2
    assert "POST /api/campaigns" in capsys.readouterr().err


async def test_ctrl_c_pauses_the_campaign_and_says_how_to_resume(project: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        str(CONVO), "broadcast", "reminder", "--to", "examples/contacts.csv",
        cwd=project, env=env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    created = await asyncio.wait_for(process.stdout.readline(), 30)
    campaign_id = created.decode().split()[1]
    process.send_signal(signal.SIGINT)  # no server runs it: it is still pending
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 130, err.decode()
    assert f"convo campaigns resume {campaign_id}" in err.decode()
    store = SqliteStore(project / "var" / "convo.db")
    await store.open()
    try:
        paused = await store.get_campaign(campaign_id)
        assert paused is not None and paused.status.value == "paused"
    finally:
        await store.close()

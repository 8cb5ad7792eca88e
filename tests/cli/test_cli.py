"""The `convo` command, run as a user runs it (a subprocess in a scratch directory)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def convo(*args: str, cwd: Path = ROOT, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "convo", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


BROKEN = """\
flow: broken
languages: [nl, en]
start: hello
steps:
  hello:
    ask:
      text: {nl: "Hallo {{ naam }}", en: "Hi"}
      expect: yesno
    then: byee
  lonely:
    say: "never"
    end: true
"""


def test_validate_prints_every_error_with_its_position_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(BROKEN)
    result = convo("validate", str(tmp_path / "broken.yaml"))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    where = str(tmp_path / "broken.yaml")
    assert f"{where}:7:28: error: undeclared variable 'naam' in template" in lines[0]
    assert any(line.startswith(f"{where}:8:15: error:") and "yesno" in line for line in lines)
    assert any(line.startswith(f"{where}:9:11: error: unknown step 'byee'") for line in lines)
    assert any(
        line.startswith(f"{where}:10:3: error: step 'lonely' is unreachable") for line in lines
    )


def test_validate_accepts_the_examples() -> None:
    result = convo("validate", "flows", "bots_examples")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in result.stdout


def test_validate_warns_about_ucs2_and_long_texts(tmp_path: Path) -> None:
    long_text = "word " * 120
    (tmp_path / "cost.yaml").write_text(
        f'flow: cost\nlanguages: [fr]\nstart: a\nsteps:\n  a:\n    say: "Vous êtes {long_text}"\n'
        "    end: true\n"
    )
    result = convo("validate", "--max-parts", "2", str(tmp_path / "cost.yaml"))
    assert result.returncode == 0
    assert "'ê' not in the GSM alphabet" in result.stdout
    assert "renders to about 10 SMS parts (more than 2)" in result.stdout


def test_test_command_reports_counts_last_and_fails_on_a_failure(tmp_path: Path) -> None:
    shutil.copy(ROOT / "flows" / "faq.yaml", tmp_path / "faq.yaml")
    (tmp_path / "faq.test.yaml").write_text(
        "flow: faq\ncontact: {lang: en}\nturns:\n  - user: hi\n  - bot: {contains: Welcome}\n"
        "---\nflow: faq\ncontact: {lang: en}\nturns:\n  - user: hi\n  - bot: Goodbye\n"
    )
    result = convo("test", str(tmp_path))
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1] == "1 passed, 1 failed"
    assert "document 2" in result.stdout and "turn 2 (line 11)" in result.stdout
    assert "expected 'Goodbye', got 'Welcome!" in result.stdout


MIXED = (
    "flow: faq\ncontact: {lang: en}\nturns:\n  - user: hi\n  - bot: {contains: Welcome}\n"
    "---\nflow: faq\nturns:\n  - user: hi\n  - bogus: 1\n"
    "---\nflow: faq\ncontact: {lang: en}\nturns:\n  - user: hi\n  - bot: {contains: Welcome}\n"
)


def test_a_malformed_document_fails_alone(tmp_path: Path) -> None:
    shutil.copy(ROOT / "flows" / "faq.yaml", tmp_path / "faq.yaml")
    tests = tmp_path / "faq.test.yaml"
    tests.write_text(MIXED)
    result = convo("test", str(tmp_path))
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1] == "2 passed, 1 failed"
    assert f"{tests}:10:5: a turn is one of bot, user, end, wait, slots, step" in result.stdout


def test_pytest_collects_the_other_documents_of_a_file_with_a_malformed_one(
    tmp_path: Path,
) -> None:
    shutil.copy(ROOT / "flows" / "faq.yaml", tmp_path / "faq.yaml")
    (tmp_path / "faq.test.yaml").write_text(MIXED)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    last = result.stdout.splitlines()[-1]
    assert last.startswith("1 failed, 2 passed"), result.stdout  # and no collection error
    assert "faq.test.yaml:10:5: a turn is one of" in result.stdout


def test_test_command_passes_on_the_examples() -> None:
    result = convo("test", "flows", "bots_examples")
    assert result.returncode == 0, result.stdout
    last = result.stdout.splitlines()[-1]
    assert last.endswith(" passed, 0 failed") and not last.startswith("0 ")


def test_chat_holds_a_conversation_over_stdin() -> None:
    result = convo(
        "chat",
        "flows/appointment.yaml",
        "--lang",
        "nl",
        "--param",
        "patient=An",
        "--param",
        "date=2026-12-01",
        stdin="misschien\nja\n",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert out[0].startswith("bot> Hallo An, antwoord JA om uw afspraak op 1 december 2026")
    assert "you> misschien" in out
    assert out[-1] == "bot> Bedankt, tot 1 december 2026!"


def test_chat_dates_follow_the_real_calendar(tmp_path: Path) -> None:
    flow = tmp_path / "when.yaml"
    flow.write_text(
        "flow: when\nlanguages: [en]\nstart: ask\nsteps:\n"
        "  ask:\n    ask: {text: 'Which day?', expect: date, save_as: day}\n    then: done\n"
        "  done:\n    say: 'Day {{ day }}.'\n    end: true\n",
        encoding="utf-8",
    )
    before = dt.date.today()
    result = convo("chat", str(flow), stdin="tomorrow\n")
    after = dt.date.today()  # the test may run across midnight
    assert result.returncode == 0, result.stderr
    said = result.stdout.splitlines()[-1]
    tomorrow = {(d + dt.timedelta(days=1)).isoformat() for d in (before, after)}
    assert said in {f"bot> Day {d}." for d in tomorrow}, said


def test_chat_fills_missing_required_params_with_examples() -> None:
    result = convo("chat", "appointment", "--lang", "en", stdin="yes\n")
    assert result.returncode == 0, result.stderr
    assert "param patient not given" in result.stderr
    assert result.stdout.startswith("bot> Hi An,")


def test_voice_chat_shows_locales_and_takes_digits() -> None:
    result = convo("chat", "support_line", "--channel", "voice", stdin="2\n1\n")
    assert result.returncode == 0, result.stderr
    assert "bot [fr-BE]> Pour le français, appuyez sur 2." in result.stdout
    assert "bot [fr-BE]> Nous sommes ouverts du lundi au vendredi" in result.stdout
    assert "(the bot hangs up)" in result.stdout


def test_graph_prints_mermaid() -> None:
    result = convo("graph", "appointment")
    assert result.returncode == 0
    assert result.stdout.startswith("stateDiagram-v2\n    [*] --> confirm\n")
    assert "    confirm --> reminder\n" in result.stdout


def test_segments_json_follows_the_contract() -> None:
    result = convo("segments", "--json", "Prijs: 5€")
    assert json.loads(result.stdout) == {
        "encoding": "GSM-7",
        "characters": 9,
        "units": 10,
        "parts": 1,
        "per_part": 160,
        "remaining": 150,
    }


def test_unknown_flow_is_a_clear_error() -> None:
    result = convo("graph", "nope")
    assert result.returncode == 2
    assert "no flow with id 'nope'" in result.stderr


def test_serve_refuses_an_unsupported_store_url_in_one_line(tmp_path: Path) -> None:
    for url, why in (
        ("redis://user:hunter2@localhost/0", "redis:// is not supported yet"),
        ("mysql://localhost/convo", "mysql:// is not a known store"),
    ):
        (tmp_path / "convo.toml").write_text(f'[store]\nurl = "{url}"\n')
        result = convo("serve", "--port", "0", cwd=tmp_path)
        assert result.returncode == 2
        assert result.stdout == ""
        [line] = result.stderr.splitlines()  # one line, no traceback
        assert line.startswith(f"convo: convo.toml: [store] url: {why} (supported: memory://")
        assert "hunter2" not in result.stderr  # a URL may carry a password: never echoed
        assert not (tmp_path / "var").exists()  # nothing was opened or created


def test_serve_refuses_several_workers_on_a_store_of_one_process(tmp_path: Path) -> None:
    for store, workers, how in (
        ("sqlite:///var/convo.db", "", ("--workers", "2")),
        ("memory://", "", ("--workers", "3")),
        ("sqlite:///var/convo.db", "[server]\nworkers = 2\n", ()),
    ):
        (tmp_path / "convo.toml").write_text(f'{workers}[store]\nurl = "{store}"\n')
        result = convo("serve", "--port", "0", *how, cwd=tmp_path)
        assert result.returncode == 2
        assert result.stdout == ""
        [line] = result.stderr.splitlines()  # one line, no traceback
        kind = store.split(":")[0]
        assert line.startswith(f"convo: --workers {how[1] if how else 2}: a {kind} store ")
        assert 'several workers need a shared store: [store] url = "postgresql://..."' in line
        assert not (tmp_path / "var").exists()  # nothing was opened or created
    result = convo("serve", "--workers", "0", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (
        2,
        "convo: --workers: expected at least 1, got 0\n",
    )

"""The command's polish: --version, a help text for every option of every command, bad
configuration as one line and exit 2, and the admin token `make run` keeps in var/."""

from __future__ import annotations

import argparse
import stat
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from convo.cli import build_parser, main
from convo.cli.operate import admin_token
from convo.exceptions import ConfigError

CONVO = Path(sys.executable).parent / "convo"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"convo {version('convo')}"


def parsers(parser: argparse.ArgumentParser, name: str = "convo") -> Iterator[tuple[str, Any]]:
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, child in action.choices.items():
                yield from parsers(child, f"{name} {sub}")


def test_every_command_and_option_has_a_help_text() -> None:
    missing = []
    for name, parser in parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                missing += [
                    f"{name} {choice.dest}" for choice in action._choices_actions if not choice.help
                ]
            elif not action.help:
                missing.append(f"{name} {action.dest}")
    assert not missing


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[server\nport = 1", "invalid TOML"),
        ("[server]\nport = 'abc'", "[server] port: expected an integer"),
        ("[logging]\nformat = 'xml'", "[logging] format: expected text or json"),
    ],
)
def test_a_bad_config_is_one_line_and_exit_2(tmp_path: Path, content: str, expected: str) -> None:
    config = tmp_path / "convo.toml"
    config.write_text(content, encoding="utf-8")
    done = subprocess.run(
        [str(CONVO), "serve", "--config", str(config)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"convo: {config}: ")
    assert expected in lines[0]


def test_an_unreadable_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(CONVO), "serve", "--config", str(tmp_path)],  # a directory cannot be read
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "cannot read configuration" in lines[0], lines


def test_the_admin_token_is_made_once_and_kept_private(tmp_path: Path) -> None:
    path = tmp_path / "admin-token"
    first = admin_token(path)
    assert len(first) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert admin_token(path) == first  # kept across starts
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        admin_token(path)
    path.chmod(0o600)
    path.write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="empty"):
        admin_token(path)

"""How `convo test`, `convo chat` and `convo graph` find the flow a FLOW argument or a test's
``flow:`` names: flow ids through ``flows.paths`` of the config, paths as paths.

Each test builds a small project in tmp_path: the config says the flows live in
``somewhere/flows`` (in a file named ``bakery_shop.yaml``, so a match by file name would
not find it), and the conversation tests live in ``tests/convos``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from convo.cli import main

FLOW = (
    "flow: {id}\nlanguages: [en]\nstart: hello\nsteps:\n"
    '  hello: {{say: "Fresh bread today!", end: true}}\n'
)
TEST = "flow: {flow}\ncontact: {{lang: en}}\nturns:\n  - bot: Fresh bread today!\n  - end: true\n"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project whose config (``site.toml``, not found by default) puts the flows in
    ``somewhere/flows``, with the conversation test ``tests/convos/bakery.yaml``: named like
    the flow it tests. The current directory is the project."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CONVO_CONFIG", raising=False)
    (tmp_path / "site.toml").write_text('[flows]\npaths = ["somewhere/flows"]\n')
    flows = tmp_path / "somewhere" / "flows"
    flows.mkdir(parents=True)
    (flows / "bakery_shop.yaml").write_text(FLOW.format(id="bakery"))
    convos = tmp_path / "tests" / "convos"
    convos.mkdir(parents=True)
    (convos / "bakery.yaml").write_text(TEST.format(flow="bakery"))
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "argv",
    [
        ["test", "--config", "site.toml", "tests/convos/bakery.yaml"],
        ["--config", "site.toml", "test", "tests/convos/bakery.yaml"],
    ],
    ids=["after", "before"],
)
def test_test_finds_the_flow_in_the_flow_paths_of_config(
    project: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, _ = run(capsys, *argv)
    assert (code, out) == (0, "1 passed, 0 failed\n")


def test_test_finds_the_flow_in_the_flow_paths_of_convo_config(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVO_CONFIG", "site.toml")
    code, out, _ = run(capsys, "test", "-v", "tests/convos/bakery.yaml")
    assert code == 0, out
    assert out.splitlines() == [
        "PASS tests/convos/bakery.yaml: document 1 (doc1-bakery)",
        "1 passed, 0 failed",
    ]


def test_test_without_the_config_looks_in_flows_and_says_where_it_looked(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "test", "tests/convos/bakery.yaml")
    assert code == 1
    # The test file itself (bakery.yaml, with flow: bakery) is never taken for the flow.
    assert out.splitlines() == [
        "FAIL tests/convos/bakery.yaml: document 1 (doc1-bakery): cannot load: no flow with "
        "id 'bakery' in tests/convos, flows (missing) (no flows found)",
        "0 passed, 1 failed",
    ]


def test_test_refuses_a_config_that_is_not_there(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "somewhere" / "flows" / "bakery_shop.yaml").rename(
        project / "tests" / "convos" / "bakery_shop.yaml"
    )  # the flow is beside the test: the config is not needed, but it was asked for
    code, out, err = run(capsys, "test", "--config", "nope.toml", "tests/convos/bakery.yaml")
    assert (code, out) == (2, "")
    assert err == "convo: nope.toml: configuration file not found\n"
    assert run(capsys, "test", "tests/convos/bakery.yaml")[:2] == (0, "1 passed, 0 failed\n")


def test_a_test_inside_the_flow_paths_named_like_its_flow_is_not_a_flow(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checks = project / "somewhere" / "flows" / "checks"
    checks.mkdir()
    (checks / "bakery.yaml").write_text(TEST.format(flow="bakery"))
    code, out, _ = run(capsys, "--config", "site.toml", "test", str(checks / "bakery.yaml"))
    assert (code, out) == (0, "1 passed, 0 failed\n")  # neither the flow nor a duplicate


def test_a_flow_beside_the_test_comes_before_the_flow_paths(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    beside = FLOW.format(id="bakery").replace("Fresh bread today!", "Closed today.")
    (project / "tests" / "convos" / "local_bakery.yaml").write_text(beside)
    code, out, _ = run(capsys, "--config", "site.toml", "test", "tests/convos/bakery.yaml")
    assert code == 1
    assert "expected 'Fresh bread today!', got 'Closed today.'" in out


def test_a_flow_path_in_a_test_is_relative_to_the_test_file(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    convos = project / "tests" / "convos"
    (convos / "by_path.test.yaml").write_text(
        TEST.format(flow="../../somewhere/flows/bakery_shop.yaml")
    )
    monkeypatch.chdir(project / "somewhere")  # no config, and not the project's root
    code, out, _ = run(capsys, "test", str(convos / "by_path.test.yaml"))
    assert (code, out) == (0, "1 passed, 0 failed\n")


def test_test_reports_two_flows_with_one_id_naming_both(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "somewhere" / "flows" / "copy.yaml").write_text(FLOW.format(id="bakery"))
    both = "somewhere/flows/bakery_shop.yaml and somewhere/flows/copy.yaml"
    # --config given: the configuration is checked before any test runs.
    code, out, err = run(capsys, "--config", "site.toml", "test", "tests/convos/bakery.yaml")
    assert (code, out) == (2, "")
    assert err.startswith(f"convo: flow id 'bakery' is used by both {both} ")
    # Found through $CONVO_CONFIG: each test needing the configuration fails, saying why.
    monkeypatch.setenv("CONVO_CONFIG", "site.toml")
    code, out, _ = run(capsys, "test", "tests/convos/bakery.yaml")
    assert code == 1
    assert f"cannot load: flow id 'bakery' is used by both {both} " in out


def test_graph_resolves_an_id_through_the_flow_paths_of_config(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "graph", "--config", "site.toml", "bakery")
    assert code == 0
    assert out.startswith("stateDiagram-v2\n    [*] --> hello\n")


def test_graph_matches_ids_not_file_names(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "graph", "--config", "site.toml", "bakery_shop")
    assert (code, out) == (2, "")
    assert err == (
        "convo: no flow with id 'bakery_shop' in somewhere/flows (flows found: bakery); "
        "did you mean 'bakery'?\n"
    )


@pytest.mark.parametrize("command", ["graph", "chat"])
def test_graph_and_chat_report_two_flows_with_one_id_naming_both(
    project: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    (project / "somewhere" / "flows" / "copy.yaml").write_text(FLOW.format(id="bakery"))
    code, out, err = run(capsys, "--config", "site.toml", command, "bakery")
    assert (code, out) == (2, "")
    assert err == (
        "convo: flow id 'bakery' is used by both somewhere/flows/bakery_shop.yaml and "
        "somewhere/flows/copy.yaml (hint: give each flow file its own flow: id)\n"
    )


def test_chat_refuses_a_conversation_test_given_as_the_flow(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "chat", "tests/convos/bakery.yaml")
    assert code == 2
    assert err == "convo: tests/convos/bakery.yaml is a conversation-test file, not a flow\n"


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CONVO_CONFIG"}
    return {**env, **extra}


def test_chat_resolves_an_id_through_the_flow_paths_of_config(project: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "convo", "chat", "--config", "site.toml", "bakery"],
        cwd=project,
        env=subprocess_env(),
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "bot> Fresh bread today!\n"


def test_pytest_plugin_finds_flows_through_convo_config(project: Path) -> None:
    (project / "tests" / "convos" / "bakery.test.yaml").write_text(TEST.format(flow="bakery"))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/convos"]
    found = subprocess.run(
        command,
        cwd=project,
        env=subprocess_env(CONVO_CONFIG="site.toml"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert found.stdout.splitlines()[-1].startswith("1 passed"), found.stdout
    missing = subprocess.run(
        command, cwd=project, env=subprocess_env(), capture_output=True, text=True, timeout=60
    )
    assert missing.returncode == 1
    convos = project / "tests" / "convos"  # pytest gives the test file's absolute path
    assert f"no flow with id 'bakery' in {convos}, flows (missing)" in missing.stdout

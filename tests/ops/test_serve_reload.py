"""`convo serve` as a real process: SIGHUP reloads the flows with versions (a live
conversation stays on its version, a broken file leaves the loaded version in place and
its errors are logged with file:line:col, `renamed:` moves live conversations forward),
`--reload` follows file edits, and /metrics is served on its own port without a token."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

CONVO = Path(sys.executable).parent / "convo"
LINE = "+32460000101"

FLOW = """\
flow: quiz
languages: [en]
error_text: "Sorry, that went wrong."
start: {first}
{renamed}
steps:
  {first}:
    ask: {{text: "{first_text}", expect: text, save_as: a}}
    then: second
  second:
    ask: {{text: "Second question?", expect: text, save_as: b}}
    then: done
  done:
    say: "{last}"
    end: true
"""
V1 = FLOW.format(first="first", first_text="First question?", last="Bye.", renamed="")
V2 = FLOW.format(first="one", first_text="Question one?", last="Bye from v2.", renamed="")
V3 = FLOW.format(
    first="one", first_text="Question one?", last="Bye from v3.", renamed="renamed: {first: one}"
)
BROKEN = V2.replace("expect: text, save_as: a", "expect: telepathy, save_as: a")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, tmp_path: Path, *args: str) -> None:
        (tmp_path / "flows").mkdir(exist_ok=True)
        self.flow = tmp_path / "flows" / "quiz.yaml"
        if not self.flow.exists():  # (a server started again keeps the files)
            self.flow.write_text(V1, encoding="utf-8")
        self.metrics_port = free_port()
        config = tmp_path / "convo.toml"
        config.write_text(
            f"""
[server]
port = 0
shutdown_grace = 2
[store]
url = "sqlite:///{tmp_path / "convo.db"}"
[flows]
paths = ["{tmp_path / "flows"}"]
[[lines]]
number = "{LINE}"
provider = "sandbox"
flow = "quiz"
[metrics]
port = {self.metrics_port}
[logging]
format = "json"
""",
            encoding="utf-8",
        )
        self.stderr = tmp_path / "stderr.log"
        with self.stderr.open("ab") as err:
            self.proc = subprocess.Popen(
                [str(CONVO), "serve", "--config", str(config), *args],
                stdout=subprocess.PIPE,
                stderr=err,
                cwd=tmp_path,
            )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        assert line.startswith("convo: serving on http://"), self.log()
        self.url = line.split()[-1]

    def log(self) -> str:
        return self.stderr.read_text(encoding="utf-8")

    def text(self, who: str, text: str) -> list[str]:
        body = {"from": who, "to": LINE, "text": text}
        response = httpx.post(f"{self.url}/sandbox/messages", json=body, timeout=10)
        assert response.status_code == 200, response.text
        return [reply["text"] for reply in response.json()["replies"]]

    def reloads(self, result: str) -> float:
        response = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10)
        assert response.status_code == 200  # its own port: no token
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                if sample.name == "convo_flow_reloads_total" and sample.labels == {
                    "result": result
                }:
                    return sample.value
        return 0.0

    def wait_for(self, check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}\n{self.log()}")
            time.sleep(0.05)

    def reload(self, text: str, result: str = "ok") -> None:
        before = self.reloads(result)
        self.flow.write_text(text, encoding="utf-8")
        self.proc.send_signal(signal.SIGHUP)
        self.wait_for(lambda: self.reloads(result) > before, f"a reload ({result})")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            with contextlib.suppress(subprocess.TimeoutExpired):
                return self.proc.wait(timeout=20)
            self.proc.kill()
            return self.proc.wait()
        finally:
            if self.proc.stdout is not None:
                self.proc.stdout.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(*args: str) -> Server:
        servers.append(Server(tmp_path, *args))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def test_sighup_reloads_flows_and_live_conversations_keep_their_version(
    serve: Callable[..., Server],
) -> None:
    server = serve()
    assert server.text("+32470000001", "hi") == ["First question?"]

    server.reload(V2)  # `first` is now `one`, and no renamed: key
    assert server.text("+32470000002", "hi") == ["Question one?"]
    assert server.text("+32470000001", "a") == ["Second question?"]  # still on v1

    server.reload(BROKEN, "failed")  # the old version stays, the error is logged
    assert server.text("+32470000003", "hi") == ["Question one?"]
    errors = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    assert any(
        e["level"] == "error"
        and f"{server.flow}:8:42: error:" in e["message"]
        and "telepathy" in e["message"]
        for e in errors
    ), server.log()

    server.reload(V3)  # renamed: moves the live conversations forward to v3
    assert server.text("+32470000001", "b") == ["Bye from v3."]
    assert server.text("+32470000002", "a") == ["Second question?"]
    assert server.stop() == 0


def test_a_conversation_keeps_its_version_across_a_restart(
    serve: Callable[..., Server],
) -> None:
    server = serve()
    assert server.text("+32470000001", "hi") == ["First question?"]  # on v1's `first`
    assert server.text("+32470000002", "hi") == ["First question?"]
    assert server.text("+32470000002", "a") == ["Second question?"]  # on v1's `second`
    assert server.stop() == 0

    # v2 while it is down: `first` is gone (no renamed:), `second` leads to another end
    server.flow.write_text(V2, encoding="utf-8")
    server = serve()
    assert server.text("+32470000003", "hi") == ["Question one?"]  # new: v2
    # each live one continues on v1, read back from the store, and ends there
    assert server.text("+32470000001", "a") == ["Second question?"]
    assert server.text("+32470000002", "b") == ["Bye."]
    assert server.text("+32470000001", "b") == ["Bye."]
    assert server.text("+32470000001", "hi") == ["Question one?"]  # then starts anew on v2
    read_back = [json.loads(line) for line in server.log().splitlines() if "read back" in line]
    # the line is the business's own number (shown), the contact's is masked
    assert read_back[0]["conversation"] == f"{LINE}/sms/+32470****01", server.log()
    assert server.stop() == 0


def test_reload_follows_file_edits(serve: Callable[..., Server]) -> None:
    server = serve("--reload")
    assert server.text("+32470000001", "hi") == ["First question?"]
    time.sleep(0.3)  # the watcher starts after the server: give it a moment to look
    server.flow.write_text(V2, encoding="utf-8")
    server.wait_for(lambda: server.reloads("ok") >= 1, "a reload after the edit")
    assert server.text("+32470000002", "hi") == ["Question one?"]
    assert server.stop() == 0


def test_a_busy_port_is_one_line_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "convo.toml"
    config.write_text('[store]\nurl = "memory://"\n[flows]\npaths = []\n', encoding="utf-8")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [str(CONVO), "serve", "--config", str(config), "--port", str(port)],
            capture_output=True,
            timeout=60,
            cwd=tmp_path,
            env={**os.environ, "PYTHONWARNINGS": "error"},
            check=False,
        )
    assert done.returncode == 2
    lines = done.stderr.decode().strip().splitlines()
    assert lines[-1] == f"convo: cannot listen on 127.0.0.1:{port}: address already in use"
    assert "Traceback" not in done.stderr.decode()

"""``convo validate --provider enco``: every SMS text of a flow counted by the Enco
simulator's ``/length`` on loopback, reported where its count matters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from convo import cli
from convo.simulators.enco import EncoSimulator

FLOW = """\
flow: prices
languages: [en]
channels: [sms]
start: price
slots: [name]
steps:
  price:
    say: "{euro}"
    then: hello
  hello:
    ask:
      text: "Hello {{{{ name }}}}, reply YES"
      expect: text
      save_as: answer
    then: long
  long:
    say: "{long}"
    end: true
"""
EURO = "x" * 155 + "€€€"  # convo: 161 septets, 2 parts; this network: 158, 1 part
LONG = "y" * 200  # 2 parts for everyone


def write(tmp_path: Path, sim_url: str, *, force: bool) -> tuple[Path, Path]:
    flow = tmp_path / "prices.yaml"
    flow.write_text(FLOW.format(euro=EURO, long=LONG))
    config = tmp_path / "convo.toml"
    config.write_text(
        f"""
[[lines]]
number = "8888"
provider = "enco"
flow = "prices"

[providers.enco]
client_id = "test-client"
client_secret = "test-secret"
base_url = "{sim_url}"
token_url = "{sim_url}/token"
address = "8888"
force_character_limit = {"true" if force else "false"}
"""
    )
    return flow, config


@pytest.fixture
async def sim_url() -> AsyncIterator[tuple[EncoSimulator, str]]:
    sim = EncoSimulator(single_septet_extensions=True)
    server = TestServer(sim.app, host="127.0.0.1")
    await server.start_server()
    try:
        yield sim, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()
        await sim.aclose()


async def test_enco_counts_every_text_and_its_refusals_are_errors(
    tmp_path: Path, sim_url: tuple[EncoSimulator, str], capsys: pytest.CaptureFixture[str]
) -> None:
    sim, url = sim_url
    flow, config = write(tmp_path, url, force=True)
    argv = ["validate", str(flow), "--provider", "enco", "--config", str(config)]
    assert await asyncio.to_thread(cli.main, argv) == 1
    out, err = capsys.readouterr()
    assert sorted(sim.length_requests) == sorted([EURO, LONG, f"Hello {'x' * 10}, reply YES"])
    lines = out.splitlines()
    assert any(
        "steps.price.say: enco counts 1 SMS part(s) where convo counts 2" in ln for ln in lines
    )
    refused = [ln for ln in lines if "refuses more than one" in ln]
    assert len(refused) == 1 and "steps.long.say" in refused[0] and ": error: " in refused[0]
    assert not any("steps.hello" in ln for ln in lines)  # agreed, and one part
    assert "enco counted 3 distinct SMS text(s)" in err


async def test_without_the_character_limit_only_the_difference_is_reported(
    tmp_path: Path, sim_url: tuple[EncoSimulator, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _sim, url = sim_url
    flow, config = write(tmp_path, url, force=False)
    argv = ["validate", str(flow), "--provider", "enco", "--config", str(config)]
    assert await asyncio.to_thread(cli.main, argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and ": warning: steps.price.say: enco counts 1" in lines[0]


def test_a_provider_that_cannot_count_or_is_missing_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow, config = write(tmp_path, "http://127.0.0.1:9", force=False)
    argv = ["validate", str(flow), "--config", str(config), "--provider"]
    assert cli.main([*argv, "vonage"]) == 2
    assert "no [providers.vonage] (configured: enco)" in capsys.readouterr().err
    assert cli.main([*argv, "enco"]) == 2  # nothing listens there
    assert "enco" in capsys.readouterr().err

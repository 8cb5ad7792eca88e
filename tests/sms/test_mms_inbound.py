"""Inbound MMS end to end: the Telefonie simulator texts convo's real server a picture it
serves itself, and the example claims bot (bots_examples/claims) takes it as an answer.

What is checked: the media reaches the flow (``answer.media`` with content type and size,
``expect: media`` refusing a text), the hook downloads it within the cap, an over-cap
picture is refused, and media off the provider's allow-list (directly, or through a
redirect) is never requested: a loopback server that counts requests stays at 0.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import runpy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from convo.config import parse_settings
from convo.simulators.telefonie_sms import TelefonieSmsSimulator
from convo.simulators.twilio_sms import TwilioSmsSimulator
from convo.web.app import create_app
from tests.e2e.sms_world import LINE, PHONE, TOKEN, TWILIO_ACCOUNT, bound_socket, eventually

CLAIMS = Path(__file__).parents[2] / "bots_examples" / "claims"
PICTURE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20  # 5128 bytes, served as image/png


class Counting:
    """A loopback server that counts every request (and redirects nowhere)."""

    def __init__(self) -> None:
        self.requests = 0
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self._any)

    async def _any(self, request: web.Request) -> web.Response:
        self.requests += 1
        return web.Response(body=PICTURE, content_type="image/png")


@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


class Claims:
    """convo serving the claims example on a provider, with its simulator, on loopback."""

    def __init__(self, sim: Any, sim_url: str, photos: Path) -> None:
        self.sim = sim
        self.sim_url = sim_url
        self.photos = photos

    async def text(self, text: str, **media: Any) -> str:
        """Text (or MMS) the line; returns convo's reply."""
        before = len(self.sim.sent)
        assert await self.sim.deliver_inbound(PHONE, LINE, text, **media) == 200

        async def replied() -> bool:
            return len(self.sim.sent) > before

        await eventually(replied, "convo's reply")
        return str(self.sim.sent[before]["body"])

    async def at_photo_step(self) -> None:
        assert "What happened" in await self.text("hi")
        assert "send a photo" in await self.text("broken window")


@contextlib.asynccontextmanager
async def claims(
    tmp_path: Path, *, twilio: bool = False, **media_options: Any
) -> AsyncIterator[Claims]:
    sim: Any
    if twilio:
        sim = TwilioSmsSimulator(account_sid=TWILIO_ACCOUNT, auth_token="twt")
    else:
        sim = TelefonieSmsSimulator(api_key="tk", webhook_secret="tsig")
    async with serve(sim.app) as sim_url:
        if twilio:
            name = "twilio"
            options = {"account_sid": TWILIO_ACCOUNT, "auth_token": "twt", "base_url": sim_url}
        else:
            sim.media_base = sim_url
            name = "telefonie_sms"
            options = {"api_key": "tk", "webhook_secret": "tsig", "base_url": sim_url}
        sock, url = bound_socket()
        settings = parse_settings(
            {
                "server": {"public_url": url, "api_token": TOKEN, "shutdown_timeout": 5},
                "store": {"url": f"sqlite:///{tmp_path / 'convo.db'}"},
                "flows": {"paths": [str(CLAIMS / "claim_photo.yaml")]},
                "lines": [{"number": LINE, "provider": name, "flow": "claim_photo"}],
                "providers": {name: options | media_options},
            },
            source="mms.toml",
            env={},
        )
        sim.webhook_base = url
        photos = tmp_path / "photos"
        bot = runpy.run_path(str(CLAIMS / "bot.py"))["make_bot"](photos)
        runner = web.AppRunner(create_app(settings, bot=bot), access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        try:
            yield Claims(sim, sim_url, photos)
        finally:
            await runner.cleanup()
            await sim.aclose()


async def test_a_picture_answers_the_flow_and_is_kept(tmp_path: Path) -> None:
    async with claims(tmp_path) as world:
        await world.at_photo_step()
        # A text is no picture: expect: media asks again.
        assert "I need a picture" in await world.text("it is on its way")
        reply = await world.text("here", media=[("image/png", PICTURE)])
        assert reply == (
            f'Got 1 photo(s) of "broken window" (image/png, {len(PICTURE)} bytes). '
            "We will be in touch."
        )
        assert (world.photos / f"{PHONE[1:]}-1.png").read_bytes() == PICTURE
        assert world.sim.media_requests == 2  # one HEAD to describe it, one GET to keep it


async def test_a_picture_of_the_wrong_type_is_no_answer(tmp_path: Path) -> None:
    async with claims(tmp_path) as world:
        await world.at_photo_step()
        reply = await world.text("", media=[("application/pdf", b"%PDF-1.7")])
        assert "I need a picture" in reply
        assert world.sim.media_requests == 1  # described (HEAD), never downloaded


async def test_over_the_cap_the_picture_is_refused(tmp_path: Path) -> None:
    async with claims(tmp_path, media_max_bytes=1000) as world:
        await world.at_photo_step()
        reply = await world.text("", media=[("image/png", PICTURE)])
        assert reply.startswith("We could not keep your photo (too large)")
        assert not world.photos.exists() or not list(world.photos.iterdir())


async def test_media_off_the_allow_list_is_never_requested(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    elsewhere = Counting()
    async with serve(elsewhere.app) as other, claims(tmp_path) as world:
        await world.at_photo_step()
        with caplog.at_level(logging.WARNING, logger="convo.media"):
            reply = await world.text("look", media_urls=[f"{other}/photo.png"])
        # The text is answered (the media, unknown and not downloadable, is no picture).
        assert "I need a picture" in reply
        assert elsewhere.requests == 0
        assert any(
            "not on the media hosts" in r.getMessage() and "not downloadable" in r.getMessage()
            for r in caplog.records
        )


async def test_a_redirect_off_the_allow_list_is_not_followed(tmp_path: Path) -> None:
    elsewhere = Counting()

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"{other}/photo.png")

    redirector = web.Application()
    redirector.router.add_get("/photo.png", redirect)
    async with serve(elsewhere.app) as other, serve(redirector) as hop:
        hosts = [hop.removeprefix("http://")]
        async with claims(tmp_path, media_hosts=hosts) as world:
            await world.at_photo_step()
            reply = await world.text("look", media_urls=[f"{hop}/photo.png"])
            assert "I need a picture" in reply
            assert elsewhere.requests == 0


async def test_twilio_media_urls_reach_the_flow_the_same_way(tmp_path: Path) -> None:
    media_host = Counting()  # Twilio's media store: allow-listed in the config
    async with serve(media_host.app) as store:
        hosts = [store.removeprefix("http://")]
        async with claims(tmp_path, twilio=True, media_hosts=hosts) as world:
            await world.at_photo_step()
            reply = await world.text("", media=[f"{store}/ME1"])
            assert reply.startswith(f'Got 1 photo(s) of "broken window" (image/png, {len(PICTURE)}')
            assert (world.photos / f"{PHONE[1:]}-1.png").read_bytes() == PICTURE
            assert media_host.requests == 2


async def test_the_simulators_control_api_sends_a_picture(tmp_path: Path) -> None:
    async with claims(tmp_path) as world:
        await world.at_photo_step()
        world.sim.media_base = None  # as `convo simulator` starts: learnt from the request
        body = {
            "from": PHONE,
            "to": LINE,
            "text": "",
            "media": [{"content_type": "image/png", "base64": base64.b64encode(PICTURE).decode()}],
        }
        async with httpx.AsyncClient(base_url=world.sim_url) as client:
            bad = await client.post("/_simulator/inbound", json={**body, "media": [{"x": 1}]})
            assert bad.status_code == 400 and "'media' must be a list" in bad.json()["error"]
            answer = await client.post("/_simulator/inbound", json=body)
        assert answer.status_code == 200 and answer.json()["status"] == 200

        async def replied() -> bool:
            return len(world.sim.sent) == 3

        await eventually(replied, "the reply to the picture")
        assert str(world.sim.sent[2]["body"]).startswith("Got 1 photo(s)")
        assert world.sim.media_base == world.sim_url


def test_convo_simulator_serves_media_where_convo_looks_for_it() -> None:
    section = {"api_key": "tk", "base_url": "http://127.0.0.1:8090/v1/sms"}
    sim = TelefonieSmsSimulator.from_config(section)
    assert sim.media_base == "http://127.0.0.1:8090"  # = the default media_hosts entry
    assert sim.add_media("image/png", PICTURE).startswith("http://127.0.0.1:8090/media/ME")

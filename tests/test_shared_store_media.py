"""On PostgreSQL a turn's lock holds one of a few database connections, in a transaction:
an MMS's media are described (a request to the media host) before the lock is taken, so a
slow media host cannot hold those connections and stall every other conversation."""

from __future__ import annotations

import asyncio
import dataclasses

from aiohttp import web
from aiohttp.test_utils import TestServer

from convo.flow.engine import Engine
from convo.flow.loader import load_flow_text
from convo.media import MediaInspector, MediaPolicy
from convo.models import InboundMessage
from convo.store.postgres import PostgresStore
from tests.echo_world import FLOW, LINE, text

WAIT = 10.0  # seconds: far above a turn here, far below the media host's hold


async def test_a_slow_media_host_holds_no_turn_connection(postgres_url: str) -> None:
    described = asyncio.Event()
    heads: list[str] = []
    release = asyncio.Event()

    async def head(request: web.Request) -> web.Response:
        heads.append(request.path)
        if len(heads) == 2:
            described.set()
        await release.wait()  # a media host that does not answer (until the test ends)
        return web.Response(headers={"Content-Type": "image/png", "Content-Length": "10"})

    app = web.Application()
    app.router.add_route("HEAD", "/{name}", head)
    media_host = TestServer(app, host="127.0.0.1")
    await media_host.start_server()
    host = f"127.0.0.1:{media_host.port}"
    inspector = MediaInspector({"vonage": MediaPolicy(hosts=(host,), timeout=60.0)})
    # pool_size 3: two turns at once hold a connection each (the third is for the rest).
    store = PostgresStore(f"{postgres_url}&pool_size=3")
    await store.open()
    engine = Engine(
        {"echo": load_flow_text(FLOW, "echo.yaml")}, store, lines={LINE: "echo"}, media=inspector
    )

    def from_(contact: str, n: int, body: str, *media: str) -> InboundMessage:
        return dataclasses.replace(
            text(n, body), sender=contact, provider_message_id=f"{contact}-{n}", media_urls=media
        )

    try:
        ann, bob, cleo = "+32470000011", "+32470000012", "+32470000013"
        for who in (ann, bob):  # conversations under way: their next text is an answer
            assert [r.text for r in await engine.handle(from_(who, 1, "hi"))] == ["ready"]
        pictures = [
            asyncio.create_task(engine.handle(from_(who, 2, "look", f"http://{host}/{who}.png")))
            for who in (ann, bob)
        ]
        async with asyncio.timeout(WAIT):
            await described.wait()  # both MMS wait for their media host
        # Before: each MMS's turn held its connection while it asked, and Cleo's text
        # waited for one until the media host answered or timed out.
        async with asyncio.timeout(WAIT):
            answered = await engine.handle(from_(cleo, 1, "hello"))
        assert [r.text for r in answered] == ["ready"]
        release.set()
        async with asyncio.timeout(WAIT):
            done = await asyncio.gather(*pictures)
        assert [[r.text for r in replies] for replies in done] == [["got look"], ["got look"]]
    finally:
        release.set()
        await store.close()
        await media_host.close()

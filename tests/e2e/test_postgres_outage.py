"""PostgreSQL goes away while texts come in, and comes back: nothing acknowledged is lost.

convo's real server on a real PostgreSQL schema, reached through a TCP proxy on loopback
that is taken down (every connection cut, new ones refused) and brought back, with the
Vonage simulator as the provider. While the database is gone, webhooks are answered 503
with Retry-After (the provider retries) and /readyz fails; when it is back, every text is
answered exactly once, without a restart."""

from __future__ import annotations

import asyncio
import urllib.parse
from pathlib import Path

import httpx

from tests.conftest import postgres_schema
from tests.e2e.sms_world import Vonage, World, eventually, running_world
from tests.e2e.tcp_proxy import proxy_to
from tests.e2e.test_store_faults import answered_once_each, post_inbound, vonage_inbound

PHONES = [f"+3247066{i:04d}" for i in range(8)]


def through(url: str, port: int) -> str:
    """``url`` with its host and port replaced by the proxy's."""
    parts = urllib.parse.urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{port}"))


async def readyz(world: World) -> httpx.Response:
    async with httpx.AsyncClient(base_url=world.url, timeout=30) as client:
        return await client.get("/readyz")


async def test_webhooks_get_503_while_the_database_is_gone_and_all_are_answered_after(
    tmp_path: Path,
) -> None:
    provider = Vonage(allow_unsigned=True, signature_secret="")
    async with postgres_schema() as url:
        parts = urllib.parse.urlsplit(url)
        async with proxy_to(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
            store_url = through(url, proxy.port)
            async with running_world(tmp_path, provider, store_url=store_url) as world:
                early, late = PHONES[:4], PHONES[4:]
                for i, phone in enumerate(early):
                    fields = vonage_inbound(phone, provider.line, f"E{i}")
                    answer = await post_inbound(world, fields)
                    assert answer.status_code == 200, answer.text
                await answered_once_each(world, early)

                await proxy.down()
                for i, phone in enumerate(late):
                    fields = vonage_inbound(phone, provider.line, f"L{i}")
                    answer = await post_inbound(world, fields)
                    assert answer.status_code == 503, answer.text
                    assert 0 < int(answer.headers["Retry-After"]) <= 60
                    assert "postgres" not in answer.text.lower()  # nothing internal named
                ready = await readyz(world)
                assert ready.status_code == 503 and "store" in ready.json()["failed"]
                await asyncio.sleep(0.5)  # the background loops meet the outage too

                await proxy.up()  # same port: the pool reconnects by itself

                async def ready_again() -> bool:
                    return (await readyz(world)).status_code == 200

                await eventually(ready_again, "/readyz to pass again")
                # The provider retries what was refused, with the same message ids.
                for i, phone in enumerate(late):
                    fields = vonage_inbound(phone, provider.line, f"L{i}")
                    answer = await post_inbound(world, fields)
                    assert answer.status_code == 200, answer.text
                await answered_once_each(world, PHONES)

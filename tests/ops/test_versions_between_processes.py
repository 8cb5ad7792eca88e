"""Two ``convo serve`` processes on one PostgreSQL schema, loaded with different versions
of a flow: a conversation started on the first process's version continues on it when
its next text reaches the second, which reads that version back from the store (as a
worker of ``convo serve --workers`` started after an edit does). Real processes, the
Vonage simulator as the phones."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.sms_world import eventually
from tests.e2e.workers_world import Cluster, client, cluster, contact, inbound_body, post
from tests.ops.test_serve_reload import V1, V2


async def replied(world: Cluster, who: str, count: int) -> list[str]:
    async def got() -> list[str] | None:
        replies = world.replies()[who]
        return replies if len(replies) >= count else None

    return await eventually(got, f"{count} replies to {who}", timeout=30)


async def test_a_conversation_keeps_its_version_on_another_process(tmp_path: Path) -> None:
    async with cluster(tmp_path, V1) as world:
        config = world.config("quiz")
        first = await world.start(config)
        alice, bob = contact(1), contact(2)
        async with client() as http:
            assert await post(http, first.url, inbound_body(alice, "hi")) == 200
            assert await replied(world, alice, 1) == ["First question?"]

            (tmp_path / "flow.yaml").write_text(V2, encoding="utf-8")  # `first` is gone
            second = await world.start(config)  # loads v2
            assert await post(http, second.url, inbound_body(bob, "hi")) == 200
            assert await replied(world, bob, 1) == ["Question one?"]
            assert await post(http, second.url, inbound_body(alice, "a")) == 200
            assert await replied(world, alice, 2) == ["First question?", "Second question?"]
            assert await post(http, second.url, inbound_body(alice, "b")) == 200
            assert (await replied(world, alice, 3))[-1] == "Bye."  # v1's end, not v2's
        for server in (first, second):
            assert await server.stop() == 0, server.err.decode()[-2000:]

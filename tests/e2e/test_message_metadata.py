"""Provider metadata of replies (Telefoon ``gdpr_consent_ref``): from the flow's
params to the provider's API, through the message log, on loopback with the simulators."""

from __future__ import annotations

from pathlib import Path

from convo.models import MessageRecord, OutboundMessage
from convo.store.sqlite import SqliteStore
from tests.e2e.sms_world import TelefonieSms, TelefoonSms, running_world


class ConsentTelefoon(TelefoonSms):
    flow = "sms_consent"


class ConsentTelefonie(TelefonieSms):
    flow = "sms_consent"


async def test_gdpr_consent_ref_reaches_telefoon_with_every_reply(tmp_path: Path) -> None:
    provider = ConsentTelefoon()
    async with running_world(tmp_path, provider) as world:
        await provider.text_in("hello")
        assert await world.reply(0) == "Hi! What is your name?"
        await provider.text_in("An")
        assert await world.reply(1) == "Thanks An. Bye!"
        sent = [provider.outbound(0), provider.outbound(1)]
        assert [m["gdpr_consent_ref"] for m in sent] == ["consent-2026-11"] * 2


async def test_gdpr_consent_ref_survives_a_restart_before_the_send(tmp_path: Path) -> None:
    """The metadata is kept with the queued message: a reply sent by the next process
    (after a crash between the turn and the send) still carries it."""
    store = SqliteStore(tmp_path / "convo.db")
    await store.open()
    provider = ConsentTelefonie()
    queued = OutboundMessage(
        line=provider.line,
        to="+32470123456",
        text="queued before the crash",
        metadata={"gdpr_consent_ref": "consent-7", "validity_period": "3600"},
    )
    await store.add_outbound([MessageRecord.outbound(queued, provider="telefonie_sms")])
    await store.close()
    async with running_world(tmp_path, provider) as world:
        await world.reply(0)
        sent = provider.outbound(0)
        assert provider.text(0) == "queued before the crash"
        assert sent["validity_period"] == 3600
        assert "gdpr_consent_ref" not in sent  # Telefonie's API has no such field

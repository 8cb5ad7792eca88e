"""Contacts and idempotent requests, the same contract on every built-in store."""

from __future__ import annotations

from pathlib import Path

import pytest

from convo.models import Contact
from convo.store.base import SEALED, Store, StoredRequest
from convo.store.sqlite import SqliteStore

AN = Contact("+32470123456", "nl", "An", "Europe/Brussels", {"room": 3, "tags": ["vip"]})


async def test_put_get_replace_delete(any_store: Store) -> None:
    assert await any_store.get_contact(AN.number) is None
    assert await any_store.put_contact(AN) is True
    assert await any_store.get_contact(AN.number) == AN
    changed = Contact(AN.number, "en", None, None, {})
    assert await any_store.put_contact(changed) is False
    assert await any_store.get_contact(AN.number) == changed
    assert await any_store.delete_contact(AN.number) is True
    assert await any_store.delete_contact(AN.number) is False
    assert await any_store.get_contact(AN.number) is None


async def test_fields_are_copied_and_must_be_json(any_store: Store) -> None:
    fields: dict[str, object] = {"room": 3}
    await any_store.put_contact(Contact(AN.number, fields=fields))
    fields["room"] = 4
    found = await any_store.get_contact(AN.number)
    assert found is not None and found.fields == {"room": 3}
    with pytest.raises(ValueError, match="JSON"):
        await any_store.put_contact(Contact("+32470000002", fields={"when": object()}))
    assert await any_store.get_contact("+32470000002") is None


async def test_put_contacts_is_one_batch(any_store: Store) -> None:
    await any_store.put_contact(AN)
    batch = [Contact(f"+3247000{i:04d}", name=f"P{i}") for i in range(500)]
    batch.append(Contact(AN.number, name="An Peeters"))
    batch.append(Contact("+32470000007", name="Later"))  # given twice: the later one stays
    assert await any_store.put_contacts(batch) == 500
    assert (await any_store.get_contact("+32470000007")) == Contact("+32470000007", name="Later")
    an = await any_store.get_contact(AN.number)
    assert an is not None and an.name == "An Peeters"
    bad = [Contact("+32470009998"), Contact("+32470009999", fields={"x": {1, 2}})]
    with pytest.raises(ValueError):
        await any_store.put_contacts(bad)
    assert await any_store.get_contact("+32470009998") is None  # nothing of a refused batch


async def test_erasure_deletes_the_contact(any_store: Store) -> None:
    await any_store.put_contact(AN)
    erased = await any_store.erase_contact(AN.number)
    assert erased.contact is True
    assert await any_store.get_contact(AN.number) is None
    assert (await any_store.erase_contact(AN.number)).contact is False


async def test_idempotent_requests(any_store: Store) -> None:
    assert await any_store.claim_request("k1", "fp", 100.0) is None
    assert await any_store.claim_request("k1", "fp", 101.0) == StoredRequest("fp", None)
    await any_store.settle_request("k1", '{"id": "x"}')
    assert await any_store.claim_request("k1", "other", 102.0) == StoredRequest("fp", '{"id": "x"}')
    assert await any_store.claim_request("k2", "fp", 200.0) is None
    await any_store.settle_request("k2", None)  # failed: the key may be used again
    assert await any_store.claim_request("k2", "fp2", 201.0) is None
    assert await any_store.prune_seen(150.0) == 1  # k1 only
    assert await any_store.claim_request("k1", "fp3", 300.0) is None
    assert await any_store.claim_request("k2", "x", 300.0) == StoredRequest("fp2", None)


async def test_sealed_requests_keep_their_claims(any_store: Store) -> None:
    for key in ("voice v 1_% turn a", "voice v 1_% answer", "voice v 1x turn a", "voice v 1"):
        assert await any_store.claim_request(key, "fp", 100.0) is None
        await any_store.settle_request(key, "said")
    # The prefix is taken literally: "_" and "%" match only themselves.
    assert await any_store.seal_requests("voice v 1_% ", "hangup") == 2
    assert await any_store.claim_request("voice v 1_% turn a", "fp", 101.0) == StoredRequest(
        SEALED, "hangup"
    )
    for key in ("voice v 1x turn a", "voice v 1"):
        assert await any_store.claim_request(key, "fp", 101.0) == StoredRequest("fp", "said")
    assert await any_store.seal_requests("nothing ", "hangup") == 0


async def test_contacts_survive_a_restart(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "c.db")
    await store.open()
    await store.put_contact(AN)
    await store.close()
    again = SqliteStore(tmp_path / "c.db")
    await again.open()
    try:
        assert await again.get_contact(AN.number) == AN
    finally:
        await again.close()

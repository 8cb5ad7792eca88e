"""Message ids: unique, URL-safe, and made in time order, so the message log's index of ids
grows at its end (see convo.models.new_message_id)."""

from __future__ import annotations

import string
import time

from convo.models import InboundMessage, OutboundMessage, new_id, new_message_id


def test_message_ids_are_unique_hex_and_sort_by_when_they_were_made() -> None:
    first = [new_message_id() for _ in range(2000)]
    time.sleep(0.002)  # the next millisecond at least
    later = [InboundMessage(line="+1", sender="+2", text="hi").id for _ in range(1000)]
    later += [OutboundMessage(line="+1", to="+2", text="hi").id for _ in range(1000)]
    ids = first + later
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and set(i) <= set(string.hexdigits.lower()) for i in ids)
    assert max(first) < min(later)
    stamp = int(later[0][:12], 16)
    assert abs(stamp - time.time() * 1000) < 60_000  # the first 12 digits: milliseconds
    assert len({i[12:] for i in first}) == len(first)  # and 80 random bits after them


def test_other_ids_stay_random() -> None:
    # new_id's first digits are not a clock (a file name takes 12 of them to be unique).
    ids = [new_id() for _ in range(200)]
    assert len(set(ids)) == len(ids) and all(len(i) == 32 for i in ids)
    assert len({i[:12] for i in ids}) == len(ids)

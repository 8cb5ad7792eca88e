"""A flow reads the contact's record on every turn only when its templates or hooks can use
it (FlowSpec.reads_contact): the engine skips the store read otherwise."""

from __future__ import annotations

import pytest

from convo.flow.loader import load_flow_text
from convo.flow.spec import FlowSpec

FLOW = """
flow: f
languages: [en]
start: a
steps:
  a:
    say: "{text}"
    {extra}
    end: true
"""


def flow(text: str, extra: str = "") -> FlowSpec:
    return load_flow_text(FLOW.format(text=text, extra=extra), "f.yaml")


@pytest.mark.parametrize(
    ("text", "extra", "reads"),
    [
        ("Hello", "", False),
        ("Hello {{ contact.number }} ({{ contact.lang }})", "", False),
        ("Hello {{ contact.name }}", "", True),
        ("Room {{ contact.fields.room }}", "", True),
        ("{% if contact.timezone %}x{% endif %}", "", True),
        ("Hi {{ contact['name'] }}", "", True),
        ("Hello", "do: [shop.book]", True),  # a hook sees the whole contact
    ],
)
def test_reads_contact(text: str, extra: str, reads: bool) -> None:
    assert flow(text, extra).reads_contact is reads

"""The README's MMS example flow loads and sends its pictures with the texts they belong to."""

from __future__ import annotations

import re
from pathlib import Path

from convo.flow.loader import load_flow_text
from convo.models import InboundMessage
from convo.testing.dialogue import TEST_CONTACT, TEST_LINE, FlowTester

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_flow(flow_id: str) -> str:
    """The README's fenced YAML block that defines flow ``flow_id``."""
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    [block] = [b for b in blocks if b.startswith(f"flow: {flow_id}\n")]
    return block


async def test_readme_directions_flow_sends_its_map_as_mms() -> None:
    tester = FlowTester(load_flow_text(readme_flow("directions"), "README.md"))
    hello = InboundMessage(line=TEST_LINE, sender=TEST_CONTACT, text="where are you?")
    where, ask = await tester.engine.handle(hello)
    assert "Brussels office" in where.text
    assert where.media_urls == ("https://maps.example.com/brussels.png",)
    assert ask.media_urls == () and "YES or NO" in ask.text
    no = InboundMessage(line=TEST_LINE, sender=TEST_CONTACT, text="no")
    [entrance] = await tester.engine.handle(no)
    assert entrance.media_urls == ("https://maps.example.com/entrance.jpg",)

    opened = await tester.engine.start(
        tester.dialogue(number="+32470000002").key,
        "directions",
        params={"branch": "Gent", "map_url": "https://maps.example.com/gent.png"},
        lang="nl",
    )
    assert "kantoor in Gent" in opened[0].text
    assert opened[0].media_urls == ("https://maps.example.com/gent.png",)

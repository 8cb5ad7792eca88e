"""Flows and media: ``expect: media`` in the flow format, ``answer`` in templates and
conditions, hooks and validators given the media; the engine on its own (no provider, so
no media policy: media known by URL only, never downloadable)."""

from __future__ import annotations

import pytest

from convo.bot import Bot, Conversation
from convo.exceptions import FlowError
from convo.flow.engine import Engine
from convo.flow.expect import parse_answer
from convo.flow.loader import load_flow_text
from convo.flow.spec import Ask, Expect, Pos
from convo.media import Media
from convo.models import InboundMessage
from convo.store.memory import MemoryStore

LINE, PHONE = "+3225550120", "+32470123456"
PHOTO = "https://api.telefonie.com/media/ME1"

FLOW = """
flow: photo
languages: [en]
start: ask
steps:
  ask:
    ask:
      text: "Send a picture."
      expect: {type: media, types: ["image/*", "video/mp4"]}
      validate: photo.check
      save_as: pictures
      reprompt: ["A picture, please ({{ answer.text or 'no text' }})."]
    do: [photo.seen]
    then:
      - if: "answer.media | length > 1"
        goto: many
      - goto: one
  one:
    say: "One: {{ answer.media[0].url }} {{ pictures[0].downloadable }}"
    end: true
  many:
    say: "{{ answer.media | length }} of them"
    end: true
"""


def test_expect_media_reads_its_types() -> None:
    spec = load_flow_text(FLOW, hooks={"photo.check": "validator", "photo.seen": "action"})
    verb = spec.steps["ask"].verb
    assert isinstance(verb, Ask)
    assert (verb.expect.kind, verb.expect.types) == ("media", ("image/*", "video/mp4"))


@pytest.mark.parametrize(
    ("expect", "needle"),
    [
        ('{type: media, types: ["png"]}', "'png' is not a content type"),
        ('{type: media, types: ["*/png"]}', "'*/png' is not a content type"),
        ("{type: media, pattern: x}", "pattern does not apply to type media"),
        ('{type: text, types: ["image/*"]}', "types does not apply to type text"),
        ("medium", "unknown expect type 'medium'"),
    ],
)
def test_bad_media_expectations_are_load_errors(expect: str, needle: str) -> None:
    text = FLOW.replace('{type: media, types: ["image/*", "video/mp4"]}', expect)
    with pytest.raises(FlowError, match=needle):
        load_flow_text(text, hooks={"photo.check": "validator", "photo.seen": "action"})


def test_a_text_alone_is_never_media() -> None:
    assert not parse_answer(Expect("media", Pos("x")), "here is my photo", "en").ok


def photo_bot(seen: list[tuple[Media, ...]], verdicts: list[bool | str]) -> Bot:
    bot = Bot("photo")

    @bot.validator
    async def check(conv: Conversation, value: tuple[Media, ...]) -> bool | str:
        seen.append(value)
        return verdicts.pop(0)

    @bot.action("photo.seen")
    async def keep(conv: Conversation) -> None:
        seen.append(conv.media)

    return bot


async def test_media_reaches_templates_validators_and_hooks() -> None:
    seen: list[tuple[Media, ...]] = []
    bot = photo_bot(seen, ["Too blurry, another one.", True])
    # Any media (no types): without a provider's policy the content type stays unknown.
    text = FLOW.replace('{type: media, types: ["image/*", "video/mp4"]}', "media")
    spec = load_flow_text(text, hooks=bot.hook_names())
    engine = Engine({"photo": spec}, MemoryStore(), bot=bot)

    async def send(text: str, *urls: str) -> list[str]:
        message = InboundMessage(LINE, PHONE, text, provider="telefonie_sms", media_urls=urls)
        return [m.text for m in await engine.handle(message)]

    assert await send("hi") == ["Send a picture."]
    assert await send("here") == ["A picture, please (here)."]  # a text is no picture
    assert await send("blurry", PHOTO) == ["Too blurry, another one."]
    assert await send("", PHOTO) == [f"One: {PHOTO} False"]
    # The validator got the Media (twice), then the hook: known by URL only, not downloadable
    # (an engine without an inspector has no provider policy to fetch it with).
    assert [tuple(m.url for m in media) for media in seen] == [(PHOTO,)] * 3
    assert all(not m.downloadable and m.content_type is None for m in seen[-1])
    session = await engine.store.get_session(InboundMessage(LINE, PHONE, "").key)
    assert session is not None
    assert session.slots["pictures"] == [
        {"url": PHOTO, "content_type": None, "size": None, "downloadable": False}
    ]

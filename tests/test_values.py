"""``@value`` classes behave exactly like ``@dataclass(frozen=True, slots=True)`` ones."""

from __future__ import annotations

import dataclasses
import inspect
import itertools

import pytest

from convo.models import MessageRecord, OutboundMessage
from convo.values import value

_counter = itertools.count()


def _next() -> int:
    return next(_counter)


@value
class Sample:
    name: str
    size: int = 3
    serial: int = dataclasses.field(default_factory=_next)
    tags: tuple[str, ...] = ()
    note: str = dataclasses.field(default="", kw_only=True)


@dataclasses.dataclass(frozen=True, slots=True)
class Reference:
    name: str
    size: int = 3
    serial: int = dataclasses.field(default_factory=_next)
    tags: tuple[str, ...] = ()
    note: str = dataclasses.field(default="", kw_only=True)


def test_same_signature_as_the_dataclass() -> None:
    ours = inspect.signature(Sample.__init__).parameters
    theirs = inspect.signature(Reference.__init__).parameters
    assert list(ours) == list(theirs)
    assert [p.kind for p in ours.values()] == [p.kind for p in theirs.values()]
    assert ours["size"].default == 3
    assert ours["note"].kind is inspect.Parameter.KEYWORD_ONLY


def test_defaults_and_factories() -> None:
    a, b = Sample("a"), Sample("b", 5, tags=("x",), note="n")
    assert (a.name, a.size, a.tags, a.note) == ("a", 3, (), "")
    assert (b.size, b.tags, b.note) == (5, ("x",), "n")
    assert b.serial == a.serial + 1  # the factory runs once per object
    assert Sample("c", serial=42).serial == 42  # a given value wins over the factory
    with pytest.raises(TypeError):
        Sample()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Sample("a", 1, 2, (), "too many")  # type: ignore[call-arg]


def test_frozen_equal_hashable_replaceable() -> None:
    s = Sample("a", serial=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.name = "b"  # type: ignore[misc]
    assert s == Sample("a", serial=1) and s != Sample("a", serial=2)
    assert hash(s) == hash(Sample("a", serial=1))
    assert dataclasses.replace(s, size=9) == Sample("a", 9, serial=1)
    assert not hasattr(s, "__dict__")
    assert repr(s) == "Sample(name='a', size=3, serial=1, tags=(), note='')"


def test_refuses_what_it_would_skip() -> None:
    with pytest.raises(TypeError, match="__post_init__"):

        @value
        class WithPostInit:
            x: int

            def __post_init__(self) -> None:
                pass

    with pytest.raises(TypeError, match="init field"):

        @value
        class WithHiddenField:
            x: int = dataclasses.field(default=0, init=False)


def test_convo_messages_are_values() -> None:
    message = OutboundMessage(line="+3225550120", to="+32470000001", text="hi")
    record = MessageRecord.outbound(message)
    assert record.id == message.id and len(message.id) == 32
    assert (
        message.metadata == {} and message.metadata is not OutboundMessage("a", "b", "c").metadata
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.text = "changed"  # type: ignore[misc]

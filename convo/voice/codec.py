"""Call instructions as JSON text and back, so an answer can be stored and given again.

A call webhook retried by its provider must get the document the first delivery got
(``convo.flow.calls``); the neutral instructions are stored, not a provider's rendering, so
the stored answer needs no provider to read it. Each instruction is an object
``{"kind": "Say", <its fields>...}``; a Gather's prompts are nested the same way, sets and
tuples are lists. :func:`loads` rebuilds the values (validated again by their constructors)
and raises ``ValueError`` naming the index of what it cannot read.

The answers of one call are claimed under keys that begin with :func:`call_key`, so
erasing its caller can seal them all (``convo.erasure``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from convo.voice.instructions import (
    Conference,
    Dial,
    Gather,
    Hangup,
    Instruction,
    Pause,
    Play,
    Record,
    Redirect,
    Say,
    ensure_instructions,
)

_KINDS: dict[str, type[Instruction]] = {
    cls.__name__: cls
    for cls in (Say, Play, Pause, Gather, Record, Dial, Conference, Redirect, Hangup)
}


def _plain(item: Instruction) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": type(item).__name__}
    for f in dataclasses.fields(item):
        value = getattr(item, f.name)
        if f.name == "prompts":
            value = [_plain(prompt) for prompt in value]
        elif isinstance(value, frozenset):
            value = sorted(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def dumps(instructions: Sequence[object]) -> str:
    """``instructions`` as JSON text; ``TypeError`` for an item that is not one."""
    return json.dumps([_plain(item) for item in ensure_instructions(instructions)])


def _build(obj: object, where: str) -> Instruction:
    if not isinstance(obj, dict) or obj.get("kind") not in _KINDS:
        raise ValueError(f"{where}: expected an object whose kind is one of {', '.join(_KINDS)}")
    cls = _KINDS[obj["kind"]]
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in obj:
            continue  # a field added since it was stored: its default
        value = obj[f.name]
        if f.name == "prompts":
            value = tuple(_build(p, f"{where}.prompts[{i}]") for i, p in enumerate(value))
        elif f.name == "input":
            value = frozenset(value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[f.name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None


def loads(text: str) -> list[Instruction]:
    """The instructions :func:`dumps` wrote; ``ValueError`` saying what is wrong where."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"stored call instructions are not JSON: {exc}") from None
    if not isinstance(doc, list):
        raise ValueError("stored call instructions must be a JSON list")
    return [_build(obj, f"[{i}]") for i, obj in enumerate(doc)]


def call_key(provider: str, call_id: str) -> str:
    """The start of the key of every answer stored for call ``call_id`` of ``provider``."""
    return f"voice {provider} {call_id} "

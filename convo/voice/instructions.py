"""Neutral call instructions: what a call should do next, in no provider's vocabulary.

The voice layer answers every call webhook with a short list of these; a provider adapter
renders them into its own document (Telefoon Voice: TwiML-style XML or JSON, see
``convo.voice.twiml``) and checks its own limits there. Nothing here knows a provider.

Values are frozen dataclasses validated on construction: a value that cannot mean anything
on any provider (a negative timeout, an empty Say, a DTMF key that is not a key) raises
``ValueError`` naming the field. Limits that depend on the provider (text length, supported
languages, timeout ranges) are checked at render time instead.

URLs in ``Gather.action``, ``Record.action``, ``Dial.action`` and ``Redirect.url`` are filled by
the web layer from ``server.public_url`` (never from request data); an empty action means
"the provider's input URL for this call" and is filled by the adapter.

Locales are BCP-47 tags such as ``nl-NL``. When a provider lacks the asked locale, the
renderer substitutes one (``convo.voice.locales``) and keeps the asked one in
``Say.requested_language``, so tests and logs can see the substitution.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

InputKind = Literal["dtmf", "speech"]
INPUT_KINDS: frozenset[str] = frozenset({"dtmf", "speech"})
DTMF_KEYS = frozenset("0123456789*#")


def _check(condition: bool, kind: str, message: str) -> None:
    if not condition:
        raise ValueError(f"{kind}: {message}")


def _positive(kind: str, name: str, value: float | None, *, allow_zero: bool = False) -> None:
    if value is None:
        return
    # bool is an int subclass: Say(loop=True) is a bug, not a count.
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    ok = ok and (value >= 0 if allow_zero else value > 0)
    bound = ">= 0" if allow_zero else "> 0"
    _check(ok, kind, f"{name} must be a number {bound}, got {value!r}")


def _finish_key(kind: str, key: str) -> None:
    _check(
        key == "" or key in DTMF_KEYS,
        kind,
        f"finish_on_key must be one of 0-9 * # or empty, got {key!r}",
    )


@dataclass(frozen=True, slots=True)
class Say:
    """Speak ``text`` with text-to-speech in ``language`` (BCP-47; "" = provider default).

    ``language_fallbacks`` are tried in order when the provider lacks ``language`` (from the
    flow's ``voice:`` section); ``requested_language`` is set by the renderer when it
    replaced ``language`` with a fallback. ``loop`` repeats the text (>= 1).
    """

    text: str
    language: str = ""
    voice: str = ""
    loop: int = 1
    language_fallbacks: tuple[str, ...] = ()
    requested_language: str | None = None

    def __post_init__(self) -> None:
        _check(isinstance(self.text, str) and self.text.strip() != "", "Say", "text is empty")
        _check(
            isinstance(self.loop, int) and not isinstance(self.loop, bool) and self.loop >= 1,
            "Say",
            f"loop must be an integer >= 1, got {self.loop!r}",
        )


@dataclass(frozen=True, slots=True)
class Play:
    """Play the audio file at ``url`` (http/https), ``loop`` times."""

    url: str
    loop: int = 1

    def __post_init__(self) -> None:
        _check(
            self.url.startswith(("http://", "https://")), "Play", f"url {self.url!r} is not http(s)"
        )
        _check(
            isinstance(self.loop, int) and not isinstance(self.loop, bool) and self.loop >= 1,
            "Play",
            f"loop must be an integer >= 1, got {self.loop!r}",
        )


@dataclass(frozen=True, slots=True)
class Pause:
    """Stay silent for ``seconds``."""

    seconds: float = 1

    def __post_init__(self) -> None:
        _positive("Pause", "seconds", self.seconds)


Prompt = Say | Play | Pause


@dataclass(frozen=True, slots=True)
class Gather:
    """Collect DTMF digits and/or speech while playing ``prompts``.

    ``num_digits`` ends the gather after that many keys (None: until ``finish_on_key`` or
    ``timeout``); ``timeout`` is the seconds of silence before no-input. ``speech_language``
    and ``hints`` (expected words) tune speech recognition. ``action`` is where the provider
    posts the result ("" = the adapter's input URL). ``requested_speech_language`` is set by
    the renderer when ``speech_language`` was replaced with a fallback.
    """

    input: frozenset[str] = frozenset({"dtmf"})
    num_digits: int | None = None
    finish_on_key: str = "#"
    timeout: float = 5
    speech_language: str = ""
    hints: tuple[str, ...] = ()
    prompts: tuple[Prompt, ...] = ()
    action: str = ""
    requested_speech_language: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.input, str):
            raise ValueError(f"Gather: input must be a set such as {{'dtmf'}}, got {self.input!r}")
        _check(
            bool(self.input) and set(self.input) <= INPUT_KINDS,
            "Gather",
            f"input must be a non-empty subset of {{'dtmf', 'speech'}}, got {set(self.input)!r}",
        )
        if self.num_digits is not None:
            _check(
                isinstance(self.num_digits, int)
                and not isinstance(self.num_digits, bool)
                and self.num_digits >= 1,
                "Gather",
                f"num_digits must be an integer >= 1, got {self.num_digits!r}",
            )
        _finish_key("Gather", self.finish_on_key)
        _positive("Gather", "timeout", self.timeout)
        for i, prompt in enumerate(self.prompts):
            _check(
                isinstance(prompt, Say | Play | Pause),
                "Gather",
                f"prompts[{i}] must be Say, Play or Pause, got {type(prompt).__name__}",
            )


@dataclass(frozen=True, slots=True)
class Record:
    """Record the caller (after a beep when ``beep``) for up to ``max_length`` seconds.

    Recording ends on ``finish_on_key``, after ``silence_timeout`` seconds of silence, or at
    ``max_length``. The recording's URL and duration are posted to ``action``.
    """

    max_length: int = 120
    finish_on_key: str = "#"
    beep: bool = True
    silence_timeout: float = 5
    action: str = ""

    def __post_init__(self) -> None:
        _positive("Record", "max_length", self.max_length)
        _finish_key("Record", self.finish_on_key)
        _positive("Record", "silence_timeout", self.silence_timeout)


@dataclass(frozen=True, slots=True)
class Dial:
    """Connect the caller to ``target``: an E.164 number or a ``sip:`` URI.

    ``caller_id`` is the number shown to the callee ("" = the line); ``timeout`` the ring
    time in seconds; ``time_limit`` the longest the bridged call may last (None: provider
    default); the outcome is posted to ``action`` when set. ``record``: record the bridged
    call from the moment the callee answers (the flow told the caller and has their consent
    under the GDPR). ``language``: the TTS locale (BCP-47) of the dialled leg, for a
    provider whose dial takes one ("" = the provider's default); resolved to a supported
    locale like a Say's, the asked one kept in ``requested_language``.
    """

    target: str
    caller_id: str = ""
    timeout: float = 30
    time_limit: int | None = None
    action: str = ""
    record: bool = False
    language: str = ""
    requested_language: str | None = None

    def __post_init__(self) -> None:
        _check(self.target.strip() != "", "Dial", "target is empty")
        _positive("Dial", "timeout", self.timeout)
        _positive("Dial", "time_limit", self.time_limit)
        _check(isinstance(self.record, bool), "Dial", f"record must be a bool, got {self.record!r}")

    @property
    def is_sip(self) -> bool:
        return self.target.lower().startswith(("sip:", "sips:"))


@dataclass(frozen=True, slots=True)
class Conference:
    """Put the caller in conference ``room``.

    ``start_on_enter``: the conference starts when this caller joins (else they wait);
    ``end_on_exit``: it ends when they leave; ``muted``: they only listen; ``record``:
    record the conference (needs the participants' consent under the GDPR).
    """

    room: str
    start_on_enter: bool = True
    end_on_exit: bool = False
    muted: bool = False
    record: bool = False

    def __post_init__(self) -> None:
        _check(self.room.strip() != "", "Conference", "room is empty")


@dataclass(frozen=True, slots=True)
class Redirect:
    """Fetch the next instructions from ``url`` (an absolute http(s) URL)."""

    url: str

    def __post_init__(self) -> None:
        _check(
            self.url.startswith(("http://", "https://")),
            "Redirect",
            f"url {self.url!r} is not an absolute http(s) URL",
        )


@dataclass(frozen=True, slots=True)
class Hangup:
    """End the call."""


Instruction = Say | Play | Pause | Gather | Record | Dial | Conference | Redirect | Hangup


def ensure_instructions(items: Iterable[object]) -> list[Instruction]:
    """``items`` as a list of instructions; ``TypeError`` naming the first foreign item."""
    out: list[Instruction] = []
    for i, item in enumerate(items):
        if not isinstance(
            item, Say | Play | Pause | Gather | Record | Dial | Conference | Redirect | Hangup
        ):
            raise TypeError(
                f"instruction {i}: expected one of Say, Play, Pause, Gather, Record, Dial, "
                f"Conference, Redirect, Hangup; got {type(item).__name__}"
            )
        out.append(item)
    return out


def fill_actions(instructions: Sequence[Instruction], input_url: str) -> list[Instruction]:
    """Copies of ``instructions`` whose empty Gather/Record ``action`` is ``input_url``."""
    out: list[Instruction] = []
    for item in instructions:
        if isinstance(item, Gather | Record) and not item.action:
            out.append(dataclasses.replace(item, action=input_url))
        else:
            out.append(item)
    return out

"""A loaded flow as pure data: what ``loader.py`` builds from YAML and the engine runs.

Nothing here parses, renders or runs. Every node keeps the :class:`Pos` it came from, so
checks that happen after loading still report ``file:line:col``.

Verbs: each step has one main verb (:data:`Verb`), a frozen dataclass whose ``keyword`` is
the YAML key that introduces it (:data:`VerbKeyword`) and whose ``voice_only`` says whether
only a call can carry it out. Code that treats verbs differently matches on :data:`Verb`
(or one of the narrower unions below) and ends with ``case _: assert_never(verb)``, so
mypy names every place a new verb must be handled.

Texts: a :class:`Text` holds Jinja2 template sources, per language (``by_lang``), or one
source for every language (``any``), optionally different per channel (``by_channel``),
or, for voice prompts that mix languages, an ordered list of ``(lang, source)`` segments
(``mixed``). :meth:`Text.pick` chooses the source for a language and channel, falling back
to the flow's default language.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, assert_never, get_args

EXPECT_KINDS = (
    "yes_no",
    "number",
    "digits",
    "date",
    "time",
    "choice",
    "email",
    "text",
    "regex",
    "media",
)
ExpectKind = Literal[
    "yes_no", "number", "digits", "date", "time", "choice", "email", "text", "regex", "media"
]

BUILTIN_ACTIONS = ("opt_out", "opt_in", "clear_slots")

VerbKeyword = Literal["say", "ask", "choose", "handoff", "dial", "record", "conference", "hangup"]


@dataclass(frozen=True, slots=True)
class Pos:
    """Where a node stands in its file; ``line`` and ``col`` are 1-based."""

    file: str
    line: int = 1
    col: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True, slots=True)
class Text:
    """A (possibly translated, possibly per-channel) template source. See module docstring."""

    pos: Pos
    any: str | None = None
    by_lang: Mapping[str, str] = field(default_factory=dict)
    by_channel: Mapping[str, Text] = field(default_factory=dict)
    mixed: tuple[tuple[str, str], ...] = ()

    def pick(self, lang: str, default_lang: str, channel: str = "sms") -> str | None:
        """The template source for ``lang`` on ``channel``; falls back to ``default_lang``.

        For a mixed-language text, the segments are joined with a space (SMS); voice
        renders ``mixed`` segment by segment instead.
        """
        if channel in self.by_channel:
            return self.by_channel[channel].pick(lang, default_lang, channel)
        if self.by_channel:
            other = next(iter(self.by_channel.values()))
            return other.pick(lang, default_lang, channel)
        if self.any is not None:
            return self.any
        if lang in self.by_lang:
            return self.by_lang[lang]
        if default_lang in self.by_lang:
            return self.by_lang[default_lang]
        if self.mixed:
            return " ".join(source for _, source in self.mixed)
        return next(iter(self.by_lang.values()), None)

    def sources(self) -> list[tuple[str | None, str]]:
        """Every ``(lang or None, source)`` in this text, for validation."""
        out: list[tuple[str | None, str]] = []
        if self.any is not None:
            out.append((None, self.any))
        out.extend(self.by_lang.items())
        out.extend(self.mixed)
        for sub in self.by_channel.values():
            out.extend(sub.sources())
        return out


@dataclass(frozen=True, slots=True)
class Expect:
    """How an answer is understood. ``pattern`` for ``regex``; ``choices`` for ``choice``
    (each choice: a value and the words, per language, that select it); ``types`` for
    ``media`` (content types such as ``image/*`` the media must have; empty: any media)."""

    kind: ExpectKind
    pos: Pos
    pattern: str | None = None
    choices: tuple[Choice, ...] = ()
    min: float | None = None
    max: float | None = None
    digits: int | None = None  # exact number of digits for ``digits``
    types: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Choice:
    value: str
    words: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Branch:
    """One entry of ``then``: go to ``goto`` if ``condition`` (a sandboxed Jinja2
    expression) is true, or unconditionally when ``condition`` is None."""

    goto: str
    pos: Pos
    condition: str | None = None


@dataclass(frozen=True, slots=True)
class HookCall:
    """A ``do:`` entry: a built-in action (:data:`BUILTIN_ACTIONS`) or a bot hook name."""

    name: str
    pos: Pos

    @property
    def builtin(self) -> bool:
        return self.name in BUILTIN_ACTIONS


@dataclass(frozen=True, slots=True)
class Retry:
    """What happens on unusable answers and silence, shared by ``ask`` and ``choose``."""

    reprompt: tuple[Text, ...] = ()
    max_attempts: int | None = None
    on_max_attempts: str | None = None
    timeout: float | None = None  # seconds; durable (kept in the store)
    on_timeout: str | None = None
    gather_timeout: float | None = None  # voice: seconds of silence before no-input


@dataclass(frozen=True, slots=True)
class Say:
    keyword: ClassVar[VerbKeyword] = "say"
    voice_only: ClassVar[bool] = False

    text: Text
    pos: Pos


@dataclass(frozen=True, slots=True)
class Ask:
    keyword: ClassVar[VerbKeyword] = "ask"
    voice_only: ClassVar[bool] = False

    text: Text
    expect: Expect
    pos: Pos
    save_as: str | None = None
    validate: str | None = None  # bot hook name
    invalid: Text | None = None  # said when the validator refuses (else the next reprompt)
    retry: Retry = field(default_factory=Retry)


@dataclass(frozen=True, slots=True)
class Option:
    """A menu entry: a key (SMS reply or DTMF digit) and/or words per language."""

    pos: Pos
    key: str | None = None
    words: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    goto: str | None = None
    set_lang: str | None = None
    save_as_value: str | None = None


@dataclass(frozen=True, slots=True)
class Choose:
    keyword: ClassVar[VerbKeyword] = "choose"
    voice_only: ClassVar[bool] = False

    text: Text
    options: tuple[Option, ...]
    pos: Pos
    save_as: str | None = None  # slot that receives the chosen option's key
    retry: Retry = field(default_factory=Retry)


@dataclass(frozen=True, slots=True)
class Handoff:
    """Hand the conversation to a person: ``queue`` names where; ``number`` is dialled on a
    call (else the configured queue number)."""

    keyword: ClassVar[VerbKeyword] = "handoff"
    voice_only: ClassVar[bool] = False

    queue: str
    pos: Pos
    say: Text | None = None
    number: str | None = None


@dataclass(frozen=True, slots=True)
class Dial:
    keyword: ClassVar[VerbKeyword] = "dial"
    voice_only: ClassVar[bool] = True

    to: str  # template: E.164 number or sip: URI
    pos: Pos
    timeout: float = 30.0
    on_fail: str | None = None
    caller_id: str | None = None
    time_limit: float | None = None
    text: Text | None = None  # said before dialling
    record: bool = False  # record the bridged call (needs consent, like a record step)
    consent: Text | bool = False  # the GDPR notice said first, or True: asked elsewhere
    tts_language: str | None = None  # TTS locale of the step's texts and the dialled leg


@dataclass(frozen=True, slots=True)
class Record:
    keyword: ClassVar[VerbKeyword] = "record"
    voice_only: ClassVar[bool] = True

    text: Text
    pos: Pos
    consent: Text | bool = False
    save_as: str | None = None
    max: float = 120.0
    finish_on_key: str = "#"
    beep: bool = True


@dataclass(frozen=True, slots=True)
class Conference:
    keyword: ClassVar[VerbKeyword] = "conference"
    voice_only: ClassVar[bool] = True

    room: str  # template
    pos: Pos
    record: bool = False
    text: Text | None = None
    start_on_enter: bool = True
    end_on_exit: bool = False
    muted: bool = False


@dataclass(frozen=True, slots=True)
class Hangup:
    keyword: ClassVar[VerbKeyword] = "hangup"
    voice_only: ClassVar[bool] = True

    pos: Pos
    text: Text | None = None


Verb = Say | Ask | Choose | Handoff | Dial | Record | Conference | Hangup
#: Verbs that stop a turn to wait for the contact's answer.
WaitingVerb = Ask | Choose
#: Verbs a call carries out itself (a handoff on a call dials the queue's number).
CallVerb = Dial | Record | Conference | Hangup | Handoff
VERBS: tuple[type[Verb], ...] = get_args(Verb)
VOICE_ONLY_VERBS = tuple(v for v in VERBS if v.voice_only)


@dataclass(frozen=True, slots=True)
class Step:
    """One step: a main verb (or none), then actions, then where to go."""

    name: str
    pos: Pos
    verb: Verb | None = None
    do: tuple[HookCall, ...] = ()
    then: tuple[Branch, ...] = ()  # a plain ``goto: x`` is one unconditional Branch
    end: bool = False
    media: tuple[str, ...] = ()  # MMS attachments (URL templates)

    @property
    def waits(self) -> bool:
        """True when the step stops the turn to wait for the contact's answer."""
        return isinstance(self.verb, WaitingVerb)

    @property
    def stops(self) -> bool:
        """True when the verb itself settles what comes next, so the step needs no
        ``then`` or ``end``: it waits, hands the conversation to a person or hangs up."""
        verb = self.verb
        match verb:
            case Ask() | Choose() | Handoff() | Hangup():
                return True
            case Say() | Dial() | Record() | Conference() | None:
                return False
            case _:
                assert_never(verb)

    def texts(self) -> Iterator[tuple[str, Text]]:
        """``(where, text)`` for every text the step's verb can say, ``where`` naming it
        inside the step (``ask.reprompt[0]``), in the order they can be said."""
        verb = self.verb
        match verb:
            case Say():
                yield "say", verb.text
            case Ask() | Choose():
                yield f"{verb.keyword}.text", verb.text
                for j, reprompt in enumerate(verb.retry.reprompt):
                    yield f"{verb.keyword}.reprompt[{j}]", reprompt
                if isinstance(verb, Ask) and verb.invalid is not None:
                    yield "ask.invalid", verb.invalid
            case Handoff() | Dial() | Conference() | Hangup():
                if isinstance(verb, Dial) and isinstance(verb.consent, Text):
                    yield "dial.consent", verb.consent
                said = verb.say if isinstance(verb, Handoff) else verb.text
                if said is not None:
                    yield f"{verb.keyword}.say", said
            case Record():
                if isinstance(verb.consent, Text):
                    yield "record.consent", verb.consent
                yield "record.text", verb.text
            case None:
                pass
            case _:
                assert_never(verb)

    def targets(self) -> list[tuple[str, Pos]]:
        """Every step name this step can lead to, for reachability and the machine."""
        out: list[tuple[str, Pos]] = [(b.goto, b.pos) for b in self.then]
        verb = self.verb
        match verb:
            case Ask() | Choose():
                r = verb.retry
                if r.on_max_attempts:
                    out.append((r.on_max_attempts, verb.pos))
                if r.on_timeout:
                    out.append((r.on_timeout, verb.pos))
                if isinstance(verb, Choose):
                    out.extend((o.goto, o.pos) for o in verb.options if o.goto)
            case Dial():
                if verb.on_fail:
                    out.append((verb.on_fail, verb.pos))
            case Say() | Handoff() | Record() | Conference() | Hangup() | None:
                pass
            case _:
                assert_never(verb)
        return out


@dataclass(frozen=True, slots=True)
class Anytime:
    """A handler checked on every user turn before the step's own handling."""

    pos: Pos
    keywords: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    pattern: str | None = None  # regex alternative to keywords
    do: tuple[HookCall, ...] = ()
    say: Text | None = None
    goto: str | None = None


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    pos: Pos
    required: bool = False
    type: str = "text"  # text | number | date | phone | bool
    default: Any = None
    example: Any = None  # used by `convo chat` when the param is not given


@dataclass(frozen=True, slots=True)
class VoiceLang:
    """TTS settings for one flow language; ``fallbacks`` are tried in order when a provider
    lacks ``locale`` (e.g. fr-BE -> fr-FR)."""

    locale: str
    voice: str | None = None
    fallbacks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FlowSpec:
    """A whole flow file. ``version`` is a content hash: sessions remember which version
    they started on. ``renamed`` (old step name -> a step of this version) is None unless
    the file declares ``renamed:``, which moves conversations running on an older version
    of the flow to this one (:mod:`convo.flow.versions`)."""

    id: str
    path: str
    version: str
    languages: tuple[str, ...]
    channels: tuple[str, ...]
    start: str
    steps: Mapping[str, Step]
    pos: Pos
    description: str = ""
    params: Mapping[str, Param] = field(default_factory=dict)
    anytime: tuple[Anytime, ...] = ()
    voice: Mapping[str, VoiceLang] = field(default_factory=dict)
    error_text: Text | None = None  # said when a hook raises; convo has a default
    # Every slot the flow can hold (save_as names and the `slots:` list): templates may use
    # them by name before they are set, when they are None (and render as nothing).
    slot_names: tuple[str, ...] = ()
    renamed: Mapping[str, str] | None = None
    # Whether a turn needs the contact's record (name, time zone, fields): its templates
    # or hooks use them. When not, the engine skips reading it on every turn.
    reads_contact: bool = True
    # The file's text as loaded (its hash is ``version``): kept in the store so that a
    # conversation on this version can continue on it after a restart.
    source: str = field(default="", repr=False, compare=False)

    @property
    def default_lang(self) -> str:
        return self.languages[0]

    def language_for(self, lang: str | None) -> str:
        """The flow language to speak to someone whose language is ``lang``: the same one,
        else one with its primary subtag (a contact's ``nl-BE`` in a flow of ``nl``), else
        the default."""
        if lang is None or lang in self.languages:
            return lang or self.default_lang
        primary = lang.replace("_", "-").split("-")[0].lower()
        for candidate in self.languages:
            if candidate.split("-")[0].lower() == primary:
                return candidate
        return self.default_lang

    def hook_names(self) -> list[tuple[str, Pos]]:
        """Every bot hook the flow calls (``do:`` and ``validate:``), built-ins excluded."""
        out: list[tuple[str, Pos]] = []
        calls = [c for s in self.steps.values() for c in s.do]
        calls += [c for a in self.anytime for c in a.do]
        out += [(c.name, c.pos) for c in calls if not c.builtin]
        out += [
            (s.verb.validate, s.verb.pos)
            for s in self.steps.values()
            if isinstance(s.verb, Ask) and s.verb.validate
        ]
        return out

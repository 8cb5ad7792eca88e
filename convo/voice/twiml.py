"""Telefoon Voice call documents: neutral instructions -> TwiML-style XML or a JSON list.

Telefoon only says a call-flow webhook returns "XML or JSON"; we assume TwiML's verbs and
attribute names, and a JSON form carrying the same instructions as a list of objects. Both
forms come from one intermediate tree of :class:`Node` values, so they can never disagree::

    [Say, Gather(prompts=[Say])]  --to_nodes-->  [Node("Say"), Node("Gather", children=...)]
        --render_xml-->  <Response><Say ..>..</Say><Gather ..><Say ..>..</Say></Gather></Response>
        --render_json--> [{"verb": "Say", "text": ..}, {"verb": "Gather", .., "children": [..]}]

Safety: XML is built with ``xml.etree.ElementTree``, which escapes ``< > & "`` in text and
attributes; characters XML 1.0 cannot carry at all (NUL, most C0 controls, lone surrogates)
are dropped, so whatever a caller said or a slot holds stays text and the document stays
well-formed. Never build these documents with string formatting.

Seconds are rendered as whole seconds (rounded up), as TwiML expects. A neutral
``Conference`` renders as ``<Dial><Conference>room</Conference></Dial>``, as in TwiML.

Where the two dialects differ (:data:`Dialect`) is the Dial's recording and language:
Twilio's ``<Dial record="record-from-answer">`` takes no TTS language (the Says around it
carry theirs); Telefoon's Dial takes the names and types its call resource has
(``POST /calls``: ``record`` a boolean, ``tts_language`` a locale), so a recorded dial
there is ``<Dial record="true" tts_language="nl-NL">``.

:func:`check_limits` checks a provider's limits (:class:`Limits`) before rendering and
raises :class:`RenderError` naming the instruction index, the limit and the value. The
document states no limits except the TTS languages; the other defaults are TwiML's
published limits, which we assume until Telefoon says otherwise.
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from convo.exceptions import ConvoError
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
    fill_actions,
)
from convo.voice.locales import localize

XML_CONTENT_TYPE = "application/xml; charset=utf-8"
JSON_CONTENT_TYPE = "application/json"

# Characters outside XML 1.0's Char production: no escape can carry them.
_NOT_XML_CHAR = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_E164 = re.compile(r"\+[1-9]\d{6,14}")
# JSON key holding a node's text, per verb (XML keeps it as the element's text).
_BODY_KEY = {
    "Say": "text",
    "Play": "url",
    "Redirect": "url",
    "Number": "number",
    "Sip": "uri",
    "Conference": "name",
}

AttrValue = str | int | bool
#: Whose spelling of the Dial's ``record`` / TTS language a document uses (module docstring).
Dialect = Literal["twilio", "telefoon"]


class RenderError(ConvoError):
    """Instructions a provider cannot carry out; ``index`` is the offending instruction."""

    def __init__(self, message: str, *, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


@dataclass(frozen=True, slots=True)
class Node:
    """One element of a call document: ``verb`` (tag), attributes, text, children."""

    verb: str
    attrs: Mapping[str, AttrValue] = field(default_factory=dict)
    text: str = ""
    children: tuple[Node, ...] = ()

    def get(self, name: str) -> str | None:
        """Attribute ``name`` in its XML spelling (``true``, ``5``), or None."""
        value = self.attrs.get(name)
        return None if value is None else _attr_text(value)


@dataclass(frozen=True, slots=True)
class Limits:
    """What a provider accepts. Ranges are inclusive; seconds are whole after rounding up.

    ``languages`` empty means any TTS locale is accepted.
    """

    languages: frozenset[str] = frozenset()
    max_say_chars: int = 4096
    max_loop: int = 10
    max_num_digits: int = 32
    gather_timeout: tuple[int, int] = (1, 60)
    max_hints: int = 100
    pause_seconds: tuple[int, int] = (1, 300)
    record_max_length: tuple[int, int] = (1, 14400)
    record_silence_timeout: tuple[int, int] = (1, 60)
    dial_timeout: tuple[int, int] = (5, 600)
    dial_time_limit: tuple[int, int] = (1, 14400)
    max_instructions: int = 100


def _seconds(value: float) -> int:
    return math.ceil(value)


def _attr_text(value: AttrValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _say_node(say: Say) -> Node:
    attrs: dict[str, AttrValue] = {}
    if say.language:
        attrs["language"] = say.language
    if say.voice:
        attrs["voice"] = say.voice
    if say.loop != 1:
        attrs["loop"] = say.loop
    return Node("Say", attrs, say.text)


def _prompt_node(prompt: Say | Play | Pause) -> Node:
    if isinstance(prompt, Say):
        return _say_node(prompt)
    if isinstance(prompt, Play):
        return Node("Play", {"loop": prompt.loop} if prompt.loop != 1 else {}, prompt.url)
    return Node("Pause", {"length": _seconds(prompt.seconds)})


def _action(url: str) -> dict[str, AttrValue]:
    return {"action": url, "method": "POST"} if url else {}


def _dial_node(item: Dial, dialect: Dialect) -> Node:
    attrs: dict[str, AttrValue] = {**_action(item.action), "timeout": _seconds(item.timeout)}
    if item.caller_id:
        attrs["callerId"] = item.caller_id
    if item.time_limit is not None:
        attrs["timeLimit"] = item.time_limit
    if dialect == "telefoon":
        if item.record:
            attrs["record"] = True
        if item.language:
            attrs["tts_language"] = item.language
    elif item.record:
        attrs["record"] = "record-from-answer"
    target = Node("Sip" if item.is_sip else "Number", {}, item.target)
    return Node("Dial", attrs, children=(target,))


def _node(item: Instruction, dialect: Dialect) -> Node:
    """The document node for one instruction (TwiML verbs and attribute names)."""
    if isinstance(item, Say | Play | Pause):
        return _prompt_node(item)
    if isinstance(item, Gather):
        attrs: dict[str, AttrValue] = {
            "input": " ".join(sorted(item.input)),
            **_action(item.action),
        }
        if item.num_digits is not None:
            attrs["numDigits"] = item.num_digits
        attrs["finishOnKey"] = item.finish_on_key
        attrs["timeout"] = _seconds(item.timeout)
        if "speech" in item.input and item.speech_language:
            attrs["language"] = item.speech_language
        if "speech" in item.input and item.hints:
            attrs["hints"] = ",".join(item.hints)
        return Node("Gather", attrs, children=tuple(_prompt_node(p) for p in item.prompts))
    if isinstance(item, Record):
        return Node(
            "Record",
            {
                **_action(item.action),
                "maxLength": item.max_length,
                "finishOnKey": item.finish_on_key,
                "playBeep": item.beep,
                "timeout": _seconds(item.silence_timeout),
            },
        )
    if isinstance(item, Dial):
        return _dial_node(item, dialect)
    if isinstance(item, Conference):
        room = Node(
            "Conference",
            {
                "startConferenceOnEnter": item.start_on_enter,
                "endConferenceOnExit": item.end_on_exit,
                "muted": item.muted,
                "record": "record-from-start" if item.record else "do-not-record",
            },
            item.room,
        )
        return Node("Dial", {}, children=(room,))
    if isinstance(item, Redirect):
        return Node("Redirect", {"method": "POST"}, item.url)
    if isinstance(item, Hangup):
        return Node("Hangup")
    raise TypeError(f"not a call instruction: {type(item).__name__}")  # pragma: no cover


def to_nodes(instructions: Sequence[object], dialect: Dialect = "telefoon") -> list[Node]:
    """The document tree for ``instructions``; ``TypeError`` on a foreign item."""
    return [_node(item, dialect) for item in ensure_instructions(instructions)]


def _xml_safe(text: str) -> str:
    return _NOT_XML_CHAR.sub("", text)


def _element(node: Node) -> ET.Element:
    element = ET.Element(node.verb, {k: _xml_safe(_attr_text(v)) for k, v in node.attrs.items()})
    if node.text:
        element.text = _xml_safe(node.text)
    element.extend(_element(child) for child in node.children)
    return element


def render_xml(instructions: Sequence[object], dialect: Dialect = "telefoon") -> bytes:
    """``<Response>`` document (UTF-8, with XML declaration) for ``instructions``."""
    root = ET.Element("Response")
    root.extend(_element(node) for node in to_nodes(instructions, dialect))
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


def _json_node(node: Node) -> dict[str, Any]:
    obj: dict[str, Any] = {"verb": node.verb, **node.attrs}
    if node.text:
        obj[_BODY_KEY.get(node.verb, "text")] = node.text
    if node.children:
        obj["children"] = [_json_node(child) for child in node.children]
    return obj


def render_json(instructions: Sequence[object], dialect: Dialect = "telefoon") -> bytes:
    """The JSON form: a list of ``{"verb": ..., attributes..., body key, "children"}``."""
    doc = [_json_node(node) for node in to_nodes(instructions, dialect)]
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def _from_element(element: ET.Element) -> Node:
    return Node(
        element.tag,
        dict(element.attrib),
        (element.text or "").strip() if len(element) else (element.text or ""),
        tuple(_from_element(child) for child in element),
    )


def _from_json(obj: object, where: str) -> Node:
    if not isinstance(obj, dict) or not isinstance(obj.get("verb"), str):
        raise ValueError(f"{where}: expected an object with a string 'verb'")
    verb = obj["verb"]
    body_key = _BODY_KEY.get(verb, "text")
    children = obj.get("children", [])
    if not isinstance(children, list):
        raise ValueError(f"{where}: 'children' must be a list")
    attrs = {
        k: v
        for k, v in obj.items()
        if k not in ("verb", "children", body_key) and isinstance(v, str | int | bool)
    }
    return Node(
        verb,
        attrs,
        str(obj.get(body_key, "")),
        tuple(_from_json(c, f"{where}.children[{i}]") for i, c in enumerate(children)),
    )


def parse_document(body: bytes, content_type: str) -> list[Node]:
    """Read a call document back (XML ``<Response>`` or the JSON list) into nodes.

    For simulators and tests. Raises ``ValueError`` saying what is wrong.
    """
    if "json" in content_type.lower():
        try:
            doc = json.loads(body)
        except ValueError as exc:
            raise ValueError(f"call document is not valid JSON: {exc}") from None
        if not isinstance(doc, list):
            raise ValueError("JSON call document must be a list of instructions")
        return [_from_json(obj, f"[{i}]") for i, obj in enumerate(doc)]
    try:
        # Only documents convo rendered itself are parsed here (simulator, tests), and
        # expat >= 2.4 bounds entity expansion.
        root = ET.fromstring(body)  # noqa: S314
    except ET.ParseError as exc:
        raise ValueError(f"call document is not well-formed XML: {exc}") from None
    if root.tag != "Response":
        raise ValueError(f"call document root is <{root.tag}>, expected <Response>")
    return [_from_element(child) for child in root]


def _in_range(value: float, bounds: tuple[int, int]) -> bool:
    return bounds[0] <= _seconds(value) <= bounds[1]


def _check_say(say: Say, limits: Limits, fail: Callable[[str], None]) -> None:
    if len(say.text) > limits.max_say_chars:
        fail(f"Say text is {len(say.text)} characters; at most {limits.max_say_chars} allowed")
    if say.loop > limits.max_loop:
        fail(f"Say loop is {say.loop}; at most {limits.max_loop} allowed")
    if say.language and limits.languages and say.language not in limits.languages:
        fail(
            f"Say language {say.language!r} is not supported; "
            f"supported: {', '.join(sorted(limits.languages))}"
        )


def _check_one(item: Instruction, limits: Limits, fail: Callable[[str], None]) -> None:
    if isinstance(item, Say):
        _check_say(item, limits, fail)
    elif isinstance(item, Play) and item.loop > limits.max_loop:
        fail(f"Play loop is {item.loop}; at most {limits.max_loop} allowed")
    elif isinstance(item, Pause) and not _in_range(item.seconds, limits.pause_seconds):
        lo, hi = limits.pause_seconds
        fail(f"Pause of {item.seconds} s is outside {lo}..{hi} s")
    elif isinstance(item, Gather):
        if item.num_digits is not None and item.num_digits > limits.max_num_digits:
            fail(f"Gather numDigits is {item.num_digits}; allowed 1..{limits.max_num_digits}")
        if not _in_range(item.timeout, limits.gather_timeout):
            lo, hi = limits.gather_timeout
            fail(f"Gather timeout of {item.timeout} s is outside {lo}..{hi} s")
        if len(item.hints) > limits.max_hints:
            fail(f"Gather has {len(item.hints)} hints; at most {limits.max_hints} allowed")
        if any("," in hint for hint in item.hints):
            fail("Gather hints may not contain ',' (the document separates hints with commas)")
        speech = item.speech_language if "speech" in item.input else ""
        if speech and limits.languages and speech not in limits.languages:
            fail(f"Gather speech language {speech!r} is not supported")
        for i, prompt in enumerate(item.prompts):

            def fail_prompt(message: str, i: int = i) -> None:
                fail(f"prompt {i} ({type(item.prompts[i]).__name__}): {message}")

            _check_one(prompt, limits, fail_prompt)
    elif isinstance(item, Record):
        if not _in_range(item.max_length, limits.record_max_length):
            lo, hi = limits.record_max_length
            fail(f"Record maxLength of {item.max_length} s is outside {lo}..{hi} s")
        if not _in_range(item.silence_timeout, limits.record_silence_timeout):
            lo, hi = limits.record_silence_timeout
            fail(f"Record silence timeout of {item.silence_timeout} s is outside {lo}..{hi} s")
    elif isinstance(item, Dial):
        if not item.is_sip and not _E164.fullmatch(item.target):
            fail(f"Dial target {item.target!r} is neither an E.164 number nor a sip: URI")
        if item.caller_id and not _E164.fullmatch(item.caller_id):
            fail(f"Dial callerId {item.caller_id!r} is not an E.164 number")
        if not _in_range(item.timeout, limits.dial_timeout):
            lo, hi = limits.dial_timeout
            fail(f"Dial timeout of {item.timeout} s is outside {lo}..{hi} s")
        if item.time_limit is not None and not _in_range(item.time_limit, limits.dial_time_limit):
            lo, hi = limits.dial_time_limit
            fail(f"Dial timeLimit of {item.time_limit} s is outside {lo}..{hi} s")


def check_limits(instructions: Sequence[object], limits: Limits) -> None:
    """Raise :class:`RenderError` at the first instruction ``limits`` forbid.

    The message reads ``instruction N (Verb): what is wrong; what is allowed``.
    """
    items = ensure_instructions(instructions)
    if len(items) > limits.max_instructions:
        raise RenderError(
            f"{len(items)} instructions in one document; at most {limits.max_instructions}"
        )
    for index, item in enumerate(items):

        def fail(message: str, index: int = index, verb: str = type(item).__name__) -> None:
            raise RenderError(f"instruction {index} ({verb}): {message}", index=index)

        _check_one(item, limits, fail)


def prepare(
    instructions: Sequence[object],
    *,
    provider: str,
    input_url: str,
    supported: Collection[str],
    fallbacks: Mapping[str, Sequence[str]],
    limits: Limits,
) -> list[Instruction]:
    """The instructions as a provider will render them: empty Gather/Record actions set to
    ``input_url`` (when known), locales resolved to ``supported`` ones
    (:func:`convo.voice.locales.localize`; a replaced one kept in ``requested_language``),
    ``limits`` checked. Raises :class:`RenderError` naming ``provider`` and what is wrong."""
    try:
        items = ensure_instructions(instructions)
    except TypeError as exc:
        raise RenderError(str(exc)) from None
    if input_url:
        items = fill_actions(items, input_url)
    try:
        items = localize(items, supported, fallbacks)
    except ValueError as exc:
        raise RenderError(f"{provider}: {exc}") from None
    check_limits(items, limits)
    return items

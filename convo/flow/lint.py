"""Warnings about SMS cost that a flow file can only hint at: long and UCS-2 texts.

A text's length is only known once rendered, so this estimates from the template source:
each ``{{ ... }}`` counts as ten GSM characters (a name, a date) and ``{% ... %}`` tags count
as nothing. Characters written in the source that are not in the GSM 03.38 alphabet are
exact: one of them makes the whole message UCS-2, with 70 characters per part instead of 160.

:func:`provider_part_warnings` asks a provider that counts texts itself
(:class:`CountsParts`: Proximus Enco's ``/length``) about every estimated text instead:
``convo validate --provider NAME``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Protocol, runtime_checkable

from convo.exceptions import Diagnostic, ProviderError
from convo.flow.spec import FlowSpec, Text
from convo.sms.segments import analyze, non_gsm_chars

_EXPRESSION = re.compile(r"\{\{.*?\}\}", re.DOTALL)
_TAG_OR_COMMENT = re.compile(r"\{%.*?%\}|\{#.*?#\}", re.DOTALL)
PLACEHOLDER = "x" * 10


def sms_texts(spec: FlowSpec) -> Iterator[tuple[str, Text]]:
    """``(where, text)`` for every text that can be sent by SMS."""
    if spec.error_text is not None:
        yield "error_text", spec.error_text
    for i, handler in enumerate(spec.anytime):
        if handler.say is not None:
            yield f"anytime[{i}].say", handler.say
    for name, step in spec.steps.items():
        if step.verb is not None and step.verb.voice_only:
            # Written for calls; a flow serving both channels says them by SMS too, but they
            # are not estimated as SMS.
            continue
        for where, text in step.texts():
            yield f"steps.{name}.{where}", text


def estimate(source: str) -> str:
    """The source with template code replaced by what it typically renders to."""
    return _EXPRESSION.sub(PLACEHOLDER, _TAG_OR_COMMENT.sub("", source))


def sms_warnings(spec: FlowSpec, *, max_parts: int = 3) -> list[Diagnostic]:
    """A warning per text (and language) that renders to more than ``max_parts`` SMS
    parts, or that a single character forces into UCS-2. Voice-only flows get none."""
    if "sms" not in spec.channels:
        return []
    out: list[Diagnostic] = []
    for where, text in sms_texts(spec):
        sms = text.by_channel.get("sms", text) if text.by_channel else text
        for lang, source in sms.sources():
            label = f"{where}{f' ({lang})' if lang else ''}"
            pos = text.pos
            forcing = non_gsm_chars(_TAG_OR_COMMENT.sub("", _EXPRESSION.sub("", source)))
            if forcing:
                chars = " ".join(repr(c) for c in forcing)
                out.append(
                    Diagnostic(
                        pos.file,
                        pos.line,
                        pos.col,
                        f"{label}: {chars} not in the GSM alphabet: the SMS is sent as "
                        "UCS-2 (70 characters per part instead of 160)",
                        hint="replace the character if a GSM one will do",
                        severity="warning",
                    )
                )
            parts = analyze(estimate(source)).parts
            if parts > max_parts:
                out.append(
                    Diagnostic(
                        pos.file,
                        pos.line,
                        pos.col,
                        f"{label}: renders to about {parts} SMS parts (more than {max_parts})",
                        hint="shorten it, or raise --max-parts",
                        severity="warning",
                    )
                )
    return out


@runtime_checkable
class CountsParts(Protocol):
    """A provider that says how many parts it bills a text as (Enco's
    ``POST /sms/outboundmessages/length``); ``force_character_limit``: it refuses a text of
    more than one part."""

    name: str
    force_character_limit: bool

    async def message_length(self, text: str) -> Mapping[str, int]:
        """The provider's count; ``numberOfParts`` is the number of parts."""


async def provider_part_warnings(
    spec: FlowSpec, provider: CountsParts, *, max_parts: int = 3
) -> tuple[list[Diagnostic], int]:
    """Ask ``provider`` about every SMS text of ``spec`` (estimated as :func:`estimate`
    says, each distinct text once); returns the diagnostics and how many texts were asked.

    An error when the provider refuses the text (``force_character_limit`` and more than one
    part); a warning when its count differs from convo's or exceeds ``max_parts``. Raises
    the ``ProviderError`` tree when the provider cannot be asked."""
    if "sms" not in spec.channels:
        return [], 0
    counted: dict[str, int] = {}
    out: list[Diagnostic] = []
    for where, text in sms_texts(spec):
        sms = text.by_channel.get("sms", text) if text.by_channel else text
        for lang, source in sms.sources():
            label = f"{where}{f' ({lang})' if lang else ''}"
            estimated = estimate(source)
            if not estimated:
                continue
            if estimated not in counted:
                parts = (await provider.message_length(estimated)).get("numberOfParts")
                if parts is None:
                    raise ProviderError(f"{provider.name}: its length answer has no numberOfParts")
                counted[estimated] = parts
            theirs, ours = counted[estimated], analyze(estimated).parts
            about = "about " if estimated != source else ""
            found: list[tuple[str, str, str]] = []  # (message, hint, severity)
            if provider.force_character_limit and theirs > 1:
                found.append(
                    (
                        f"{label}: {provider.name} counts {about}{theirs} SMS parts and refuses "
                        "more than one (force_character_limit)",
                        "shorten it, or turn force_character_limit off",
                        "error",
                    )
                )
            elif theirs > max_parts:
                found.append(
                    (
                        f"{label}: {provider.name} counts {about}{theirs} SMS parts "
                        f"(more than {max_parts})",
                        "shorten it, or raise --max-parts",
                        "warning",
                    )
                )
            if theirs != ours:
                found.append(
                    (
                        f"{label}: {provider.name} counts {about}{theirs} SMS part(s) where "
                        f"convo counts {ours}: {provider.name}'s count is billed",
                        "extension characters such as € count differently on some networks",
                        "warning",
                    )
                )
            pos = text.pos
            out += [Diagnostic(pos.file, pos.line, pos.col, *item) for item in found]
    return out, len(counted)

"""What the bot says: flow texts rendered into :class:`Utterance` values for one session.

A :class:`Speaker` renders a step's :class:`~convo.flow.spec.Text` for the session's current
language and channel (falling back to the flow's default language), with the session's
render context: every slot by its own name, plus ``contact``, ``params``, ``slots``,
``lang`` and ``answer`` (the reply the turn handles: ``answer.text`` and ``answer.media``, a
list of :class:`~convo.media.Media`; empty outside a reply). On a call, a mixed-language
text is also rendered segment by segment, so the voice layer can speak each segment in its
own language. Step media URLs are templates too.

Contracts: rendering is a pure function of the session as it is at the time of the call (the
language may change during a turn); a template or ``then: - if:`` expression that fails raises
``FlowRuntimeError`` (from :mod:`convo.flow.templates`). :func:`error_text`, the text said
when a turn fails, never raises.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from convo.flow.outputs import Utterance
from convo.flow.spec import FlowSpec, Step, Text
from convo.flow.templates import TEMPLATES
from convo.models import Contact, Session

log = logging.getLogger("convo.engine")

DEFAULT_ERROR_TEXT = {
    "en": "Sorry, something went wrong on our side. Please try again later.",
    "nl": "Sorry, er ging bij ons iets mis. Probeer het later opnieuw.",
    "fr": "Désolé, une erreur s'est produite de notre côté. Veuillez réessayer plus tard.",
    "de": "Entschuldigung, bei uns ist etwas schiefgelaufen. Bitte versuchen Sie es später.",
}

#: ``answer`` outside a reply (a timer, the start of a conversation).
NO_ANSWER: dict[str, Any] = {"text": "", "media": []}

Segments = tuple[tuple[str, str], ...]  # rendered (lang, text) parts of a mixed-language text


class Speaker:
    """Renders the texts of flow ``spec`` for ``session`` (read, never changed) and
    ``contact``; the channel is the session's."""

    def __init__(self, spec: FlowSpec, session: Session, contact: Contact) -> None:
        self.spec = spec
        self.session = session
        self.contact = contact
        self.channel = session.key.channel
        self.answer: dict[str, Any] = NO_ANSWER  # set by the turn when it handles a reply

    def context(self) -> dict[str, Any]:
        """The render context: ``answer``, then the slots by name (a declared slot not
        set yet is None; a slot named ``answer`` hides the reply), then ``contact``,
        ``params``, ``slots`` and ``lang`` (which win over slots of the same name)."""
        s = self.session
        contact = {
            "number": self.contact.number,
            "lang": s.lang,
            "name": self.contact.name or s.contact_name,
            "timezone": self.contact.timezone,
            "fields": self.contact.fields,
        }
        unset = dict.fromkeys(self.spec.slot_names)
        return {
            "answer": self.answer,
            **unset,
            **s.slots,
            "contact": contact,
            "params": s.params,
            "slots": s.slots,
            "lang": s.lang,
        }

    def render(self, source: str) -> str:
        """Render template ``source``; raises ``FlowRuntimeError`` when it fails."""
        return TEMPLATES.render(source, self.context())

    def evaluate(self, expression: str) -> Any:
        """Evaluate a condition; raises ``FlowRuntimeError`` when it fails."""
        return TEMPLATES.evaluate(expression, self.context())

    def media(self, step: Step) -> tuple[str, ...]:
        """The step's rendered media URLs."""
        return tuple(self.render(url) for url in step.media)

    def utterance(
        self,
        step: Step,
        text: Text | str,
        *,
        literal: bool = False,
        media: tuple[str, ...] = (),
        prompt_for: str | None = None,
    ) -> Utterance:
        """``text`` said in ``step``: a flow Text, a template source, or (``literal``) a
        string said as is, such as a validator's message."""
        mixed: Segments = ()
        if isinstance(text, str):
            rendered = text if literal else self.render(text)
        else:
            rendered, mixed = self._render_text(text)
        return Utterance(rendered, self.session.lang, step.name, media, mixed, prompt_for)

    def prompt(self, step: Step, text: Text) -> Utterance:
        """``text`` said as the prompt of waiting ``step``, with the step's media."""
        return self.utterance(step, text, media=self.media(step), prompt_for=step.name)

    def _render_text(self, text: Text) -> tuple[str, Segments]:
        lang = self.session.lang
        mixed: Segments = ()
        if text.mixed and self.channel == "voice":
            mixed = tuple((seg_lang, self.render(src)) for seg_lang, src in text.mixed)
        source = text.pick(lang, self.spec.default_lang, self.channel)
        rendered = self.render(source) if source is not None else ""
        return rendered, mixed


def error_text(spec: FlowSpec, lang: str, context: Mapping[str, Any]) -> str:
    """The text said when a turn fails: the flow's ``error_text`` or convo's default."""
    if spec.error_text is not None:
        source = spec.error_text.pick(lang, spec.default_lang)
        if source is not None:
            try:
                return TEMPLATES.render(source, context)
            except Exception:  # the error text must never fail the error path
                log.exception("error_text of flow %s does not render", spec.id)
    return DEFAULT_ERROR_TEXT.get(lang, DEFAULT_ERROR_TEXT["en"])

"""What a campaign would do, without doing it (``convo broadcast --dry-run``).

:func:`preview_campaign` reads the recipients once (streamed) and counts the contacts by
the language their conversation would speak, the rows left out (invalid, duplicate: each
with its line), and the contacts who opted out of the line. For every language it renders
the flow's first texts once, for the first contact of that language (the campaign's
params with that contact's own), and counts their SMS parts (:mod:`convo.sms.segments`):
``total_parts`` is each language's parts times its contacts. Nothing is stored or sent:
the texts are rendered on a throwaway in-memory store.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from convo.campaigns.model import Campaign, NewRecipient, RecipientState
from convo.exceptions import ConvoError
from convo.models import ConversationKey
from convo.sms.segments import SegmentInfo, analyze
from convo.store.base import Suppressions

if TYPE_CHECKING:
    from convo.flow.spec import FlowSpec

MAX_LISTED = 1000  # skipped rows kept for the report; the counts go on beyond


@dataclass(frozen=True, slots=True)
class LanguagePreview:
    """The first texts in one language: each with its SMS cost, or why they cannot be
    rendered (``error``: a required param that no column fills, say)."""

    language: str
    contacts: int
    texts: tuple[tuple[str, SegmentInfo], ...] = ()
    error: str | None = None

    @property
    def parts(self) -> int:
        """SMS parts one contact of this language costs."""
        return sum(info.parts for _, info in self.texts)


@dataclass(slots=True)
class Preview:
    contacts: int = 0
    opted_out: int = 0
    skipped: list[NewRecipient] = field(default_factory=list)
    invalid: int = 0
    duplicates: int = 0
    languages: list[LanguagePreview] = field(default_factory=list)

    @property
    def total_parts(self) -> int:
        """SMS parts the campaign would send first, opted-out contacts left out."""
        return sum(lang.parts * lang.contacts for lang in self.languages)


async def preview_campaign(
    campaign: Campaign,
    recipients: Iterable[NewRecipient],
    *,
    flows: Mapping[str, FlowSpec],
    suppressions: Suppressions,
) -> Preview:
    """The preview of ``campaign`` over ``recipients`` (module docstring). ``flows`` are
    the server's (the flow's id must be among them)."""
    from convo.flow.engine import Engine
    from convo.store.memory import MemoryStore

    spec = flows[campaign.flow]
    found = Preview()
    first: dict[str, NewRecipient] = {}
    by_language: Counter[str] = Counter()
    seen: set[str] = set()  # the store decides duplicates when it stores; here, this does
    for r in recipients:
        state = r.state
        if state is RecipientState.PENDING and r.number in seen:
            state = RecipientState.SKIPPED_DUPLICATE
        if state is not RecipientState.PENDING:
            found.invalid += state is RecipientState.SKIPPED_INVALID
            found.duplicates += state is RecipientState.SKIPPED_DUPLICATE
            if len(found.skipped) < MAX_LISTED:
                found.skipped.append(r)
            continue
        seen.add(r.number)
        found.contacts += 1
        if await suppressions.is_suppressed(campaign.line, r.number):
            found.opted_out += 1
            continue
        lang = r.language if r.language in spec.languages else spec.default_lang
        by_language[lang] += 1
        first.setdefault(lang, r)
    engine = Engine({spec.id: spec}, MemoryStore())
    declared = set(spec.params)
    for lang in spec.languages:
        if lang not in by_language:
            continue
        r = first[lang]
        params = {**campaign.params, **{k: v for k, v in r.fields.items() if k in declared}}
        key = ConversationKey(campaign.line, campaign.channel, r.number)
        try:
            replies = await engine.start(key, spec.id, params=params, lang=lang, name=r.name)
        except ConvoError as exc:
            found.languages.append(LanguagePreview(lang, by_language[lang], error=str(exc)))
            continue
        texts = tuple((m.text, analyze(m.text)) for m in replies)
        found.languages.append(LanguagePreview(lang, by_language[lang], texts))
    return found

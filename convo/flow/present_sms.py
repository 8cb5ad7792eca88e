"""The SMS presenter: a turn's outputs as the texts to queue in the outbox.

Every :class:`~convo.flow.outputs.Utterance` with something in it (text or media) becomes
one :class:`~convo.models.OutboundMessage` to the contact, from the conversation's line, in
the utterance's language. Waiting for an answer needs nothing on SMS (the contact just
replies), and call actions have no SMS form (the turn already handled a voice-only verb
reached over SMS), so they send nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import assert_never

from convo.flow.outputs import AwaitInput, CallAction, Output, Utterance
from convo.flow.pipeline import TurnResult
from convo.models import MESSAGE_METADATA_KEYS, ConversationKey, OutboundMessage, Session


def present_sms(result: TurnResult) -> list[OutboundMessage]:
    """The texts of one turn; a failed turn's error text goes without provider metadata."""
    meta = metadata(result.session) if result.session is not None else {}
    return sms_messages(result.key, result.outputs, meta)


def sms_messages(
    key: ConversationKey,
    outputs: Sequence[Output],
    metadata: Mapping[str, str] | None = None,
) -> list[OutboundMessage]:
    """One message per thing said (empty texts dropped), each carrying ``metadata``."""
    out: list[OutboundMessage] = []
    for item in outputs:
        match item:
            case Utterance():
                if item.text.strip() or item.media:
                    out.append(
                        OutboundMessage(
                            line=key.line,
                            to=key.contact,
                            text=item.text,
                            channel=key.channel,
                            lang=item.lang,
                            media_urls=item.media,
                            metadata=metadata or {},
                        )
                    )
            case AwaitInput() | CallAction():
                pass
            case _:
                assert_never(item)
    return out


def metadata(session: Session) -> dict[str, str]:
    """The provider metadata of a conversation's replies: its params named in
    ``MESSAGE_METADATA_KEYS`` (a flow declares ``gdpr_consent_ref`` as a param, with a
    default or given when it is started), as text."""
    params = session.params
    return {k: str(params[k]) for k in MESSAGE_METADATA_KEYS if params.get(k) not in (None, "")}

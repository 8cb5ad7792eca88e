"""Shared short codes: whose is a text sent to a code that texts many people for many flows?

A shared short code (Enco's ``8937``) sends for many applications, so a reply to it can
only be routed by who texted that person from it lately. Enco's rule: an inbound text on
its shared code belongs to the application that sent its sender a message from the code,
provided no other application has texted them from it within 7 days. convo keeps the same
rule between its own conversations on such a line:

    an inbound text on a shared-code line goes to the conversation that texted that person
    from the code within :data:`OWNERSHIP` (7 days), else to the line's flow.

*Which conversation texted last* needs no search: a conversation is keyed by (line,
channel, contact), and a flow started on a key replaces the conversation open there, so
the open conversation is the one that texted the contact last. *Within 7 days* is read from
the message log (``MessageLog.last_sent_to``: the newest message from the code to the
contact that reached the network, by when it was created). When nothing was sent within
the window the open conversation has lapsed: the text starts the line's flow as a
stranger's first text does, and the lapsed conversation is replaced.

What stays as it is: a conversation handed to a person (the person sees the text, whatever
its age), keyword triggers and STOP/START (checked before), and every line that is not a
shared code (no store read at all). A line is a shared code when its provider sends from
one (:class:`SharedCodeSender`: Enco with ``shared = true``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

from convo.models import ConversationKey
from convo.store.base import MessageLog

#: How long a message sent from a shared code keeps its sender's replies (seconds).
OWNERSHIP = 7 * 86400.0


@runtime_checkable
class SharedCodeSender(Protocol):
    """A provider that may send from a shared short code: ``shared_code`` is that code, or
    None when it sends from a number of our own."""

    @property
    def shared_code(self) -> str | None: ...


class SharedCodes:
    """The lines that are shared codes, and the 7-day rule over the message log.

    ``clock`` gives the current UNIX time (moved forward by tests)."""

    def __init__(
        self,
        log: MessageLog,
        lines: Iterable[str],
        *,
        ownership: float = OWNERSHIP,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if ownership <= 0:
            raise ValueError("ownership must be > 0 seconds")
        self.log = log
        self.lines = frozenset(lines)
        self.ownership = ownership
        self.clock = clock

    def __repr__(self) -> str:
        return f"<SharedCodes {sorted(self.lines)} ownership={self.ownership:g}s>"

    def __bool__(self) -> bool:
        return bool(self.lines)

    async def lapsed(self, key: ConversationKey) -> bool:
        """True when ``key.line`` is a shared code and nothing reached ``key.contact`` from
        it in the last ``ownership`` seconds: the conversation open on ``key`` no longer
        owns the contact's texts. False for any other line. Store errors propagate."""
        if key.line not in self.lines:
            return False
        since = self.clock() - self.ownership
        return await self.log.last_sent_to(key.line, key.contact, since) is None

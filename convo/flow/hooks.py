"""Running a flow's hooks: the ``do:`` calls of a step and the ``validate:`` of an ``ask``.

A :class:`Hooks` serves one turn. It runs the built-in calls itself (``opt_out``, ``opt_in``,
``clear_slots``) and every other name as an action of the turn's :class:`~convo.bot.Bot`,
handing it a :class:`~convo.bot.Conversation` view built at call time. That view shares the
session's ``slots`` and ``params`` dicts, so what a hook writes there is saved with the turn.

Contracts: an unknown hook name, or a hook that raises, raises ``HookError`` (the cause
chained); the engine then drops the turn and says the flow's error text. ``opt_out`` and
``opt_in`` only set flags (the last one called wins): the engine applies them after saving.
"""

from __future__ import annotations

from typing import Any

from convo.bot import Bot, Conversation
from convo.exceptions import HookError
from convo.flow.spec import HookCall
from convo.media import Media
from convo.models import Contact, Session


class Hooks:
    """The hooks of one turn on ``session`` (changed in place); ``bot`` may be None (a flow
    without Python hooks: only the built-ins then work)."""

    def __init__(self, bot: Bot | None, session: Session, contact: Contact) -> None:
        self.bot = bot
        self.session = session
        self.contact = contact
        self.opt_out = False
        self.opt_in = False
        self.media: tuple[Media, ...] = ()  # of the reply the turn handles

    def conversation(self) -> Conversation:
        """What a hook sees: the session as it is now (current step, language, slots)."""
        s = self.session
        return Conversation(
            key=s.key,
            flow=s.flow,
            step=s.step,
            contact=self.contact,
            lang=s.lang,
            params=s.params,
            slots=s.slots,
            media=self.media,
        )

    async def do(self, calls: tuple[HookCall, ...]) -> None:
        """Run ``calls`` in order. Raises ``HookError`` for an unknown or failing action;
        the calls before it have run."""
        for call in calls:
            if call.name == "opt_out":
                self.opt_out, self.opt_in = True, False
            elif call.name == "opt_in":
                self.opt_in, self.opt_out = True, False
            elif call.name == "clear_slots":
                self.session.slots.clear()
            else:
                action = self.bot.actions.get(call.name) if self.bot else None
                if action is None:
                    raise HookError(f"{call.pos}: no action named {call.name!r} on this bot")
                try:
                    await action(self.conversation())
                except Exception as exc:
                    raise HookError(f"action {call.name!r} raised {exc!r}") from exc

    async def validate(self, name: str, value: Any) -> bool | str:
        """The verdict of validator ``name`` on ``value``: True, False or a message to say.
        Raises ``HookError`` for an unknown or failing validator."""
        validator = self.bot.validators.get(name) if self.bot else None
        if validator is None:
            raise HookError(f"no validator named {name!r} on this bot")
        try:
            return await validator(self.conversation(), value)
        except Exception as exc:
            raise HookError(f"validator {name!r} raised {exc!r}") from exc

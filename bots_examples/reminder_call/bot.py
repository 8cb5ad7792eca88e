"""Hooks of the reminder-call bot: record what the patient pressed.

A real practice would write to its agenda; here the outcomes are kept in ``OUTCOMES`` so the
example's tests can check them. Place a reminder call with ``convo call``::

    convo call reminder_call --to +32470123456 --param patient=An --param date=2026-12-01 \\
        --bot bots_examples/reminder_call/bot.py
"""

from __future__ import annotations

from convo.bot import Bot, Conversation

bot = Bot("reminder")

OUTCOMES: dict[str, str] = {}


@bot.action
async def confirm(conv: Conversation) -> None:
    OUTCOMES[conv.contact.number] = "confirmed"
    conv.slots["confirmation"] = f"{conv.params['date']}:confirmed"


@bot.action
async def request_move(conv: Conversation) -> None:
    OUTCOMES[conv.contact.number] = "move requested"

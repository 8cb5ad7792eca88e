"""A dentist's booking bot: the flow in booking.yaml plus two Python hooks.

``dentist.slot_free`` refuses days the practice is closed or full; ``dentist.book`` books
the chosen day and stores the booking reference in a slot the flow then uses.
Run it: ``convo chat bots_examples/dentist/booking.yaml --lang en``.
"""

from __future__ import annotations

import datetime as dt
import itertools

from convo.bot import Bot, Conversation

bot = Bot("dentist")

#: The practice's agenda: days that are fully booked. A real bot would ask its calendar.
FULL_DAYS = {"2027-01-18", "2027-01-19"}
BOOKINGS: dict[str, list[str]] = {}
_refs = itertools.count(1001)

CLOSED = {
    "en": "We are closed at weekends, please pick a weekday.",
    "nl": "In het weekend zijn we gesloten, kies een weekdag.",
}
FULL = {
    "en": "That day is fully booked, please pick another one.",
    "nl": "Die dag is volzet, kies een andere dag.",
}


@bot.validator
async def slot_free(conv: Conversation, value: str) -> bool | str:
    """Accept a weekday that is not full; say why otherwise."""
    day = dt.date.fromisoformat(value)
    if day.weekday() >= 5:
        return CLOSED.get(conv.lang, CLOSED["en"])
    if value in FULL_DAYS:
        return FULL.get(conv.lang, FULL["en"])
    return True


@bot.action
async def book(conv: Conversation) -> None:
    """Book the chosen day for this contact; the reference goes into slot ``booking``."""
    day = conv.slots["new_date"]
    BOOKINGS.setdefault(day, []).append(conv.contact.number)
    conv.slots["booking"] = f"B{next(_refs)}"

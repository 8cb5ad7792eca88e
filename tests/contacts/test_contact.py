"""Building a checked contact: number, language, time zone (given or guessed), fields."""

from __future__ import annotations

import pytest

from convo.contacts import make_contact, normalize_language
from convo.contacts.zones import timezone_for_number
from convo.exceptions import InvalidNumber


@pytest.mark.parametrize(
    ("number", "zone"),
    [
        ("+32470123456", "Europe/Brussels"),
        ("+12125551234", "America/New_York"),
        ("+447911123456", "Europe/London"),  # London, Guernsey, Jersey, Man: one clock
        ("+61412345678", None),  # an Australian mobile: Perth or Sydney?
        ("+79161234567", None),
        ("not a number", None),
    ],
)
def test_timezone_guessed_from_the_number(number: str, zone: str | None) -> None:
    assert timezone_for_number(number) == zone


@pytest.mark.parametrize(
    ("code", "normal"), [("NL", "nl"), ("nl_be", "nl-BE"), ("pt-br", "pt-BR"), (" fr ", "fr")]
)
def test_language_codes_are_normalised(code: str, normal: str) -> None:
    assert normalize_language(code) == normal


def test_make_contact_checks_each_attribute() -> None:
    contact = make_contact("0470 12 34 56", name=" An ", fields={"vip": True})
    assert contact.number == "+32470123456"
    assert (contact.name, contact.lang, contact.timezone) == ("An", None, "Europe/Brussels")
    assert contact.fields == {"vip": True}
    given = make_contact("+32470123456", language="en", timezone="Europe/London")
    assert (given.lang, given.timezone) == ("en", "Europe/London")
    with pytest.raises(InvalidNumber):
        make_contact("0470")
    with pytest.raises(ValueError, match="language"):
        make_contact("+32470123456", language="123")
    with pytest.raises(ValueError, match="time zone"):
        make_contact("+32470123456", timezone="Europe/Atlantis")

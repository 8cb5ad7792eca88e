"""E.164 normalisation and sender IDs."""

from __future__ import annotations

import pytest

from convo.exceptions import InvalidNumber
from convo.sms.phone import is_sender_id, normalize, region_of


@pytest.mark.parametrize(
    "raw",
    ["0470 12 34 56", "+32 470 12 34 56", "0032470123456", "+32470123456", "0470/12.34.56"],
)
def test_belgian_forms_normalise(raw: str) -> None:
    assert normalize(raw) == "+32470123456"


def test_default_region_is_used_for_national_numbers() -> None:
    assert normalize("06 12345678", default_region="NL") == "+31612345678"
    assert normalize("+31 6 12345678") == "+31612345678"  # international ignores region


@pytest.mark.parametrize("raw", ["", "hello", "+32 12", "0470 12 34 5", "+999 123456789"])
def test_invalid_numbers_raise_with_the_input_named(raw: str) -> None:
    with pytest.raises(InvalidNumber) as info:
        normalize(raw)
    assert repr(raw) in str(info.value)


@pytest.mark.parametrize("value", ["AcmeDental", "Dr Smith", "A", "Shop24", "ABCDEFGHIJK"])
def test_sender_ids(value: str) -> None:
    assert is_sender_id(value)


@pytest.mark.parametrize(
    "value", ["", "ABCDEFGHIJKL", "32470123456", "12345", "Acme-Inc", "Café", "   "]
)
def test_not_sender_ids(value: str) -> None:
    assert not is_sender_id(value)


def test_region_of() -> None:
    assert region_of("+32470123456") == "BE"
    assert region_of("+31612345678") == "NL"
    assert region_of("not a number") is None
    assert region_of("+999123") is None

"""Phone numbers in E.164 and alphanumeric sender names.

convo stores and compares every number as E.164 (``+32470123456``): what a person types
("0470 12 34 56", "+32 470 12 34 56", "0032 470 12 34 56") is normalised here, with
``phonenumbers`` (Google's libphonenumber metadata) deciding what is a valid number.
National numbers without a country prefix are read in ``default_region`` (Belgium unless
told otherwise); the international prefix of that region (``00`` in Belgium) is understood.

A sender name ("AcmeDental") is not a number: :func:`is_sender_id` says whether a value
can be used as an alphanumeric sender ID (the GSM limit of 11 characters).
"""

from __future__ import annotations

import re

import phonenumbers

from convo.exceptions import InvalidNumber

# Letters, digits and spaces only, at most 11 (the TP-OA field holds 11 GSM characters).
_SENDER_ID = re.compile(r"[A-Za-z0-9 ]{1,11}")


def _parse(number: str, default_region: str | None) -> phonenumbers.PhoneNumber:
    if not isinstance(number, str):
        raise InvalidNumber(f"phone number must be a string, got {type(number).__name__}")
    try:
        return phonenumbers.parse(number, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(f"{number!r} is not a phone number: {exc}") from exc


def normalize(number: str, default_region: str = "BE") -> str:
    """``number`` in E.164 (``+`` and digits only).

    Accepts international (``+32 470 ...``, ``0032 470 ...``) and national (``0470 ...``,
    read in ``default_region``, an ISO 3166 alpha-2 code) forms with spaces, dots, dashes
    or brackets. Raises :class:`InvalidNumber` naming the input when it cannot be parsed
    or is not a valid number (wrong length or an unallocated range) in its country.
    """
    return e164(parse_valid(number, default_region))


def parse_valid(number: str, default_region: str = "BE") -> phonenumbers.PhoneNumber:
    """``number`` parsed, if it is valid (:func:`normalize`'s rules and errors): for a
    caller that needs more than the E.164 form (a contact's time zone), without parsing
    twice."""
    parsed = _parse(number, default_region)
    if not phonenumbers.is_valid_number(parsed):
        region = phonenumbers.region_code_for_number(parsed)
        where = f" in {region}" if region else f" (country code +{parsed.country_code})"
        raise InvalidNumber(f"{number!r} is not a valid phone number{where}")
    return parsed


def e164(parsed: phonenumbers.PhoneNumber) -> str:
    """A parsed number in E.164."""
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


_IMPOSSIBLE = {
    phonenumbers.ValidationResult.TOO_SHORT: "too short",
    phonenumbers.ValidationResult.TOO_LONG: "too long",
    phonenumbers.ValidationResult.INVALID_LENGTH: "a length no number there has",
    phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "too short (a local number only)",
}
_UNPARSEABLE = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country calling code",
    phonenumbers.NumberParseException.TOO_LONG: "too long",
}


def normalize_possible(number: str) -> str:
    """An international ``+digits`` number in E.164, keeping one the metadata does not
    list as allocated but that is *possible* (a known country calling code and a length
    that country uses): a provider that delivered a message from it knows better than our
    metadata. Raises :class:`InvalidNumber` saying why a number cannot be one."""
    try:
        return normalize(number)
    except InvalidNumber:
        pass
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException as exc:
        why = _UNPARSEABLE.get(exc.error_type, "too short")
        raise InvalidNumber(f"{number!r} cannot be a phone number: {why}") from None
    reason = phonenumbers.is_possible_number_with_reason(parsed)
    if reason == phonenumbers.ValidationResult.IS_POSSIBLE:
        return number
    region = phonenumbers.region_code_for_number(parsed)
    where = region if region and region != "ZZ" else f"+{parsed.country_code}"
    why = _IMPOSSIBLE.get(reason, "impossible")
    raise InvalidNumber(f"{number!r} cannot be a phone number: {why} for {where}")


def is_sender_id(value: str) -> bool:
    """True if ``value`` is an alphanumeric sender ID: 1 to 11 ASCII letters, digits and
    spaces, with at least one letter (all digits would be read as a number)."""
    return (
        isinstance(value, str)
        and _SENDER_ID.fullmatch(value) is not None
        and any(c.isalpha() for c in value)
    )


def region_of(number: str) -> str | None:
    """The ISO 3166 region (``"BE"``) of an E.164 number, or None if unknown/unparseable."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(parsed)
    return region if region and region != "ZZ" else None

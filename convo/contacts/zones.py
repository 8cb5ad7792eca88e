"""A contact's time zone: checked when given, guessed from the phone number when not.

A guess comes from phonenumbers' prefix data (``time_zones_for_number``): a Belgian number
is in ``Europe/Brussels``, a New York landline in ``America/New_York``. A prefix often maps to
several zones; convo keeps a guess only when they all keep the same clock (a UK mobile:
London, Guernsey, Jersey, Isle of Man), and then names the country's canonical zone (the one
tzdata's ``zone1970.tab`` lists, ``Europe/London``). When the zones disagree (an Australian
or Russian mobile) there is no guess: None, and the contact's ``timezone`` must be given.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from pathlib import Path

import phonenumbers
from phonenumbers import timezone as phone_zones

_UNKNOWN = "Etc/Unknown"


def check_timezone(name: str) -> str:
    """``name`` if it is an IANA time zone this machine knows; raises ValueError saying so
    otherwise."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (expected an IANA name such as 'Europe/Brussels')"
        ) from None
    return name


def timezone_for_number(number: str) -> str | None:
    """The time zone of E.164 ``number`` from its prefix, or None when unknown or ambiguous
    (module docstring)."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    return timezone_for_parsed(parsed)


def timezone_for_parsed(parsed: phonenumbers.PhoneNumber) -> str | None:
    """:func:`timezone_for_number` of a number already parsed."""
    return _zone_for_candidates(tuple(phone_zones.time_zones_for_number(parsed)))


@functools.lru_cache(maxsize=1024)
def _zone_for_candidates(candidates: tuple[str, ...]) -> str | None:
    zones = [z for z in candidates if z != _UNKNOWN and _known(z)]
    if not zones:
        return None
    canonical = [z for z in zones if z in _canonical_zones()] or zones
    first = canonical[0]
    if all(_same_clock(first, other) for other in zones):
        return first
    return None


def _known(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _same_clock(a: str, b: str) -> bool:
    """Whether zones ``a`` and ``b`` show the same time in winter and in summer this year."""
    year = dt.datetime.now(dt.UTC).year
    for month in (1, 7):
        moment = dt.datetime(year, month, 15, 12, tzinfo=dt.UTC)
        if (
            moment.astimezone(zoneinfo.ZoneInfo(a)).utcoffset()
            != moment.astimezone(zoneinfo.ZoneInfo(b)).utcoffset()
        ):
            return False
    return True


@functools.cache
def _canonical_zones() -> frozenset[str]:
    """The zones tzdata's ``zone1970.tab`` lists (no aliases such as Europe/Guernsey);
    empty when this machine's tz database has no such table."""
    for root in zoneinfo.TZPATH:
        table = Path(root) / "zone1970.tab"
        try:
            lines = table.read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        return frozenset(
            parts[2]
            for parts in (line.split("\t") for line in lines if not line.startswith("#"))
            if len(parts) >= 3
        )
    return frozenset()

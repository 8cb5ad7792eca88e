"""Durations in flow files: ``timeout: 24h``, ``max: 90s``, ``time_limit: 1h30m``.

One concept: the text form of a length of time, shared by the flow reader (which turns a bad
one into a located diagnostic) and conversation-test files (which call
:func:`parse_duration` directly). Plain numbers are seconds; units are s, m, h and d.
"""

from __future__ import annotations

import math
import re

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?\s*[smhd]\s*)+", re.IGNORECASE)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])", re.IGNORECASE)


def parse_duration(value: object) -> float:
    """Seconds from ``90``, ``1.5``, ``"90"``, ``"90s"``, ``"30m"``, ``"24h"``, ``"2d"`` or
    ``"1h30m"``. Raises ValueError (saying what is accepted) for anything else, including
    negative, infinite and boolean values."""
    seconds: float
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"bad duration {value!r}: use seconds or e.g. 90s, 30m, 24h, 2d, 1h30m")
    if isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            if not _DURATION.fullmatch(text):
                raise ValueError(
                    f"bad duration {value!r}: use seconds or e.g. 90s, 30m, 24h, 2d, 1h30m"
                ) from None
            parts = _DURATION_PART.findall(text)
            seconds = sum(float(n) * _UNITS[unit.lower()] for n, unit in parts)
    else:
        seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"bad duration {value!r}: must be a finite, non-negative time")
    return seconds

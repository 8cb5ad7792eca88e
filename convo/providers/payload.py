"""Untrusted webhook payloads turned into values the rest of convo can hold and store.

Everything a provider (or anyone posing as one) sends is read through these helpers, so
that a value either comes out usable or raises
:class:`~convo.exceptions.MalformedWebhook` naming the field, and never an exception the
web layer would answer with 500:

* :func:`decode_json`: the body as JSON. Not UTF-8, not JSON, or nested deeper than
  :data:`MAX_DEPTH` is malformed. JSON may spell a lone UTF-16 surrogate (``"\\ud800"``),
  which no UTF-8 store can hold: every string (keys too) comes out :func:`storable`, with
  such code points replaced by U+FFFD, so a signed text is stored rather than lost.
* :func:`whole_number`: ASCII digits only (``str.isdigit`` also accepts ``"²"``, which
  ``int`` refuses) within the bounds the caller gives, so no out-of-range integer reaches
  the store (SQLite integers are 64-bit).
* :func:`price`: a finite, non-negative decimal (``10**400`` and ``"1e999"`` are not
  prices, and ``inf`` must not reach a sum of prices).
"""

from __future__ import annotations

import json
import math
import re

from convo.exceptions import MalformedWebhook

#: Deeper JSON than this is no webhook any provider sends (theirs are 2-3 levels deep).
MAX_DEPTH = 32
#: The most digits a whole number may have before it is even converted.
MAX_DIGITS = 18  # below 2**63: anything we accept fits a SQLite integer

_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(text: str) -> str:
    """``text`` with lone surrogates (the only code points UTF-8 cannot encode) replaced by
    U+FFFD; the same object when there are none (the common case costs one scan)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def decode_json(body: bytes, where: str) -> object:
    """The JSON value in ``body`` with every string :func:`storable`; ``MalformedWebhook``
    (starting with ``where``) when it is not UTF-8 JSON or nests deeper than
    :data:`MAX_DEPTH`."""
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise MalformedWebhook(f"{where}: body is not UTF-8 ({exc.reason})") from None
    except RecursionError:
        raise MalformedWebhook(f"{where}: JSON nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise MalformedWebhook(f"{where}: body is not valid JSON ({exc})") from None
    return _cleaned(data, where)


def _cleaned(data: object, where: str) -> object:
    """``data`` with storable strings, walked without recursion (it may be deep)."""
    if isinstance(data, str):
        return storable(data)
    # Each container is cleaned in place; the containers in it are pushed with their depth.
    stack: list[tuple[object, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, dict | list):
            continue
        if depth > MAX_DEPTH:
            raise MalformedWebhook(f"{where}: JSON nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, dict):
            cleaned = {storable(key): _leaf(value) for key, value in node.items()}
            node.clear()
            node.update(cleaned)
            children: list[object] = list(node.values())
        else:
            node[:] = [_leaf(value) for value in node]
            children = node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return data


def _leaf(value: object) -> object:
    return storable(value) if isinstance(value, str) else value


def whole_number(raw: str, field: str, where: str, *, low: int = 0, high: int) -> int:
    """``raw`` (ASCII digits) as an int in ``low..high``; ``MalformedWebhook`` naming
    ``field`` otherwise."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > MAX_DIGITS:
        raise MalformedWebhook(f"{where}: field {field!r} must be a whole number, got {raw[:40]!r}")
    value = int(raw)
    if not low <= value <= high:
        raise MalformedWebhook(f"{where}: field {field!r} must be {low}..{high}, got {value}")
    return value


def price(value: object) -> float | None:
    """A price (a decimal string or a JSON number) as a finite float >= 0; None when absent
    (``None`` or ``""``). ``ValueError`` whose message completes "the price ...": "is not
    a number", and so on."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"is not a decimal string but a {type(value).__name__}")
    if isinstance(value, str) and len(value) > 64:
        raise ValueError("is not a number (more than 64 characters)")
    try:
        amount = float(value)
    except OverflowError:  # an int beyond the float range, e.g. 10**400
        raise ValueError("is too large to be a price") from None
    except ValueError:
        raise ValueError("is not a number") from None
    if not math.isfinite(amount) or amount < 0:
        raise ValueError("is not a finite amount of 0 or more")
    return amount

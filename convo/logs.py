"""Logging: one place that decides what a log line looks like and what it may contain.

convo logs through the standard library, one logger per area, all under ``convo``
(``convo.engine``, ``convo.calls``, ``convo.outbox``, ``convo.intake``, ``convo.web.*``,
``convo.flow``, ``convo.runtime``, ...), plus ``convo.access`` for the access log (one line
per HTTP request, ``convo.web.access``). :func:`configure` installs one handler on the root
logger, so aiohttp's and the other libraries' lines come out the same way:

* ``text``: ``2026-12-04T15:20:01.123Z INFO    convo.engine [req=1f3a...
  conv=+32460000101/sms/+32470****00] message`` (one line);
* ``json``: one object per line with ``time`` (UTC, ISO 8601), ``level``, ``logger``,
  ``message`` and, when known, ``request_id``, ``conversation`` and ``exception``.

Context. Two context variables travel with the work they describe (asyncio copies them
into every task started under them): the **request id** (set by the web app's middleware
for each request, taken from a well-formed ``X-Request-Id`` header or made up, and sent back
in that header) and the **conversation key** (set by the engine and the call runner for
the duration of a turn, :func:`conversation_scope`). Every line logged while they are set
carries them, whatever logger wrote it.

Privacy. Phone numbers are masked by default in every line, the message and any traceback
included: ``+32470123400`` becomes ``+32470****00`` (URL-encoded ``%2B32...`` too);
``mask_numbers = false`` shows them. The business's own numbers (``[[lines]]``, given to
:func:`configure` as ``own_numbers``) are not masked: they are not personal data, they are
published for people to text and call, and a line that says which line a conversation is on
is what an operator reads it for. Only the contacts' numbers are. What people write is
never logged above DEBUG: the code logs message ids, not texts, and nothing else may be
added at INFO or above.
"""

from __future__ import annotations

import json
import logging
import random
import re
import sys
import time
from collections.abc import Collection
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal, TextIO

__all__ = [
    "FORMATS",
    "LEVELS",
    "LogSettings",
    "configure",
    "conversation_scope",
    "current_conversation",
    "current_request_id",
    "mask_numbers",
    "new_request_id",
    "request_scope",
]

LogFormat = Literal["text", "json"]
FORMATS: tuple[LogFormat, ...] = ("text", "json")
LEVELS = ("debug", "info", "warning", "error", "critical")

#: Libraries whose INFO lines are not logged unless the level is DEBUG (:func:`configure`).
QUIET_LIBRARIES = ("httpx", "httpcore")

_request_id: ContextVar[str | None] = ContextVar("convo_request_id", default=None)
_conversation: ContextVar[str | None] = ContextVar("convo_conversation", default=None)

#: An E.164 number, written with "+" or URL-encoded "%2B": 8 to 17 digits, of which the
#: first five (country and area, useful when reading a log) and the last two are kept.
_NUMBER = re.compile(r"(\+|%2[Bb])(\d{8,17})(?!\d)")
#: What a client may give as its request id (anything else is replaced by ours).
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


@dataclass(frozen=True, slots=True)
class LogSettings:
    """``[logging]`` in convo.toml (and ``convo serve``'s ``--log-*`` options): ``level``
    one of :data:`LEVELS`, ``format`` one of :data:`FORMATS`, ``access_log`` one line per
    HTTP request, ``mask_numbers`` phone numbers masked in every line."""

    level: str = "info"
    format: LogFormat = "text"
    access_log: bool = True
    mask_numbers: bool = True


def mask_numbers(text: str, keep: Collection[str] = ()) -> str:
    """``text`` with every E.164 number masked, ``+32470123400`` -> ``+32470****00``,
    except the numbers of ``keep`` (E.164, with their "+": the business's own)."""

    def masked(found: re.Match[str]) -> str:
        sign, digits = found[1], found[2]
        if "+" + digits in keep:
            return found[0]
        return f"{sign}{digits[:5]}****{digits[-2:]}"

    return _NUMBER.sub(masked, text)


def new_request_id(given: str | None = None) -> str:
    """``given`` when it is a well-formed request id (1-64 of ``A-Za-z0-9._:-``), else a
    new random one."""
    if given and _REQUEST_ID.fullmatch(given):
        return given
    # 16 hex digits from the random module, not the OS: a request id only has to tell one
    # request's lines from another's, not to be unguessable, and os.urandom is a system
    # call that lets go of the GIL on every webhook (under load the event loop then waits
    # for the SQLite thread to give it back). ``random`` is seeded again in a forked child.
    return f"{random.getrandbits(64):016x}"


def current_request_id() -> str | None:
    return _request_id.get()


def current_conversation() -> str | None:
    return _conversation.get()


def request_scope(request_id: str) -> _Scope:
    """Lines logged inside (and in tasks started inside) carry ``request_id``."""
    return _Scope(_request_id, request_id)


def conversation_scope(key: object) -> _Scope:
    """Lines logged inside carry the conversation key ``str(key)`` (line/channel/contact)."""
    return _Scope(_conversation, str(key))


class _Scope:
    """``variable`` set to ``value`` inside the ``with`` block (which gets the value), and
    back to what it was after. A class rather than a ``contextlib.contextmanager``
    generator: entered once per webhook and per turn, it costs a fifth."""

    __slots__ = ("_token", "_value", "_variable")

    def __init__(self, variable: ContextVar[str | None], value: str) -> None:
        self._variable = variable
        self._value = value

    def __enter__(self) -> str:
        self._token = self._variable.set(self._value)
        return self._value

    def __exit__(self, *exc: object) -> None:
        self._variable.reset(self._token)


class _ContextFilter(logging.Filter):
    """Puts the request id and conversation key of the current context on each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _request_id.get()
        if not hasattr(record, "conversation"):
            record.conversation = _conversation.get()
        return True


class _Formatter(logging.Formatter):
    """The text or JSON line of a record, numbers masked unless told otherwise."""

    def __init__(self, kind: LogFormat, *, mask: bool, keep: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.kind = kind
        self.mask = mask
        self.keep = keep

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        error = self.formatException(record.exc_info) if record.exc_info else None
        if record.stack_info:
            error = f"{error}\n{record.stack_info}" if error else record.stack_info
        request_id = getattr(record, "request_id", None)
        conversation = getattr(record, "conversation", None)
        if self.kind == "json":
            body: dict[str, object] = {
                "time": self.formatTime(record),
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": message,
            }
            if request_id:
                body["request_id"] = request_id
            if conversation:
                body["conversation"] = conversation
            if error:
                body["exception"] = error
            line = json.dumps(body, ensure_ascii=False, default=str)
        else:
            context = " ".join(
                f"{name}={value}"
                for name, value in (("req", request_id), ("conv", conversation))
                if value
            )
            line = f"{self.formatTime(record)} {record.levelname:<7} {record.name}"
            line += f" [{context}] {message}" if context else f" {message}"
            if error:
                line += "\n" + error
        return mask_numbers(line, self.keep) if self.mask else line


class _ConvoHandler(logging.StreamHandler):  # type: ignore[type-arg]  # TextIO stream
    """The handler :func:`configure` installs (a class of its own, to find and replace it)."""


def configure(
    settings: LogSettings, stream: TextIO | None = None, *, own_numbers: Collection[str] = ()
) -> logging.Handler:
    """Send every log line (convo's and its libraries') to ``stream`` (stderr) as
    ``settings`` say; ``own_numbers`` (the lines' E.164 numbers) are never masked. Calling
    it again replaces the handler it installed before; handlers others installed (a test's
    log capture) are left alone. Returns the handler. ``ValueError`` for an unknown level
    or format."""
    level = settings.level.lower()
    if level not in LEVELS:
        raise ValueError(f"log level: expected one of {', '.join(LEVELS)}, got {settings.level!r}")
    if settings.format not in FORMATS:
        raise ValueError(f"log format: expected text or json, got {settings.format!r}")
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _ConvoHandler)]:
        root.removeHandler(old)
    handler = _ConvoHandler(stream if stream is not None else sys.stderr)
    keep = frozenset(own_numbers)
    handler.setFormatter(_Formatter(settings.format, mask=settings.mask_numbers, keep=keep))
    handler.addFilter(_ContextFilter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    # httpx logs every request's URL at INFO: one line per reply sent, and a provider API
    # that takes credentials or numbers in its query would have them logged. Our own
    # lines say what was sent; theirs only from WARNING up (and everything at DEBUG).
    for chatty in QUIET_LIBRARIES:
        logging.getLogger(chatty).setLevel("DEBUG" if level == "debug" else "WARNING")
    logging.getLogger("convo.access").disabled = not settings.access_log
    return handler

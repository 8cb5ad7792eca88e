"""The convo exception tree.

Every error convo raises on purpose derives from :class:`ConvoError`::

    ConvoError
    ├── ConfigError          bad convo.toml / environment (says which file and key)
    ├── FlowError            a flow file cannot load (carries every Diagnostic found)
    ├── FlowRuntimeError     a flow cannot run as asked (missing params, unknown flow id)
    │   └── StartRefused         a conversation cannot be started as asked
    │       ├── OptedOut             the number opted out of the line           -> 409
    │       ├── UnknownFlow          no flow by that id                        -> 404
    │       └── UnknownLine          not one of our lines (for that channel)   -> 404
    ├── HookError            a bot hook raised; the conversation stays where it was
    ├── StoreError           the store failed or holds data this version cannot read
    ├── Overloaded           too far behind to take more work now (``retry_after``) -> 503
    ├── InvalidNumber        a phone number that cannot be valid (E.164 normalisation)
    ├── WebhookError         an incoming webhook we refuse
    │   ├── SignatureError       wrong or missing signature       -> 401
    │   └── MalformedWebhook     unparseable or incomplete body   -> 400
    └── ProviderError        a provider API call failed
        ├── TransientProviderError  worth retrying (``retry_after``: the provider's hint)
        │   ├── RateLimited          throttled
        │   └── ProviderUnavailable  5xx / network
        ├── ProviderRejected     permanent rejection; never retried
        │   └── ContactOptedOut      the recipient opted out at the provider or carrier
        └── PartialDelivery      some parts of a multi-part message were rejected

Foreign exceptions (httpx, sqlite3, yaml) are mapped to these once, at the boundary
where they occur, so callers only ever catch convo's own classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class ConvoError(Exception):
    """Root of every error convo raises on purpose."""


class ConfigError(ConvoError):
    """The configuration is invalid; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem found in a flow (or test) file, located to ``file:line:col``.

    ``line`` and ``col`` are 1-based. ``severity`` is ``"error"`` or ``"warning"``.
    """

    file: str
    line: int
    col: int
    message: str
    hint: str = ""
    severity: str = "error"

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}:{self.col}: {self.severity}: {self.message}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return text


class FlowError(ConvoError):
    """A flow file has errors; ``diagnostics`` lists all of them, not just the first."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))


class FlowRuntimeError(ConvoError):
    """A flow cannot be run as asked: unknown flow id, missing or invalid params."""


class StartRefused(FlowRuntimeError):
    """A conversation cannot be started (:func:`convo.outbound.start_conversation`); the
    subclasses say why, and the message names the number, flow or line."""


class OptedOut(StartRefused):
    """The number opted out of the line (STOP, our suppression list): nothing is sent to
    it. (:class:`ContactOptedOut` is a provider saying the same of a message it refused.)"""


class UnknownFlow(StartRefused):
    """No flow has that id (or it cannot run on the channel asked for)."""


class UnknownLine(StartRefused):
    """The number is not one of our lines, or the line does not serve the channel."""


class HookError(ConvoError):
    """A bot hook (``do:`` action or ``validate:`` validator) raised."""


class StoreError(ConvoError):
    """The store failed, or holds data this version of convo cannot read."""


class CorruptRecord(StoreError):
    """One stored record cannot be read (damaged, or written by a bug); the store works
    and its other records can be."""


class Overloaded(ConvoError):
    """convo cannot take more work now: what it has acknowledged is not sent yet, beyond
    the configured limits (:mod:`convo.backpressure`). The caller should try again in
    ``retry_after`` seconds; nothing was stored."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidNumber(ConvoError):
    """A phone number that cannot be a valid E.164 number."""


class WebhookError(ConvoError):
    """An incoming webhook convo refuses. ``status`` is the HTTP status to answer."""

    status = 400


class SignatureError(WebhookError):
    """The webhook's signature is wrong, missing or stale."""

    status = 401


class MalformedWebhook(WebhookError):
    """The webhook body cannot be parsed or lacks a required field."""

    status = 400


class ProviderError(ConvoError):
    """A provider API call failed. ``retryable`` says whether trying again may help."""

    retryable = False

    def __init__(self, message: str, *, provider: str = "", code: str = "") -> None:
        super().__init__(message)
        self.provider = provider
        self.code = code


class TransientProviderError(ProviderError):
    """A failure worth retrying, after ``retry_after`` seconds when the provider said how
    long (None: back off)."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        code: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, code=code)
        self.retry_after = retry_after


class RateLimited(TransientProviderError):
    """The provider throttled us; ``retry_after`` seconds is its hint (None: back off)."""


class ProviderUnavailable(TransientProviderError):
    """5xx answer or network failure; worth retrying with backoff (or after
    ``retry_after`` seconds, when a 503 said so)."""


class ProviderRejected(ProviderError):
    """The provider permanently refused the request (bad number, no credit, ...)."""


class ContactOptedOut(ProviderRejected):
    """The recipient opted out at the provider or the carrier (Twilio 21610: they replied
    STOP to that sender): the message is never retried, and the outbox puts the contact on
    the line's suppression list, as a STOP sent to convo would."""


class PartialDelivery(ProviderError):
    """Some parts of a multi-part message were accepted, others rejected."""

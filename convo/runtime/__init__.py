"""The composition root: from :class:`~convo.config.Settings` to a running convo.

:class:`Runtime` builds and starts every part once (``convo.runtime.system``); what the
settings say about providers, lines and flows is decided in ``convo.runtime.wiring``; the
background loops are listed in ``convo.runtime.loops``.
"""

from __future__ import annotations

from convo.runtime.system import (
    DIALER,
    ERASER,
    SERVER,
    STORE_ONLY,
    EngineFactory,
    Parts,
    Runtime,
    TurnEngine,
)
from convo.runtime.wiring import voice_provider_name

__all__ = [
    "DIALER",
    "ERASER",
    "SERVER",
    "STORE_ONLY",
    "EngineFactory",
    "Parts",
    "Runtime",
    "TurnEngine",
    "voice_provider_name",
]

"""The in-memory store's flow sources (mixed into :class:`~convo.store.memory.MemoryStore`).

A memory store lives and dies with its process, so it never outlives a version: it keeps
sources only so that everything which runs on a store runs on this one too.
"""

from __future__ import annotations

from convo.models import ConversationKey, ConversationStatus, Session
from convo.store.base import FlowSource


class MemoryFlowSources:
    """:class:`~convo.store.base.FlowSources` in a dict."""

    _sessions: dict[ConversationKey, tuple[Session, str]]  # the store's

    def __init__(self) -> None:
        # (flow, version) -> (source, when last marked current)
        self._flow_sources: dict[tuple[str, str], tuple[FlowSource, float]] = {}

    async def save_flow_source(self, source: FlowSource, now: float) -> bool:
        key = (source.flow, source.version)
        kept = self._flow_sources.get(key)
        if kept is None:
            self._flow_sources[key] = (source, now)
        else:  # the text never changes; the mark never moves back
            self._flow_sources[key] = (kept[0], max(kept[1], now))
        return kept is None

    async def flow_source(self, flow: str, version: str) -> FlowSource | None:
        kept = self._flow_sources.get((flow, version))
        return None if kept is None else kept[0]

    async def prune_flow_sources(self, older_than: float) -> int:
        in_use = {
            (s.flow, s.flow_version)
            for s, _ in self._sessions.values()
            if s.status is not ConversationStatus.ENDED
        }
        gone = [
            key
            for key, (_, marked) in self._flow_sources.items()
            if marked < older_than and key not in in_use
        ]
        for key in gone:
            del self._flow_sources[key]
        return len(gone)

"""Flow versions: which version of its flow each conversation runs on.

Every loaded flow has a version, the hash of its file's content (``FlowSpec.version``), and
every conversation stores the version it started on (``Session.flow_version``). When the
flows are reloaded (``convo serve --reload``, SIGHUP: :meth:`FlowVersions.replace`), new
conversations start on the new version, and a live one **continues on the version it
started on until it ends**: the replaced version is kept in memory while conversations
need it (:meth:`FlowVersions.keep_only` forgets those nobody runs on any more).

A flow's new version may declare ``renamed: {old_step: new_step}`` (an empty mapping
too): then live conversations on older versions move forward to it at their next turn,
each on its step's new name (or the same name when the step kept it). A conversation on a
step the new version lacks, and that ``renamed`` does not map, stays on its old version.

Versions outlive the process through the store (:class:`~convo.store.base.FlowSources`):
:meth:`FlowVersions.save_current` keeps the source of every current version there (the
runtime calls it at start, after each reload and every minute, which also marks the
version as still current), and :meth:`FlowVersions.flow_of` reads a conversation's
version back from the store when this process lacks it, after a restart or when another
process (``convo serve --workers``) loaded it. The source read back is checked as a file
is at load (with the bot's hooks) and must hash to the version asked for; it is then kept
in memory like a replaced version, until no open conversation runs on it.

Only when the store has no source for a conversation's version either (it was loaded by a
convo that did not keep sources, or its source failed to load again) does the
conversation continue on the current version, when its step is still there (or renamed);
otherwise :meth:`FlowVersions.for_session` gives None and the caller must not restart it
silently (the engine answers with the flow's error text, keeps the conversation where it
is and logs what to do: declare the rename and reload).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping

from convo.exceptions import ConvoError
from convo.flow.loader import load_flow_text
from convo.flow.outputs import LoadedFlow
from convo.models import Session
from convo.store.base import FlowSource, FlowSources

__all__ = ["FlowVersions"]

log = logging.getLogger("convo.flow")


class FlowVersions:
    """The current version of each flow by id, and the older ones still in use.

    ``sources``: where versions are kept across restarts and processes (the store); None
    keeps them in memory only. ``hooks``: the bot's hook names, to check a version read
    back from ``sources`` as the loader checks a file (None: unchecked)."""

    def __init__(
        self,
        flows: Mapping[str, LoadedFlow],
        *,
        sources: FlowSources | None = None,
        hooks: Collection[str] | None = None,
    ) -> None:
        self.current: dict[str, LoadedFlow] = dict(flows)
        self._older: dict[tuple[str, str], LoadedFlow] = {}
        self.sources = sources
        self.hooks = hooks

    def __repr__(self) -> str:
        return f"<FlowVersions current={sorted(self.current)} older={len(self._older)}>"

    def replace(self, flows: Mapping[str, LoadedFlow]) -> list[str]:
        """Make ``flows`` the current versions (flows not named keep theirs); a replaced
        version is kept for the conversations on it. Returns the ids whose version
        changed."""
        changed = []
        for flow_id, loaded in flows.items():
            before = self.current.get(flow_id)
            if before is not None and before.spec.version == loaded.spec.version:
                continue
            if before is not None:
                self._older[(flow_id, before.spec.version)] = before
            self._older.pop((flow_id, loaded.spec.version), None)  # back to an old version
            self.current[flow_id] = loaded
            changed.append(flow_id)
        return changed

    def keep_only(self, in_use: set[tuple[str, str]]) -> int:
        """Forget the older versions no ``(flow, version)`` of ``in_use`` names (the
        versions open conversations run on); returns how many were forgotten."""
        gone = [key for key in self._older if key not in in_use]
        for key in gone:
            del self._older[key]
        return len(gone)

    def counts(self) -> dict[str, int]:
        """Flow id -> how many of its versions are in memory (current included)."""
        out = dict.fromkeys(self.current, 1)
        for flow_id, _ in self._older:
            out[flow_id] = out.get(flow_id, 0) + 1
        return out

    async def save_current(self, now: float) -> int:
        """Keep the source of every current version in ``sources`` (once each) and mark it
        as current at ``now``; returns how many were new there. Flows built in code (no
        source text) are skipped: there is nothing to read back."""
        if self.sources is None:
            return 0
        new = 0
        for loaded in list(self.current.values()):
            spec = loaded.spec
            if spec.source:
                source = FlowSource(spec.id, spec.version, spec.path, spec.source)
                new += await self.sources.save_flow_source(source, now)
        return new

    async def flow_of(self, session: Session) -> LoadedFlow | None:
        """:meth:`for_session`, once ``session``'s version has been read back from
        ``sources`` when it is neither current nor in memory (module docstring)."""
        current = self.current.get(session.flow)
        if current is not None and current.spec.version == session.flow_version:
            return current  # nearly every turn: no coroutine to recall what is at hand
        await self.recall(session.flow, session.flow_version)
        return self.for_session(session)

    async def recall(self, flow_id: str, version: str) -> bool:
        """Whether version ``version`` of ``flow_id`` is in memory, reading it back from
        ``sources`` when it is not. A source that no longer loads, or does not hash to
        ``version``, is logged and not used."""
        current = self.current.get(flow_id)
        if (current is not None and current.spec.version == version) or (
            (flow_id, version) in self._older
        ):
            return True
        if self.sources is None:
            return False
        source = await self.sources.flow_source(flow_id, version)
        if source is None:
            return False
        try:
            # Parsing and checking a file blocks: in a thread, as a reload does.
            spec = await asyncio.to_thread(
                load_flow_text, source.text, source.name, hooks=self.hooks
            )
            loaded = LoadedFlow.build(spec)
        except ConvoError as exc:
            log.error("version %s of flow %s is kept but does not load: %s", version, flow_id, exc)
            return False
        if (spec.id, spec.version) != (flow_id, version):
            log.error(
                "the source kept for version %s of flow %s is flow %s version %s: not used",
                version,
                flow_id,
                spec.id,
                spec.version,
            )
            return False
        self._older.setdefault((flow_id, version), loaded)
        log.info(
            "version %s of flow %s read back from the store (%s)", version, flow_id, source.name
        )
        return True

    def for_session(self, session: Session) -> LoadedFlow | None:
        """The version ``session`` runs on (module docstring). When it moves forward to
        the current version, ``session``'s ``flow_version`` and ``step`` (and its timer's
        step) are changed to say so; saving the session makes it stick. None when the
        flow is not loaded at all, or its version is gone and the current one has no
        such step."""
        current = self.current.get(session.flow)
        older = self._older.get((session.flow, session.flow_version))
        if current is None:
            return older
        if current.spec.version == session.flow_version:
            return current
        renamed = current.spec.renamed
        if renamed is not None and self._move(session, current, renamed):
            return current
        if older is not None:
            return older
        # Its version is not in memory (a restart since): on the current version if the
        # step is still there, under its own name or a declared new one.
        if self._move(session, current, renamed or {}):
            return current
        return None

    @staticmethod
    def _move(session: Session, current: LoadedFlow, renamed: Mapping[str, str]) -> bool:
        step = renamed.get(session.step, session.step)
        if step not in current.spec.steps:
            return False
        log.info(
            "%s moves from version %s to %s of flow %s%s",
            session.key,
            session.flow_version,
            current.spec.version,
            session.flow,
            f" (step {session.step!r} is now {step!r})" if step != session.step else "",
        )
        if session.timer_step == session.step:
            session.timer_step = step
        session.step = step
        session.flow_version = current.spec.version
        return True

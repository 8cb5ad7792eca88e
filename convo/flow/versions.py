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

After a restart only the current files are loaded: a conversation whose version is gone
continues on the current version when its step is still there (or renamed); otherwise
:meth:`FlowVersions.for_session` gives None and the caller must not restart it silently
(the engine answers with the flow's error text, keeps the conversation where it is and
logs what to do: declare the rename and reload).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from convo.flow.outputs import LoadedFlow
from convo.models import Session

__all__ = ["FlowVersions"]

log = logging.getLogger("convo.flow")


class FlowVersions:
    """The current version of each flow by id, and the older ones still in use."""

    def __init__(self, flows: Mapping[str, LoadedFlow]) -> None:
        self.current: dict[str, LoadedFlow] = dict(flows)
        self._older: dict[tuple[str, str], LoadedFlow] = {}

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

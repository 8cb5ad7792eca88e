"""What every voice simulator does with calls besides its REST API: ring convo, play the
caller (``convo.simulators.telefoon_voice_caller.Caller``, in the provider's dialect) and
keep the transcripts.

:class:`CallPlayer` is a mixin: the simulator sets ``webhook_base``, ``name`` and
``_caller`` and calls :meth:`_init_calls`. An inbound call is :meth:`place_call`; a call
convo asks for through the REST API is :meth:`_answer_outbound`, played in a tracked task
with the inputs queued for its callee (:meth:`queue_answer_inputs`); :meth:`drain` waits
for those, :meth:`aclose` (also on the app's cleanup) cancels them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from convo.simulators.telefoon_voice_caller import Caller, CallTranscript, check_inputs


class CallPlayer:
    """Mixin: calls played against convo's voice webhooks (module docstring)."""

    app: web.Application
    webhook_base: str | None
    name: str
    _caller: Caller

    def _init_calls(self) -> None:
        self.calls: dict[str, dict[str, Any]] = {}
        self._answer_inputs: dict[str, deque[Sequence[str | None]]] = {}
        self._tasks: set[asyncio.Task[CallTranscript]] = set()
        self.app.on_cleanup.append(self._on_cleanup)

    @property
    def transcripts(self) -> dict[str, CallTranscript]:
        """Every simulated call so far, by call id."""
        return self._caller.transcripts

    def queue_answer_inputs(self, to: str, inputs: Sequence[str | None]) -> None:
        """Inputs the callee at ``to`` gives when the next outbound call to them is answered."""
        check_inputs(inputs)
        self._answer_inputs.setdefault(to, deque()).append(list(inputs))

    async def drain(self) -> None:
        """Wait until every outbound call the simulator is playing has ended."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._caller.aclose()

    async def _on_cleanup(self, _app: web.Application) -> None:
        await self.aclose()

    def _webhook(self, route: str) -> str:
        if self.webhook_base is None:
            raise RuntimeError(f"{type(self).__name__}: webhook_base is not set")
        return f"{self.webhook_base}/webhooks/{self.name}/voice/{route}"

    async def place_call(
        self, caller: str, line: str, inputs: Sequence[str | None] = ()
    ) -> CallTranscript:
        """Call ``line`` from ``caller`` and act out convo's answers; ``ValueError`` if an
        input is neither DTMF keys, ``"say:..."``, ``"dial:STATUS"`` nor None."""
        check_inputs(inputs)
        call = self._new_call(caller, line, "inbound", status="ringing")
        return await self._caller.run(
            call, self._webhook("answer"), self._webhook("status"), inputs
        )

    def _new_call(self, from_: str, to: str, direction: str, status: str) -> dict[str, Any]:
        raise NotImplementedError

    def _answer_outbound(self, call: dict[str, Any], answer_url: str, status_url: str) -> None:
        """Play a call convo asked for, with the inputs queued for its callee."""
        queued = self._answer_inputs.get(call["to"])
        inputs = queued.popleft() if queued else ()
        task = asyncio.ensure_future(self._caller.run(call, answer_url, status_url, inputs))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

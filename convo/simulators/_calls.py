"""What every voice simulator does with calls besides its REST API: ring convo, play the
caller (``convo.simulators.telefoon_voice_caller.Caller``, in the provider's dialect), keep
the transcripts, and the calls part of the ``/_simulator/`` control API.

:class:`CallPlayer` is a mixin: the simulator sets ``webhook_base``, ``name`` and
``_caller`` and calls :meth:`_init_calls`. An inbound call is :meth:`place_call` (scripted)
or :meth:`start_live_call`; a call convo asks for through the REST API is
:meth:`_answer_outbound`, played in a tracked task with the inputs queued for its callee
(:meth:`queue_answer_inputs`, or :meth:`answer_live` for a callee driven live);
:meth:`drain` waits for those, :meth:`aclose` (also on the app's cleanup) cancels them.

Control API (not part of any provider's API; no credentials; JSON in and out):

* ``GET /_simulator/calls``: every call, oldest first: ``{"calls": [{"call_id", "from",
  "to", "direction", "status", "live", "ended_by"}]}`` (``ended_by`` "" while it runs);
* ``POST /_simulator/calls`` ``{"from", "to", "inputs": [...], "live": false}``: the phone
  ``from`` calls our line ``to``. Scripted (default): played to the end with ``inputs``
  (``"12"`` keys, ``"say:words"``, null for silence, ``"dial:busy"`` for a dialled party's
  outcome), answered with the transcript. ``"live": true``: answered at once with ``{"call_id"}``
  (201); the caller then waits at each Gather or Record for the next input given below;
* ``POST /_simulator/calls/{id}/keys`` ``{"keys": "1#"}``, ``.../say`` ``{"text": "..."}``,
  ``.../silence``: the live caller's next input (202); ``.../hangup``: the caller hangs up
  (202). 404 for an unknown call, 409 for a call that is not live or has ended, 400 for
  bad input;
* ``GET /_simulator/calls/{id}/transcript``: what the call went through so far
  (``says``, ``steps``, ``ended_by``, ``error``, ...);
* ``POST /_simulator/answers`` ``{"to", "inputs": [...]}`` or ``{"to", "live": true}``: how
  the callee ``to`` answers convo's next outbound call to them (scripted, or live: then
  driven by the routes above with the call id ``convo call`` printed).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import deque
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from convo.simulators._callbacks import CONTROL_PREFIX
from convo.simulators.telefoon_voice_caller import (
    Caller,
    CallerInputs,
    CallTranscript,
    check_inputs,
)

CALLS = CONTROL_PREFIX + "calls"


def transcript_json(transcript: CallTranscript) -> dict[str, Any]:
    """A transcript as the control API returns it (documents without their bodies)."""
    return {
        "call_id": transcript.call_id,
        "caller": transcript.caller,
        "line": transcript.line,
        "direction": transcript.direction,
        "says": [{"text": text, "language": lang} for text, lang in transcript.says],
        "steps": [dataclasses.asdict(step) for step in transcript.steps],
        "webhooks": [
            {"url": doc.url, "status": doc.status, "content_type": doc.content_type}
            for doc in transcript.documents
        ],
        "ended_by": transcript.ended_by,
        "error": transcript.error,
        "status_code": transcript.status_code,
    }


class CallPlayer:
    """Mixin: calls played against convo's voice webhooks (module docstring)."""

    app: web.Application
    webhook_base: str | None
    name: str
    _caller: Caller

    def _init_calls(self) -> None:
        self.calls: dict[str, dict[str, Any]] = {}
        self._answer_inputs: dict[str, deque[Sequence[str | None] | None]] = {}
        self._live: dict[str, CallerInputs] = {}
        self._tasks: set[asyncio.Task[CallTranscript]] = set()
        self.app.on_cleanup.append(self._on_cleanup)
        router = self.app.router
        router.add_get(CALLS, self._control_list)
        router.add_post(CALLS, self._control_call)
        router.add_post(CALLS + "/{call_id}/keys", self._control_keys)
        router.add_post(CALLS + "/{call_id}/say", self._control_say)
        router.add_post(CALLS + "/{call_id}/silence", self._control_silence)
        router.add_post(CALLS + "/{call_id}/hangup", self._control_hangup)
        router.add_get(CALLS + "/{call_id}/transcript", self._control_transcript)
        router.add_post(CONTROL_PREFIX + "answers", self._control_answers)

    @property
    def transcripts(self) -> dict[str, CallTranscript]:
        """Every simulated call so far, by call id."""
        return self._caller.transcripts

    def queue_answer_inputs(self, to: str, inputs: Sequence[str | None]) -> None:
        """Inputs the callee at ``to`` gives when the next outbound call to them is answered."""
        check_inputs(inputs)
        self._answer_inputs.setdefault(to, deque()).append(list(inputs))

    def answer_live(self, to: str) -> None:
        """The next outbound call to ``to`` is answered by a live callee (inputs given
        through :meth:`live_input`, or the control API, while it runs)."""
        self._answer_inputs.setdefault(to, deque()).append(None)

    def live_input(self, call_id: str) -> CallerInputs:
        """The inputs of live call ``call_id``; ``KeyError`` for a call that is not live."""
        return self._live[call_id]

    async def drain(self) -> None:
        """Wait until every call the simulator is playing in the background has ended."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def aclose(self) -> None:
        for inputs in self._live.values():
            inputs.hang_up()
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

    def start_live_call(self, caller: str, line: str) -> str:
        """Call ``line`` from ``caller`` in the background, the caller driven live
        (:meth:`live_input`); returns the call id."""
        answer, status = self._webhook("answer"), self._webhook("status")
        call = self._new_call(caller, line, "inbound", status="ringing")
        self._play(call, answer, status, self._live_inputs(call["id"]))
        return str(call["id"])

    def _new_call(self, from_: str, to: str, direction: str, status: str) -> dict[str, Any]:
        raise NotImplementedError

    def _live_inputs(self, call_id: str) -> CallerInputs:
        inputs = self._live[call_id] = CallerInputs(live=True)
        return inputs

    def _play(
        self,
        call: dict[str, Any],
        answer_url: str,
        status_url: str,
        inputs: Sequence[str | None] | CallerInputs,
    ) -> None:
        task = asyncio.ensure_future(self._caller.run(call, answer_url, status_url, inputs))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _answer_outbound(self, call: dict[str, Any], answer_url: str, status_url: str) -> None:
        """Play a call convo asked for, with the inputs queued for its callee."""
        queued = self._answer_inputs.get(call["to"])
        given = queued.popleft() if queued else ()
        inputs = self._live_inputs(call["id"]) if given is None else given
        self._play(call, answer_url, status_url, inputs)

    # -- the control API ---------------------------------------------------------------

    @staticmethod
    def _bad(status: int, message: str) -> web.Response:
        return web.json_response({"error": message}, status=status)

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            raise web.HTTPBadRequest(
                text=json.dumps({"error": "the body is not JSON"}), content_type="application/json"
            ) from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(
                text=json.dumps({"error": "the body must be a JSON object"}),
                content_type="application/json",
            )
        return body

    def _summary(self, call: dict[str, Any]) -> dict[str, Any]:
        transcript = self._caller.transcripts.get(call["id"])
        return {
            "call_id": call["id"],
            "from": call["from"],
            "to": call["to"],
            "direction": call["direction"],
            "status": call["status"],
            "live": call["id"] in self._live,
            "ended_by": transcript.ended_by if transcript else "",
        }

    async def _control_list(self, request: web.Request) -> web.Response:
        return web.json_response({"calls": [self._summary(c) for c in self.calls.values()]})

    async def _control_call(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        caller, line = body.get("from"), body.get("to")
        if not isinstance(caller, str) or not caller or not isinstance(line, str) or not line:
            return self._bad(400, "'from' and 'to' are required numbers")
        inputs = body.get("inputs", [])
        live = body.get("live", False)
        if not isinstance(live, bool):
            return self._bad(400, "'live' must be true or false")
        if not isinstance(inputs, list) or (live and inputs):
            return self._bad(400, "'inputs' must be a list (and is not given on a live call)")
        try:
            check_inputs(inputs)
        except ValueError as exc:
            return self._bad(400, str(exc))
        if self.webhook_base is None:
            return self._bad(409, "the simulator does not know convo's URL (webhook_base)")
        if live:
            return web.json_response({"call_id": self.start_live_call(caller, line)}, status=201)
        transcript = await self.place_call(caller, line, inputs)
        return web.json_response(transcript_json(transcript))

    def _give(self, request: web.Request, given: str | None) -> web.Response:
        call_id = request.match_info["call_id"]
        if call_id not in self.calls:
            return self._bad(404, f"no call {call_id}")
        inputs = self._live.get(call_id)
        transcript = self._caller.transcripts.get(call_id)
        if inputs is None or inputs.hung_up or (transcript is not None and transcript.ended_by):
            return self._bad(409, f"call {call_id} is not a live call in progress")
        try:
            inputs.give(given)
        except ValueError as exc:
            return self._bad(400, str(exc))
        return web.json_response({"call_id": call_id, "input": given}, status=202)

    async def _control_keys(self, request: web.Request) -> web.Response:
        keys = (await self._body(request)).get("keys")
        if not isinstance(keys, str) or not keys:
            return self._bad(400, "'keys' must be DTMF keys (0-9, * and #)")
        if keys.startswith(("say:", "dial:")):
            return self._bad(400, f"'keys' must be DTMF keys (0-9, * and #), got {keys!r}")
        return self._give(request, keys)

    async def _control_say(self, request: web.Request) -> web.Response:
        text = (await self._body(request)).get("text")
        if not isinstance(text, str) or not text.strip():
            return self._bad(400, "'text' must be the words the caller says")
        return self._give(request, "say:" + text)

    async def _control_silence(self, request: web.Request) -> web.Response:
        return self._give(request, None)

    async def _control_hangup(self, request: web.Request) -> web.Response:
        call_id = request.match_info["call_id"]
        if call_id not in self.calls:
            return self._bad(404, f"no call {call_id}")
        inputs = self._live.get(call_id)
        if inputs is None or inputs.hung_up:
            return self._bad(409, f"call {call_id} is not a live call in progress")
        inputs.hang_up()
        return web.json_response({"call_id": call_id, "hung_up": True}, status=202)

    async def _control_transcript(self, request: web.Request) -> web.Response:
        call_id = request.match_info["call_id"]
        transcript = self._caller.transcripts.get(call_id)
        if transcript is None:
            return self._bad(404, f"no call {call_id} has been played")
        return web.json_response(transcript_json(transcript))

    async def _control_answers(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        to, inputs, live = body.get("to"), body.get("inputs", []), body.get("live", False)
        if not isinstance(to, str) or not to:
            return self._bad(400, "'to' is the callee's number")
        if not isinstance(live, bool) or not isinstance(inputs, list) or (live and inputs):
            return self._bad(400, "give 'inputs' (a list) or 'live': true, not both")
        if live:
            self.answer_live(to)
        else:
            try:
                self.queue_answer_inputs(to, inputs)
            except ValueError as exc:
                return self._bad(400, str(exc))
        return web.json_response({"to": to, "live": live}, status=201)

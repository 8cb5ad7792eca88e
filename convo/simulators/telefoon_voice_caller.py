"""The caller's side of the Telefoon Voice simulator: a person who listens and presses keys.

:meth:`Caller.run` posts a signed form (``call_id, from, to, direction, status``,
``X-Signature`` = hex HMAC-SHA256 of the body) to the answer URL, reads the XML or JSON
document convo returns (``convo.voice.twiml.parse_document``) and acts it out: Say, Play and
Pause are recorded; each Gather takes the next input (``"1234"`` digits, ``"say:words"``
speech, ``None`` silence: a post with no input field) and posts it to its action URL (the
document's URL when it has none); a Record takes the next input too (None: nothing
recorded, anything else: a fake recording URL of 5 s) and posts to its action if any; Dial
and its Number/Sip/Conference are recorded (and its action followed, with ``dial_status``
from a ``"dial:busy"``-style input, else ``completed``); Redirect is
followed; Hangup ends the call. The call also ends when the instructions run out, or when a
Gather finds no input left (the caller hangs up). Then ``completed`` is posted to the status
URL. Everything lands in a :class:`CallTranscript`.

The inputs are a :class:`CallerInputs`: given all at once (a scripted call), or, on a live
call, one by one while it runs (the simulators' control API: a key press, words, a hang-up);
a live caller waits at a Gather or Record for the next one.

What differs between providers is a :class:`Dialect`: the fields a webhook carries, how it
is encoded and signed, and how the answer reads as call-document nodes. The Telefoon one
(:class:`TelefoonDialect`) is the default; the Twilio and Vonage Voice simulators bring
their own, so every voice simulator plays calls the same way.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol
from urllib.parse import urlencode, urljoin

import httpx

from convo.providers.telefoon_voice_webhook import SIGNATURE_HEADER, sign
from convo.voice.twiml import Node, parse_document

_DTMF = frozenset("0123456789*#")


@dataclass(slots=True)
class Step:
    """One instruction the caller heard or did: ``verb``, its attributes, its text (the
    spoken text, the dialled number, the room), and for Gather/Record the input given."""

    verb: str
    attrs: dict[str, str]
    text: str = ""
    input: str | None = None


@dataclass(slots=True)
class Document:
    """One webhook exchange: where we posted, what convo answered."""

    url: str
    status: int
    content_type: str
    body: bytes
    nodes: list[Node] = field(default_factory=list)


@dataclass(slots=True)
class CallTranscript:
    """Everything one simulated call went through, for assertions.

    ``ended_by``: ``hangup`` (a Hangup verb), ``end`` (instructions ran out), ``caller``
    (no inputs left at a Gather), ``error`` (non-2xx or unreadable document, see
    ``error``) or ``loop`` (too many webhooks). ``status_code`` is convo's answer to the
    final ``completed`` status post.
    """

    call_id: str
    caller: str
    line: str
    direction: str = "inbound"
    documents: list[Document] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    ended_by: str = ""
    error: str = ""
    status_code: int | None = None

    def of(self, verb: str) -> list[Step]:
        return [step for step in self.steps if step.verb == verb]

    @property
    def says(self) -> list[tuple[str, str]]:
        """``(text, language)`` of every Say, in order (language "" when not given)."""
        return [(s.text, s.attrs.get("language", "")) for s in self.of("Say")]

    @property
    def gathers(self) -> list[Step]:
        return self.of("Gather")

    @property
    def dials(self) -> list[Step]:
        return self.of("Number") + self.of("Sip")

    @property
    def hangup(self) -> bool:
        return self.ended_by == "hangup"


def input_fields(given: str | None, where: str) -> dict[str, str]:
    if given is None:
        return {}
    if given.startswith("dial:"):
        return {"dial_status": given[5:] or "completed"}
    if given.startswith("say:"):
        return {"speech_result": given[4:], "confidence": "0.9"}
    if not given or not set(given) <= _DTMF:
        raise ValueError(f"{where}: input {given!r} is neither DTMF keys nor 'say:...'")
    return {"digits": given}


def check_inputs(inputs: Sequence[str | None]) -> None:
    for i, given in enumerate(inputs):
        input_fields(given, f"inputs[{i}]")


class CallerInputs:
    """What the caller of one call will press or say, in order (``input_fields`` forms).

    Scripted (``live`` False): the inputs given at the start are all there will be. Live:
    :meth:`give` adds one while the call runs and :meth:`hang_up` ends it; :meth:`wait`
    blocks until one of those happens."""

    def __init__(self, given: Sequence[str | None] = (), *, live: bool = False) -> None:
        check_inputs(given)
        self.live = live
        self.hung_up = False
        self._queue: deque[str | None] = deque(given)
        self._changed = asyncio.Event()

    def __bool__(self) -> bool:
        return bool(self._queue)

    def peek(self) -> str | None:
        """The next input (None when there is none or it is silence)."""
        return self._queue[0] if self._queue else None

    def popleft(self) -> str | None:
        return self._queue.popleft()

    def give(self, given: str | None) -> None:
        """One more input (``ValueError`` if it is not one); ``RuntimeError`` once the
        caller hung up."""
        if self.hung_up:
            raise RuntimeError("the caller hung up")
        input_fields(given, "input")
        self._queue.append(given)
        self._changed.set()

    def hang_up(self) -> None:
        """The caller hangs up after what they already pressed or said: those inputs are
        still used, in the order given (a person's actions happen in order, however the
        requests that report them race), then waiting ends."""
        self.hung_up = True
        self._changed.set()

    async def wait(self) -> bool:
        """True when an input is there to take; on a live call waits for one. False when
        none will come (scripted inputs used up, or the caller hung up)."""
        while not self._queue:
            if self.hung_up or not self.live:
                return False
            self._changed.clear()
            await self._changed.wait()
        return True


class Dialect(Protocol):
    """How one provider's webhooks look to the caller."""

    #: The key its webhooks are signed with (a test may change it to forge them).
    secret: str

    #: Whether the call ends at the end of a document without a Hangup (Vonage's NCCO).
    end_is_hangup: ClassVar[bool]
    #: Whether a Record's action answers with the next document (else it is only told).
    record_answers: ClassVar[bool]
    #: Whether a Gather that hears nothing goes on to the next verb (Twilio) instead of
    #: posting an empty result to its action.
    silence_falls_through: ClassVar[bool]

    def call_fields(self, call: Mapping[str, Any], route: str) -> dict[str, Any]:
        """The fields of a webhook about ``call`` to ``route`` (answer, input, dial,
        record, status)."""
        ...

    def input_fields(self, given: str | None, where: str) -> dict[str, Any]:
        """A Gather's result: DTMF keys, ``"say:..."`` speech, or None for silence."""
        ...

    def dial_fields(self, outcome: str) -> dict[str, Any]:
        """A Dial's outcome (``completed``, ``busy``, ``no-answer``, ``failed``)."""
        ...

    def recording_fields(self, url: str | None) -> dict[str, Any]:
        """A Record's result (None: nothing was recorded)."""
        ...

    def request(self, url: str, fields: Mapping[str, Any]) -> tuple[bytes, dict[str, str]]:
        """The body and headers (signed) of a webhook post."""
        ...

    def parse(self, body: bytes, content_type: str) -> list[Node]:
        """The answer as document nodes; ``ValueError`` if unreadable."""
        ...


class TelefoonDialect:
    """Telefoon Voice: signed forms, TwiML-style XML or JSON answers."""

    end_is_hangup: ClassVar[bool] = False
    record_answers: ClassVar[bool] = True
    silence_falls_through: ClassVar[bool] = False

    def __init__(self, webhook_secret: str) -> None:
        self.secret = webhook_secret

    def call_fields(self, call: Mapping[str, Any], route: str) -> dict[str, Any]:
        keys = ("from", "to", "direction", "status")
        fields = {"call_id": call["id"]} | {k: str(call[k]) for k in keys}
        if route == "status":
            fields["duration"] = str(call.get("duration", 0))
        return fields

    def input_fields(self, given: str | None, where: str) -> dict[str, Any]:
        return input_fields(given, where)

    def dial_fields(self, outcome: str) -> dict[str, Any]:
        return {"dial_status": outcome}

    def recording_fields(self, url: str | None) -> dict[str, Any]:
        return {} if url is None else {"recording_url": url, "recording_duration": "5"}

    def request(self, url: str, fields: Mapping[str, Any]) -> tuple[bytes, dict[str, str]]:
        body = urlencode(fields).encode("ascii")
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            SIGNATURE_HEADER: sign(self.secret, body),
        }
        return body, headers

    def parse(self, body: bytes, content_type: str) -> list[Node]:
        return parse_document(body, content_type)


class Caller:
    """Plays the caller in simulated calls; ``transcripts`` keeps every call by id.

    ``max_webhooks`` bounds one call (a flow that redirects forever ends as ``loop``).
    """

    def __init__(
        self,
        webhook_secret: str = "",
        *,
        max_webhooks: int = 50,
        dialect: Dialect | None = None,
        media_host: str = "recordings.telefoon.invalid",
    ) -> None:
        self.dialect: Dialect = dialect or TelefoonDialect(webhook_secret)
        self.max_webhooks = max_webhooks
        self.media_host = media_host
        self.transcripts: dict[str, CallTranscript] = {}
        self._client: httpx.AsyncClient | None = None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def fields(self, call: Mapping[str, Any], route: str = "input") -> dict[str, Any]:
        """The fields every webhook of ``call`` to ``route`` carries."""
        return self.dialect.call_fields(call, route)

    async def post(self, url: str, fields: Mapping[str, Any]) -> httpx.Response:
        """POST ``fields`` to ``url``, encoded and signed as the dialect says."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=10)
        body, headers = self.dialect.request(url, fields)
        return await self._client.post(url, content=body, headers=headers)

    async def run(
        self,
        call: dict[str, Any],
        answer_url: str,
        status_url: str | None,
        inputs: Sequence[str | None] | CallerInputs,
    ) -> CallTranscript:
        """Act out one call (``call`` is the simulator's record, updated in place)."""
        inbound = call["direction"] == "inbound"
        transcript = CallTranscript(
            call["id"],
            caller=call["from"] if inbound else call["to"],
            line=call["to"] if inbound else call["from"],
            direction=call["direction"],
        )
        self.transcripts[call["id"]] = transcript
        call["status"] = "in-progress"
        pending = inputs if isinstance(inputs, CallerInputs) else CallerInputs(inputs)
        url: str | None = answer_url
        extra: dict[str, Any] = {}
        route = "answer"
        while url is not None:
            if len(transcript.documents) >= self.max_webhooks:
                transcript.ended_by = "loop"
                break
            nodes = await self._fetch(url, self.fields(call, route) | extra, transcript)
            if nodes is None:
                break
            url, extra, route = await self._act(call, nodes, url, pending, transcript)
        answered = any(doc.status < 300 for doc in transcript.documents)
        call["status"] = "completed" if answered else "failed"
        call["duration"] = len(transcript.documents)
        if status_url:
            fields = self.fields(call, "status")
            try:
                transcript.status_code = (await self.post(status_url, fields)).status_code
            except httpx.HTTPError as exc:
                transcript.error = transcript.error or f"cannot reach {status_url}: {exc}"
        return transcript

    async def _fetch(
        self, url: str, fields: Mapping[str, Any], transcript: CallTranscript
    ) -> list[Node] | None:
        try:
            response = await self.post(url, fields)
        except httpx.HTTPError as exc:  # an unreachable bot fails the call, not the simulator
            transcript.ended_by, transcript.error = "error", f"cannot reach {url}: {exc}"
            return None
        ctype = response.headers.get("Content-Type", "")
        doc = Document(url, response.status_code, ctype, response.content)
        transcript.documents.append(doc)
        if not response.is_success:
            transcript.ended_by, transcript.error = "error", f"{url} answered {doc.status}"
            return None
        try:
            doc.nodes = self.dialect.parse(response.content, ctype)
        except ValueError as exc:
            transcript.ended_by, transcript.error = "error", f"{url}: {exc}"
            return None
        return doc.nodes

    async def _act(
        self,
        call: Mapping[str, Any],
        nodes: list[Node],
        url: str,
        pending: CallerInputs,
        transcript: CallTranscript,
    ) -> tuple[str | None, dict[str, Any], str]:
        """Play one document; the next URL to post to (None: the call ends), its input
        fields and the route it reports to."""
        dialect = self.dialect

        def record(node: Node, given: str | None = None) -> None:
            attrs = {k: v for k in node.attrs if (v := node.get(k)) is not None}
            transcript.steps.append(Step(node.verb, attrs, node.text, given))

        for node in nodes:
            action = urljoin(url, node.get("action") or url)
            if node.verb == "Gather":
                for child in node.children:
                    record(child)
                if not await pending.wait():
                    transcript.ended_by = "caller"
                    return None, {}, ""
                given = pending.popleft()
                record(node, given)
                if given is None and dialect.silence_falls_through:
                    continue
                where = f"Gather {len(transcript.gathers)}"
                return action, dialect.input_fields(given, where), "input"
            if node.verb == "Record":
                if not await pending.wait() and pending.hung_up:
                    record(node)
                    transcript.ended_by = "caller"
                    return None, {}, ""
                given = pending.popleft() if pending else None
                record(node, given)
                n = len(transcript.of("Record"))
                media = f"https://{self.media_host}/{transcript.call_id}/{n}.wav"
                fields = dialect.recording_fields(None if given is None else media)
                if node.get("action"):
                    if dialect.record_answers:
                        return action, fields, "record"
                    # The recording is only reported; the document goes on.
                    await self._fetch(action, self.fields(call, "record") | fields, transcript)
            elif node.verb == "Dial":
                # The dialled party's outcome: the next input if it is "dial:STATUS"
                # (busy, no-answer, failed, completed), else the callee answered.
                given = "dial:completed"
                if (pending.peek() or "").startswith("dial:"):
                    given = pending.popleft() or given
                record(node, given)
                for child in node.children:
                    record(child)
                if node.get("action"):
                    return action, dialect.dial_fields(given[5:] or "completed"), "dial"
            elif node.verb == "Redirect":
                record(node)
                return urljoin(url, node.text), {}, "input"
            elif node.verb == "Hangup":
                record(node)
                transcript.ended_by = "hangup"
                return None, {}, ""
            else:  # Say, Play, Pause and verbs we do not know: heard, recorded
                record(node)
        transcript.ended_by = "hangup" if dialect.end_is_hangup else "end"
        return None, {}, ""

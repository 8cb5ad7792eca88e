"""Console pages about conversations and contacts.

* ``GET /console/conversations?flow=&step=&status=&page=``: the live list (line, contact,
  flow, step, status, last message, age), newest activity first, 50 a page. An htmx
  request gets the table alone: the page asks for it every few seconds, so new
  conversations and new messages appear without a reload.
* ``GET /console/contacts/{number}``: a contact's conversations (flow, step, slots,
  status), whether they opted out of each line, and the transcript of their messages both
  ways with each one's delivery status and error.
* ``GET /console/contacts/{number}/erase`` asks for confirmation, saying what goes;
  ``POST`` erases (:func:`convo.erasure.erase_contact`, as ``DELETE /api/contacts/...``)
  and shows the report.
"""

from __future__ import annotations

from aiohttp import web

from convo.erasure import erase_contact
from convo.models import ConversationStatus
from convo.sms.phone import normalize
from convo.store.base import ConversationQuery, MessageQuery
from convo.web.console.auth import console_page
from convo.web.console.render import html
from convo.web.state import RUNTIME, SETTINGS

PAGE_SIZE = 50
TRANSCRIPT_SIZE = 200
MAX_PAGE = 1_000_000


def page_number(request: web.Request) -> int:
    """``?page=`` as 1..MAX_PAGE; anything else is page 1."""
    raw = request.query.get("page", "")
    if raw.isascii() and raw.isdigit() and len(raw) <= 7:
        return min(max(int(raw), 1), MAX_PAGE)
    return 1


def _choice(request: web.Request, name: str, allowed: list[str]) -> str | None:
    value = request.query.get(name, "")
    return value if value in allowed else None


@console_page
async def conversations(request: web.Request) -> web.StreamResponse:
    runtime = request.app[RUNTIME]
    flows = sorted(runtime.flows)
    flow = _choice(request, "flow", flows)
    steps = sorted(
        {s for f, spec in runtime.flows.items() if flow in (None, f) for s in spec.steps}
    )
    step = _choice(request, "step", steps)
    statuses = [s.value for s in ConversationStatus]
    status = _choice(request, "status", statuses)
    page = page_number(request)
    rows, total = await runtime.store.list_conversations(
        ConversationQuery(
            flow=flow,
            step=step,
            status=None if status is None else ConversationStatus(status),
            page=page,
            page_size=PAGE_SIZE,
        )
    )
    pages = max(1, -(-total // PAGE_SIZE))
    filters = {k: v for k, v in (("flow", flow), ("step", step), ("status", status)) if v}
    template = "_conversations_table.html" if "HX-Request" in request.headers else None
    return html(
        request,
        template or "conversations.html",
        rows=rows,
        total=total,
        page=page,
        pages=pages,
        flows=flows,
        steps=steps,
        statuses=statuses,
        filters=filters,
    )


def _number(request: web.Request) -> str:
    return normalize(request.match_info["number"])  # InvalidNumber: 400


@console_page
async def contact(request: web.Request) -> web.StreamResponse:
    number = _number(request)
    runtime = request.app[RUNTIME]
    store = runtime.store
    sessions = await store.sessions_of(number)
    messages, total = await store.list_messages(
        MessageQuery(number=number, page_size=TRANSCRIPT_SIZE)
    )
    lines = sorted(
        {ln.number for ln in request.app[SETTINGS].lines} | {s.key.line for s in sessions}
    )
    opted_out = [line for line in lines if await store.is_suppressed(line, number)]
    return html(
        request,
        "contact.html",
        number=number,
        sessions=sessions,
        messages=list(reversed(messages)),
        total=total,
        shown=len(messages),
        opted_out=opted_out,
    )


@console_page
async def erase(request: web.Request) -> web.StreamResponse:
    number = _number(request)
    runtime = request.app[RUNTIME]
    if request.method == "GET":
        sessions = await runtime.store.sessions_of(number)
        _, total = await runtime.store.list_messages(MessageQuery(number=number, page_size=1))
        return html(request, "erase.html", number=number, sessions=len(sessions), messages=total)
    report = await erase_contact(runtime.store, runtime.providers, number)
    return html(request, "erased.html", number=number, report=report)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console/conversations", conversations)
    app.router.add_get("/console/contacts/{number}", contact)
    app.router.add_get("/console/contacts/{number}/erase", erase)
    app.router.add_post("/console/contacts/{number}/erase", erase)

"""Console page of the outbox: replies waiting, being sent, refused and dead, with retry.

* ``GET /console/outbox?view=queued|sending|failed|dead&page=``: one page (50) of the
  outbound messages in that state, newest first, with their attempts, next attempt and
  last error; the tabs show how many are in each state.
* ``POST /console/outbox/retry`` with ``ids`` (repeated) or ``all=1``: queue dead letters
  again (``Outbox.retry_dead``, as ``POST /api/outbox/retry``); the page then says how
  many went back to the queue.

``failed`` messages were refused by their provider for good (a bad number, say) and are
not retried: sending them again would be refused again.
"""

from __future__ import annotations

from aiohttp import web

from convo.models import Direction, MessageStatus
from convo.store.base import MessageQuery
from convo.web.console.auth import console_page, read_form
from convo.web.console.conversations import page_number
from convo.web.console.render import html
from convo.web.state import RUNTIME

VIEWS = ("queued", "sending", "failed", "dead")
PAGE_SIZE = 50
MAX_RETRY_IDS = 1000


@console_page
async def outbox(request: web.Request) -> web.StreamResponse:
    view = request.query.get("view", "queued")
    if view not in VIEWS:
        view = "queued"
    return await _page(request, view, requeued=None)


async def _page(request: web.Request, view: str, requeued: int | None) -> web.Response:
    runtime = request.app[RUNTIME]
    page = page_number(request)
    counts = {}
    for state in VIEWS:
        query = MessageQuery(direction=Direction.OUTBOUND, status=MessageStatus(state), page_size=1)
        counts[state] = (await runtime.store.list_messages(query))[1]
    if view == "dead":
        messages, total = await runtime.outbox.dead_letters(page, PAGE_SIZE)
    else:
        messages, total = await runtime.store.list_messages(
            MessageQuery(
                direction=Direction.OUTBOUND,
                status=MessageStatus(view),
                page=page,
                page_size=PAGE_SIZE,
            )
        )
    return html(
        request,
        "outbox.html",
        view=view,
        views=VIEWS,
        counts=counts,
        messages=messages,
        total=total,
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        requeued=requeued,
    )


@console_page
async def retry(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    ids = [v for v in form.getall("ids", []) if v][:MAX_RETRY_IDS]
    everything = form.get("all") == "1"
    if not everything and not ids:
        raise web.HTTPBadRequest(text="retry: choose dead letters, or all of them")
    done = await request.app[RUNTIME].outbox.retry_dead(None if everything else ids)
    return await _page(request, "dead", requeued=len(done))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console/outbox", outbox)
    app.router.add_post("/console/outbox/retry", retry)

"""A fake Telefonie SMS + MMS API for tests and local work.

The shared ``/messages`` machinery is in ``_telefoon_common``; what Telefonie adds is here:
``from`` must be an E.164 number, ``body`` is required only without ``media_url`` (an array
of http(s) URLs), ``validity_period`` is a positive integer, records carry ``num_media`` and
``date_updated``, statuses include ``receiving``, and ``GET /messages`` also filters on
``from``/``to``. :meth:`TelefonieSmsSimulator.deliver_inbound` takes ``media_urls`` for an
inbound MMS (sent as ``media_url`` + ``num_media``, the shape the adapter assumes), or
``media``: content the simulator serves itself at ``GET|HEAD /media/{id}`` (with
``Content-Type`` and ``Content-Length``, no API key: the URLs are unguessable), under
``media_base`` (its own URL: from the config section's ``base_url``, else the control API
takes it from the request). The control API's
``POST /_simulator/inbound`` takes an optional ``"media": [{"content_type", "base64"}]``.
``media_requests`` counts the requests made to ``/media/``.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit

from aiohttp import web

from convo.simulators._callbacks import webhook_answer
from convo.simulators._telefoon_common import (
    E164,
    TelefoonFamilySimulator,
    is_url,
    iso_now,
)


class TelefonieSmsSimulator(TelefoonFamilySimulator):
    """Fake Telefonie SMS/MMS; see :class:`TelefoonFamilySimulator` for the knobs."""

    statuses: ClassVar[frozenset[str]] = frozenset(
        {"queued", "sending", "sent", "delivered", "undelivered", "failed", "receiving", "received"}
    )
    list_filters: ClassVar[tuple[str, ...]] = ("from", "to")
    default_name: ClassVar[str] = "telefonie_sms"

    def __init__(self, *, media_base: str | None = None, **knobs: Any) -> None:
        """``media_base``: this simulator's own URL, under which it serves inbound media;
        ``knobs`` as :class:`TelefoonFamilySimulator`."""
        super().__init__(**knobs)
        self.media_base = media_base.rstrip("/") if media_base else None
        self.media: dict[str, tuple[str, bytes]] = {}  # id -> (content type, content)
        self.media_requests = 0
        self.app.router.add_get(MEDIA_PREFIX + "{media_id}", self._media)

    @classmethod
    def config_options(cls, section: Mapping[str, Any]) -> dict[str, Any]:
        """As the family's, plus ``media_base`` from the section's ``base_url`` (where
        convo reaches this simulator, which is also where convo's media allow-list looks
        by default)."""
        options = super().config_options(section)
        parts = urlsplit(str(section.get("base_url") or ""))
        if parts.scheme in ("http", "https") and parts.netloc:
            options["media_base"] = f"{parts.scheme}://{parts.netloc}"
        return options

    # -- media it serves (inbound MMS) --------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith(MEDIA_PREFIX):  # capability URLs: no API key
            self.media_requests += 1
            response: web.StreamResponse = await handler(request)
            return response
        return await super()._guard(request, handler)

    def add_media(self, content_type: str, content: bytes) -> str:
        """Serve ``content`` as ``content_type``; returns its URL (needs ``media_base``)."""
        if not self.media_base:
            raise RuntimeError("media_base is not set: under which URL is the simulator?")
        media_id = "ME" + uuid.uuid4().hex
        self.media[media_id] = (content_type, content)
        return f"{self.media_base}{MEDIA_PREFIX}{media_id}"

    async def _media(self, request: web.Request) -> web.Response:
        found = self.media.get(request.match_info["media_id"])
        if found is None:
            return web.json_response({"error": "no such media"}, status=404)
        content_type, content = found
        # HEAD (aiohttp answers it from this handler) gets the same headers, no body.
        return web.Response(body=content, headers={"Content-Type": content_type})

    def _check_send(self, payload: dict[str, Any]) -> str | None:
        if not E164.fullmatch(payload["from"]):
            return "'from' must be an E.164 phone number you own"
        media = payload.get("media_url")
        if media is not None and (
            not isinstance(media, list) or not media or not all(is_url(u) for u in media)
        ):
            return "'media_url' must be a non-empty array of http(s) URLs"
        if not payload.get("body") and not media:
            return "'body' is required if no media_url"
        validity = payload.get("validity_period")
        if validity is not None and (
            not isinstance(validity, int) or isinstance(validity, bool) or validity < 1
        ):
            return "'validity_period' must be a positive integer (seconds)"
        return None

    def _extra_fields(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {"num_media": len(payload.get("media_url") or ()), "date_updated": iso_now()}

    async def deliver_inbound(
        self,
        sender: str,
        to: str,
        text: str,
        *,
        media_urls: Sequence[str] = (),
        media: Sequence[tuple[str, bytes]] = (),
    ) -> int:
        """POST an inbound SMS (or MMS: ``media_urls`` as given, then each ``(content
        type, content)`` of ``media`` served by this simulator) to convo, signed."""
        media_urls = [*media_urls, *(self.add_media(kind, data) for kind, data in media)]
        extra: dict[str, Any] = {"num_media": len(media_urls), "date_updated": iso_now()}
        if media_urls:
            extra["media_url"] = list(media_urls)
        record = self.inbound_record(sender, to, text, **extra)
        return await self.post_webhook(self._webhook_url("inbound"), self.public(record))

    async def deliver_status(
        self,
        message_id: str,
        status: str = "delivered",
        *,
        error_code: int | None = None,
        error_message: str | None = None,
    ) -> int:
        """As the base class, also stamping ``date_updated``."""
        if message_id in self.messages:
            self.messages[message_id]["date_updated"] = iso_now()
        return await super().deliver_status(
            message_id, status, error_code=error_code, error_message=error_message
        )

    async def _control_inbound(self, request: web.Request) -> web.Response:
        """As every simulator's, plus ``"media": [{"content_type", "base64"}]``."""
        try:
            data = await request.json()
        except ValueError:
            data = None
        items = data.get("media") if isinstance(data, dict) else None
        if items is None:
            return await super()._control_inbound(request)
        media = _media_items(items)
        if media is None:
            return web.json_response(
                {"error": '\'media\' must be a list of {"content_type", "base64"} objects'},
                status=400,
            )
        fields = (data.get("from"), data.get("to"), data.get("text", ""))
        if not all(isinstance(f, str) for f in fields) or not fields[0] or not fields[1]:
            return web.json_response(
                {"error": 'expected a JSON object with "from", "to", "text", "media"'},
                status=400,
            )
        if not self.media_base:
            self.media_base = str(request.url.origin())
        url = self._webhook_url("inbound") if self.webhook_base else None
        if url is None:
            return web.json_response({"error": "webhook_base is not set: where is convo?"},
                                     status=409)  # fmt: skip
        status = await self.deliver_inbound(*fields, media=media)
        return web.json_response(webhook_answer(status, url, media=len(media)))


MEDIA_PREFIX = "/media/"


def _media_items(items: object) -> list[tuple[str, bytes]] | None:
    """The control API's media list, decoded; None when it is not well-formed."""
    if not isinstance(items, list):
        return None
    out = []
    for item in items:
        if not isinstance(item, dict):
            return None
        kind, encoded = item.get("content_type"), item.get("base64")
        if not isinstance(kind, str) or "/" not in kind or not isinstance(encoded, str):
            return None
        try:
            out.append((kind, base64.b64decode(encoded, validate=True)))
        except binascii.Error:
            return None
    return out

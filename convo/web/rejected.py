"""Malformed webhooks kept for an operator, within a disk quota (``[webhooks] rejected_dir``).

A webhook that passed its signature check but could not be used (400) is kept as one JSON
file ``<rejected_dir>/<UTC time>-<provider>-<id>.json``: the provider, the error, when, the
method, the public URL, the content type, the headers (credentials left out) and the body.
What is kept of the body depends on who could have sent it:

* a **signed** body (its signature matched: the provider really sent it) is kept whole, up
  to ``body_cap`` bytes (``max_body``, and at most a quarter of the quota): it is what the
  operator needs to see what the provider sent and why convo could not read it;
* an **unsigned** one (let in because no secret is configured, or whose fields could not be
  read to check a signature) keeps only its first :data:`UNSIGNED_PREFIX` bytes: anyone can
  send those, and they must not be able to fill the disk with their bodies.

Requests refused for their signature (401) are never kept. The body is stored as
``{"text": ...}`` when it is UTF-8 (as is, not escaped) and ``{"base64": ...}`` otherwise;
``body_size`` is the size received and ``truncated`` says whether part of it was left out.

All the files together take at most ``quota`` bytes (``[webhooks] rejected_quota``): after
each write the oldest files are deleted until they fit again (only this keeper's
``*.json`` files count). Every file is written only if its resolved path lies directly in
the directory: a name that would lead elsewhere is refused, and nothing is written.

Nothing is logged per request: :meth:`RejectedWebhooks.summary` gives one line per provider
("kept N malformed webhooks (M bytes) from P") for what was kept since it was last asked,
and the web app logs it once a minute (``convo.web.webhooks``).
"""

from __future__ import annotations

import asyncio
import base64
import codecs
import json
import logging
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from convo.config import Settings
from convo.models import WebhookRequest, new_id
from convo.providers.payload import storable

log = logging.getLogger("convo.web.rejected")

#: Headers never written to the files (credentials).
PRIVATE_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
#: How much of an unsigned body is kept.
UNSIGNED_PREFIX = 1024
#: How long a URL, header value or error of a signed request may be in a file.
SIGNED_FIELD = 8192
#: How many headers a file lists.
MAX_HEADERS = 64
_SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]+\.json")


@dataclass(slots=True)
class _Tally:
    """What was kept (or dropped) for one provider since the last summary."""

    kept: int = 0
    kept_bytes: int = 0
    dropped: int = 0


class RejectedWebhooks:
    """Keeps malformed webhook requests under ``directory`` (see module docstring)."""

    def __init__(
        self, directory: Path, *, quota: int = 100 * 1024 * 1024, body_cap: int = 1024 * 1024
    ) -> None:
        self.directory = directory
        self.quota = quota
        self.body_cap = body_cap
        self._lock = asyncio.Lock()
        self._sizes: OrderedDict[str, int] | None = None  # file name -> bytes, oldest first
        self._tallies: dict[str, _Tally] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> RejectedWebhooks:
        """The keeper of ``[webhooks]``: its directory, its quota and ``max_body`` as the
        cap of a signed body (at most a quarter of the quota)."""
        hooks = settings.webhooks
        return cls(
            settings.rejected_dir,
            quota=hooks.rejected_quota,
            body_cap=min(hooks.max_body, hooks.rejected_quota // 4),
        )

    def __repr__(self) -> str:
        return f"<RejectedWebhooks {self.directory} quota={self.quota}>"

    async def keep(
        self, provider: str, request: WebhookRequest, error: str, *, signed: bool
    ) -> Path | None:
        """Keep ``request``, refused with ``error``; ``signed`` says whether its signature
        was checked and matched. Returns the file written, or None when nothing was (over
        the quota on its own, or a path outside the directory)."""
        limit = self.body_cap if signed else UNSIGNED_PREFIX
        text = json.dumps(_record(provider, request, error, signed, limit), ensure_ascii=False)
        data = text.encode("utf-8")
        seconds, fraction = divmod(time.time_ns(), 10**9)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(seconds))
        # names sort by time: that order is the eviction order after a restart too
        name = f"{stamp}.{fraction:09d}Z-{provider}-{new_id()[:12]}.json"
        tally = self._tallies.setdefault(provider, _Tally())
        async with self._lock:
            path = self._inside(name)
            if path is None or len(data) > self.quota:
                tally.dropped += 1
                return None
            await asyncio.to_thread(self._write, path, data)
        tally.kept += 1
        tally.kept_bytes += len(data)
        return path

    def _inside(self, name: str) -> Path | None:
        """``directory/name`` if that resolves to a file directly in the directory."""
        path = self.directory / name
        if not _SAFE_NAME.fullmatch(name) or path.resolve().parent != self.directory.resolve():
            log.error("refused to keep a webhook as %r: outside %s", name, self.directory)
            return None
        return path

    def _write(self, path: Path, data: bytes) -> None:
        """Write one file, then delete the oldest until the files fit the quota (in a
        worker thread, under the lock)."""
        sizes = self._index()
        path.write_bytes(data)
        sizes[path.name] = len(data)
        total = sum(sizes.values())
        while total > self.quota and sizes:
            oldest, size = sizes.popitem(last=False)
            (self.directory / oldest).unlink(missing_ok=True)
            total -= size

    def _index(self) -> OrderedDict[str, int]:
        """The kept files and their sizes, oldest first (names start with the time), read
        from the directory once."""
        if self._sizes is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._sizes = OrderedDict(
                (path.name, path.stat().st_size) for path in sorted(self.directory.glob("*.json"))
            )
        return self._sizes

    def files(self) -> list[Path]:
        """The kept files, oldest first."""
        return sorted(self.directory.glob("*.json")) if self.directory.is_dir() else []

    def summary(self) -> list[str]:
        """One line per provider for what was kept (and dropped) since the last call."""
        lines = []
        for provider, tally in sorted(self._tallies.items()):
            line = (
                f"kept {tally.kept} malformed webhooks ({tally.kept_bytes} bytes) from {provider}"
            )
            if tally.dropped:
                line += f"; {tally.dropped} not kept (over the quota or an unsafe name)"
            lines.append(line)
        self._tallies.clear()
        return lines


def _record(
    provider: str, request: WebhookRequest, error: str, signed: bool, limit: int
) -> dict[str, object]:
    """What is written for one request: every string storable (headers may carry bytes
    that are not UTF-8), the body cut to ``limit`` bytes; for an unsigned request the
    other strings are cut too (its URL, headers and error are the sender's to choose)."""
    kept = request.body[:limit]
    try:
        body: dict[str, str] = {"text": _text(kept, whole=len(kept) == len(request.body))}
    except UnicodeDecodeError:
        body = {"base64": base64.b64encode(kept).decode("ascii")}
    size = SIGNED_FIELD if signed else UNSIGNED_PREFIX
    headers = [(k, v) for k, v in request.headers.items() if k.lower() not in PRIVATE_HEADERS]
    return {
        "provider": provider,
        "error": _cut(error, size),
        "received_at": time.time(),
        "signed": signed,
        "method": _cut(request.method, 32),
        "url": _cut(request.url, size),
        "content_type": _cut(request.content_type, 256),
        "headers": {_cut(k, 256): _cut(v, size) for k, v in headers[:MAX_HEADERS]},
        "body_size": len(request.body),
        "truncated": len(kept) < len(request.body),
        "body": body,
    }


def _cut(text: str, size: int) -> str:
    """``text`` storable and at most ``size`` characters (a cut is marked)."""
    text = storable(text)
    return text if len(text) <= size else text[:size] + "...(cut)"


def _text(data: bytes, *, whole: bool) -> str:
    """``data`` as UTF-8 text; a cut body may end inside a character, which is left out.
    ``UnicodeDecodeError`` when it is not UTF-8."""
    return codecs.getincrementaldecoder("utf-8")().decode(data, final=whole)

"""Media a contact sent (inbound MMS): what flows see of it, and fetching it safely.

An inbound MMS carries media URLs (``InboundMessage.media_urls``). Before the turn that
handles it, :class:`MediaInspector` turns each URL into a :class:`Media`: its URL, content
type and size (asked of the media's host with a ``HEAD``, or a one-byte ranged ``GET`` where
``HEAD`` is refused; ``None`` when the host does not say) and whether it may be downloaded.
Flows see these as ``answer.media``; hooks as ``conv.media``, and download one with
``await media.read()`` or ``await media.save(path)``.

The URLs come from request data, so convo only ever contacts them through the provider's
:class:`MediaPolicy`:

* **allow-list**: a URL is fetched only when its host (and port) is one of the provider's
  ``media_hosts`` (default: the host of its ``base_url``, the provider's own API). A media
  URL off the list is kept (the text is still answered) but marked not downloadable, a
  warning is logged and no request is ever made to it. Every redirect is checked the same
  way before it is followed: a redirect off the list is refused (:class:`MediaRefused`).
* **size cap**: ``media_max_bytes`` (default 5 MiB) is enforced while the body streams in:
  a declared ``Content-Length`` over the cap is refused before any of the body is read, and
  a body that runs over is cut off at the first chunk past the cap (:class:`MediaTooLarge`).
* **time**: ``media_timeout`` (default 30 s) bounds each network operation and the whole
  fetch (redirects included), so a host that drips bytes cannot hold a turn.

Errors are :class:`MediaError` (a :class:`~convo.exceptions.ConvoError`); a hook that lets
one escape aborts its turn like any failing hook.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import urljoin, urlsplit

import anyio
import anyio.to_thread
import httpx

from convo.exceptions import ConfigError, ConvoError
from convo.models import InboundMessage

if TYPE_CHECKING:  # adapters pass their options; convo.media imports no adapter code
    from convo.providers._options import ProviderOptions

log = logging.getLogger("convo.media")

DEFAULT_MAX_BYTES = 5 * 1024 * 1024
DEFAULT_TIMEOUT = 30.0
MAX_REDIRECTS = 5
#: The per-provider config options a media-carrying adapter accepts.
MEDIA_OPTIONS = frozenset({"media_hosts", "media_max_bytes", "media_timeout"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class MediaError(ConvoError):
    """Media could not be fetched (network, HTTP status, or one of the two below)."""


class MediaRefused(MediaError):
    """The media (or a redirect on the way to it) is not on the provider's allow-list."""


class MediaTooLarge(MediaError):
    """The media is over the size cap; ``read`` is how many body bytes were read when the
    fetch stopped (0 when the declared length alone refused it)."""

    def __init__(self, message: str, *, read: int) -> None:
        super().__init__(message)
        self.read = read


def _origin(url: str) -> tuple[str, int] | None:
    """``(host, port)`` of an http(s) URL (the scheme's port when none is written);
    None for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.hostname.lower(), port or _DEFAULT_PORTS[parts.scheme]


@dataclass(frozen=True, slots=True)
class MediaPolicy:
    """Where one provider's media may be fetched from, how much and how long.

    ``hosts`` are ``"host"`` (that host on the URL scheme's default port) or
    ``"host:port"`` entries, compared case-insensitively with the URL's host, never by
    prefix or suffix (``api.example.com.evil.net`` is not ``api.example.com``)."""

    hosts: tuple[str, ...]
    max_bytes: int = DEFAULT_MAX_BYTES
    timeout: float = DEFAULT_TIMEOUT

    def allows(self, url: str) -> bool:
        """True when ``url`` is http(s) on one of the allowed hosts."""
        origin = _origin(url)
        if origin is None:
            return False
        host, port = origin
        scheme = urlsplit(url).scheme
        for entry in self.hosts:
            name, _, given = entry.lower().rpartition(":")
            if name and given.isdigit():
                if (name, int(given)) == (host, port):
                    return True
            elif entry.lower() == host and port == _DEFAULT_PORTS[scheme]:
                return True
        return False

    @classmethod
    def from_options(cls, opts: ProviderOptions, base_url: str) -> MediaPolicy:
        """The policy of a provider section: ``media_hosts`` (default: ``base_url``'s
        host, with its port when one is written), ``media_max_bytes`` and
        ``media_timeout``. Raises ``ConfigError`` naming the key."""
        hosts = opts.raw("media_hosts")
        if hosts is None:
            hosts = [base_host(base_url)]
        if (
            not isinstance(hosts, list | tuple)
            or not hosts
            or not all(isinstance(h, str) and h and "/" not in h for h in hosts)
        ):
            raise ConfigError(
                f"{opts.where('media_hosts')}: expected a non-empty list of host names "
                '(e.g. ["api.telefonie.com", "media.example.com:8443"])'
            )
        max_bytes = opts.integer("media_max_bytes", DEFAULT_MAX_BYTES)
        timeout = opts.number("media_timeout", DEFAULT_TIMEOUT)
        return cls(tuple(hosts), max_bytes or DEFAULT_MAX_BYTES, timeout)


def base_host(base_url: str) -> str:
    """The allow-list entry of a provider's ``base_url``: its host, with the port when
    one is written (``api.telefonie.com``, ``127.0.0.1:8123``)."""
    return urlsplit(base_url).netloc.rpartition("@")[2].lower()


@runtime_checkable
class CarriesMedia(Protocol):
    """An adapter whose inbound messages may carry media, and the policy to fetch it."""

    name: str
    media_policy: MediaPolicy


@dataclass(frozen=True, slots=True)
class Media:
    """One media item of an inbound message.

    ``content_type`` and ``size`` (bytes) are what the media's host said, None when it did
    not say or was not asked (not downloadable). ``downloadable`` is False when the URL is
    off the provider's allow-list or the message's provider has no media policy; then
    :meth:`read` and :meth:`save` raise :class:`MediaRefused` without any request."""

    url: str
    content_type: str | None = None
    size: int | None = None
    downloadable: bool = False
    policy: MediaPolicy | None = field(default=None, repr=False, compare=False)

    def is_a(self, types: Iterable[str]) -> bool:
        """True when the content type matches one of ``types`` (``image/*``, ``image/png``;
        case-insensitive). An unknown content type matches nothing."""
        if self.content_type is None:
            return False
        mine = self.content_type.lower()
        for wanted in types:
            wanted = wanted.lower()
            if wanted == mine or (wanted.endswith("/*") and mine.startswith(wanted[:-1])):
                return True
        return False

    def as_dict(self) -> dict[str, Any]:
        """What a slot keeps of it (JSON): url, content_type, size, downloadable."""
        return {
            "url": self.url,
            "content_type": self.content_type,
            "size": self.size,
            "downloadable": self.downloadable,
        }

    async def read(self) -> bytes:
        """The media's bytes, within the policy (see the module docstring)."""
        chunks: list[bytes] = []

        async def keep(chunk: bytes) -> None:
            chunks.append(chunk)

        await self._fetch(keep)
        return b"".join(chunks)

    async def save(self, path: str | os.PathLike[str]) -> int:
        """Stream the media into file ``path``; returns its size. Nothing is left at
        ``path`` when the fetch fails (over the cap included). The file is opened, written
        and renamed on worker threads: a slow disk holds this call, never the event loop
        (only the clean-up after a failure runs on it, so that it runs when cancelled)."""
        target = Path(path)
        partial = target.with_name(target.name + ".part")
        try:
            async with await anyio.open_file(partial, "wb") as out:
                written = await self._fetch(out.write)
            await anyio.to_thread.run_sync(partial.replace, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return written

    async def _fetch(self, sink: Callable[[bytes], Awaitable[object]]) -> int:
        """GET the media, handing each chunk to ``sink``; returns the bytes read."""
        policy = self.policy
        if not self.downloadable or policy is None:
            raise MediaRefused(f"media {_safe(self.url)} is not downloadable (not allow-listed)")
        read = 0
        try:
            async with asyncio.timeout(policy.timeout), _open(policy, "GET", self.url) as response:
                if response.status_code != 200:
                    raise MediaError(f"media {_safe(self.url)}: HTTP {response.status_code}")
                declared = _int(response.headers.get("content-length"))
                if declared is not None and declared > policy.max_bytes:
                    raise MediaTooLarge(
                        f"media {_safe(self.url)} is {declared} bytes, over the cap of "
                        f"{policy.max_bytes}",
                        read=0,
                    )
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read > policy.max_bytes:  # stop now: the rest is never read
                        raise MediaTooLarge(
                            f"media {_safe(self.url)} is over the cap of {policy.max_bytes} bytes",
                            read=read,
                        )
                    await sink(chunk)
        except TimeoutError:
            raise MediaError(
                f"media {_safe(self.url)}: not fetched within {policy.timeout:g}s"
            ) from None
        except httpx.HTTPError as exc:
            raise MediaError(f"media {_safe(self.url)}: {type(exc).__name__}") from exc
        return read


@asynccontextmanager
async def _open(
    policy: MediaPolicy, method: str, url: str, headers: Mapping[str, str] | None = None
) -> AsyncIterator[httpx.Response]:
    """A streamed response for ``url``, following at most :data:`MAX_REDIRECTS` redirects,
    each checked against ``policy`` before it is requested."""
    # Own client: no proxies from the environment, no cookies carried between hosts, and
    # redirects followed here (httpx would follow them without asking the allow-list).
    async with httpx.AsyncClient(
        timeout=policy.timeout, follow_redirects=False, trust_env=False
    ) as client:
        for _ in range(MAX_REDIRECTS + 1):
            if not policy.allows(url):
                raise MediaRefused(f"media {_safe(url)} is not on the provider's media hosts")
            request = client.build_request(method, url, headers=headers)
            response = await client.send(request, stream=True)
            try:
                location = response.headers.get("location")
                if response.status_code in _REDIRECTS and location:
                    url = urljoin(url, location)  # checked at the top of the next round
                    continue
                yield response
                return
            finally:
                await response.aclose()
        raise MediaError(f"media {_safe(url)}: more than {MAX_REDIRECTS} redirects")


async def describe(url: str, policy: MediaPolicy | None) -> Media:
    """The :class:`Media` for ``url`` under ``policy``: off the list (or no policy) means
    not downloadable and no request; else its content type and size as the host states
    them (``HEAD``, or a one-byte ranged ``GET`` when ``HEAD`` is refused). A host that
    does not answer leaves them unknown; a redirect off the list makes it not
    downloadable."""
    if policy is None or not policy.allows(url):
        return Media(url)
    try:
        async with asyncio.timeout(policy.timeout):
            content_type, size = await _probe(policy, url)
    except MediaRefused:
        log.warning("media %s redirects off the provider's media hosts: not downloadable",
                    _safe(url))  # fmt: skip
        return Media(url)
    except (MediaError, httpx.HTTPError, TimeoutError) as exc:
        log.info("media %s: type and size unknown (%s)", _safe(url), type(exc).__name__)
        content_type = size = None
    return Media(url, content_type, size, True, policy)


async def _probe(policy: MediaPolicy, url: str) -> tuple[str | None, int | None]:
    async with _open(policy, "HEAD", url) as response:
        if response.status_code == 200:
            return _content_type(response), _int(response.headers.get("content-length"))
        if response.status_code not in (405, 501):
            raise MediaError(f"HTTP {response.status_code}")
    async with _open(policy, "GET", url, {"Range": "bytes=0-0"}) as response:
        if response.status_code == 206:
            total = response.headers.get("content-range", "").rpartition("/")[2]
            return _content_type(response), _int(total)
        if response.status_code == 200:  # the Range was ignored: do not read the body
            return _content_type(response), _int(response.headers.get("content-length"))
        raise MediaError(f"HTTP {response.status_code}")


def _content_type(response: httpx.Response) -> str | None:
    value = response.headers.get("content-type", "").partition(";")[0].strip().lower()
    return value or None


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.strip().isdigit() else None


def _safe(url: str) -> str:
    """``url`` for logs and errors: no query string (it may hold a signature or token)."""
    return url.partition("?")[0]


#: What the engine asks before a reply with media is turned (see :class:`MediaInspector`).
MediaLookup = Callable[[InboundMessage], Awaitable[tuple[Media, ...]]]


class MediaInspector:
    """Builds the :class:`Media` of inbound messages, with each provider's policy.

    A message from a provider without a policy (or a URL off its list) gets media that is
    not downloadable; a URL off the list is logged as a warning, and never requested."""

    def __init__(self, policies: Mapping[str, MediaPolicy]) -> None:
        self.policies = dict(policies)

    @classmethod
    def for_providers(cls, providers: Iterable[object]) -> MediaInspector:
        """The inspector for every adapter among ``providers`` that carries media."""
        return cls({p.name: p.media_policy for p in providers if isinstance(p, CarriesMedia)})

    async def __call__(self, message: InboundMessage) -> tuple[Media, ...]:
        policy = self.policies.get(message.provider)
        for url in message.media_urls:
            if policy is None or not policy.allows(url):
                log.warning(
                    "message %s from %s: media %s is not on the media hosts of provider %r: "
                    "kept, not downloadable",
                    message.id, message.provider, _safe(url), message.provider,
                )  # fmt: skip
        found = await asyncio.gather(*(describe(url, policy) for url in message.media_urls))
        return tuple(found)


async def unchecked(message: InboundMessage) -> tuple[Media, ...]:
    """The media of ``message`` known only by URL (no policy: not downloadable), for
    engines without an inspector (``convo chat``, tests of flows alone)."""
    return tuple(Media(url) for url in message.media_urls)

"""How convo talks HTTP to providers: the client, and the one place where httpx
failures become convo's ``ProviderError`` tree.

:func:`provider_client` makes the client adapters are given: httpx's API over aiohttp's
connection pool (the ``httpx-aiohttp`` transport, by httpx's maintainer). httpcore's
own pool re-checks every pooled connection on every request, so its cost grows with the
number of sends in flight: on loopback it managed 467 requests/s with 16 in flight and 241
with 100, against 2,097 and 1,115 over aiohttp. Adapters see an ordinary
``httpx.AsyncClient``.

Requests made through :func:`call` with that client (every provider API request) skip
httpx's own layers: they go to the same aiohttp pool directly, with the same error
mapping. httpx's request building, cookie jar, auth and redirect layers cost more than the
HTTP exchange itself (``bench/sms_pipeline.py``: the same send-only server sent 2,245
replies/s through httpx over aiohttp and 4,930 through aiohttp). A request with what the
direct path does not take (``auth``, files, non-string form values) goes through httpx as
before; so does any other client (a test's ``MockTransport``).

Either way :func:`call` answers a :class:`ProviderAnswer`: the status, headers and body
read whole (decompressed), which is all an adapter reads of an answer. It is not an
``httpx.Response`` because building one (and the ``httpx.Request`` it needs) per send cost
about as much as parsing the webhook's form.

Adapters call :func:`call` for every provider API request. Network errors and 5xx become
``ProviderUnavailable`` (retryable), 429 becomes ``RateLimited``; both carry the answer's
``Retry-After`` when it has one that can be read (:func:`convo.retry.parse_retry_after`).
Other 4xx become ``ProviderRejected`` (permanent). An adapter whose provider reports errors
inside a 200 body (Vonage) maps those itself, after this call.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import map_aiohttp_exceptions

from convo.exceptions import ProviderRejected, ProviderUnavailable, RateLimited
from convo.providers import form
from convo.retry import parse_retry_after

DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)


DEFAULT_CONNECTIONS = 100
_DIRECT_OPTIONS = frozenset({"data", "json", "headers", "params"})
_FORM = "application/x-www-form-urlencoded"
_STR = itertools.repeat(str)
_JSON_OPENS = (b"{", b"[")


class ProviderClient(httpx.AsyncClient):
    """httpx's client over one aiohttp pool, which :func:`call` also uses directly
    (module docstring). Build it with :func:`provider_client`."""

    def __init__(self, timeout: httpx.Timeout, connections: int) -> None:
        limits = httpx.Limits(max_connections=connections, keepalive_expiry=5.0)
        self._pool = AiohttpTransport(limits=limits)
        super().__init__(timeout=timeout, transport=self._pool)
        # What the transport gives aiohttp for httpx's timeouts, for the direct path.
        self._direct_timeout = aiohttp.ClientTimeout(
            sock_connect=timeout.connect, sock_read=timeout.read, connect=timeout.pool
        )

    @property
    def connections(self) -> int | None:
        """The most connections its pool opens at once."""
        return self._pool.limits.max_connections

    def _session(self) -> aiohttp.ClientSession:
        pool = self._pool
        if not isinstance(pool.client, aiohttp.ClientSession):
            pool.client = pool.get_client()  # made in the loop, once, as the transport does
        return pool.client

    def takes_directly(self, options: Mapping[str, Any]) -> bool:
        """Whether a request with these keyword arguments can skip httpx."""
        if not options.keys() <= _DIRECT_OPTIONS:
            return False
        for key, value in options.items():
            if value is None or key == "json":
                continue
            # isinstance mapped in C over the values: a generator costs more than the check
            if not isinstance(value, Mapping) or not all(map(isinstance, value.values(), _STR)):
                return False
        return True

    async def direct(
        self,
        method: str,
        url: str,
        *,
        data: Mapping[str, str] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> ProviderAnswer:
        """Send one request on the aiohttp pool; the answer read whole. Raises httpx's
        exceptions, as the transport does."""
        sent = dict(headers or {})
        body: bytes | None = None
        if json is not None:
            body = _json_body(json)
            sent.setdefault("Content-Type", "application/json")
        elif data is not None:
            body = form.encode(data).encode()
            sent.setdefault("Content-Type", _FORM)
        with map_aiohttp_exceptions():
            async with self._session().request(
                method,
                url,
                params=params,
                data=body,
                headers=sent,
                allow_redirects=False,
                timeout=self._direct_timeout,
            ) as answer:  # its body decompressed by aiohttp, as httpx would
                content = await answer.read()
        return ProviderAnswer(answer.status, answer.reason or "", answer.headers, content)


class ProviderAnswer:
    """A provider API's answer, read whole: what :func:`call` returns (module docstring).
    ``headers`` is case-insensitive; ``text`` decodes the body in the charset its
    ``Content-Type`` names (UTF-8 when none, or an unknown one), replacing what cannot be
    decoded, as httpx does; ``json()`` raises ``ValueError`` for a body that is not JSON."""

    __slots__ = ("content", "headers", "reason_phrase", "status_code")

    def __init__(
        self, status_code: int, reason_phrase: str, headers: Mapping[str, str], content: bytes
    ) -> None:
        self.status_code = status_code
        self.reason_phrase = reason_phrase or _standard_reason(status_code)
        self.headers = headers
        self.content = content

    @classmethod
    def of(cls, response: httpx.Response) -> ProviderAnswer:
        """An answer that came through httpx (read whole)."""
        return cls(response.status_code, response.reason_phrase, response.headers, response.content)

    def __repr__(self) -> str:
        return f"<ProviderAnswer [{self.status_code} {self.reason_phrase}]>"

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        charset = _charset(self.headers.get("Content-Type", ""))
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:  # a charset Python does not know
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        content = self.content
        if content[:1] in _JSON_OPENS and content[1:2] != b"\x00":
            # UTF-8 by json.loads' own rule (it decodes bytes in the encoding their first
            # bytes say, in a Python function): decoded here as it would, faster.
            return json.loads(content.decode("utf-8", "surrogatepass"))
        return json.loads(content)


def _charset(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip(' "'):
            return value.strip(' "')
    return "utf-8"


def _standard_reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _json_body(value: Any) -> bytes:
    # As httpx encodes a json= body.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def provider_client(
    timeout: httpx.Timeout = DEFAULT_TIMEOUT, *, connections: int = DEFAULT_CONNECTIONS
) -> httpx.AsyncClient:
    """A new client for provider APIs (module docstring); the caller closes it. Up to
    ``connections`` connections, kept alive 5 s; proxies from the environment are not
    used."""
    return ProviderClient(timeout, connections)


def retry_after(response: ProviderAnswer) -> float | None:
    """The response's ``Retry-After`` in seconds (integer or HTTP date, capped), or None
    when it has none or it cannot be read: callers fall back to their own backoff."""
    value = response.headers.get("Retry-After")
    return None if value is None else parse_retry_after(value, time.time())


def _detail(response: ProviderAnswer) -> str:
    text = response.text[:300]
    return f"{response.status_code} {response.reason_phrase}: {text}".strip()


async def call(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    provider: str,
    expected: tuple[int, ...] = (200, 201, 202, 204),
    **kwargs: Any,
) -> ProviderAnswer:
    """Send one request; return its answer if its status is in ``expected``.

    Raises ``RateLimited``, ``ProviderUnavailable`` or ``ProviderRejected`` otherwise;
    ``code`` on the error is the HTTP status as a string.
    """
    try:
        if isinstance(client, ProviderClient) and client.takes_directly(kwargs):
            response = await client.direct(method, url, **kwargs)
        else:
            response = ProviderAnswer.of(await client.request(method, url, **kwargs))
    except httpx.TimeoutException as exc:
        cause = exc.__cause__
        if cause is not None and not isinstance(cause, TimeoutError):
            # httpx-aiohttp maps every aiohttp connection error (refused, reset, closed by
            # the peer) to ConnectTimeout: say what happened instead.
            raise ProviderUnavailable(
                f"{provider}: cannot reach {url}: {cause}", provider=provider
            ) from exc
        raise ProviderUnavailable(
            f"{provider}: timed out calling {url}", provider=provider
        ) from exc
    except httpx.TransportError as exc:
        raise ProviderUnavailable(
            f"{provider}: cannot reach {url}: {exc}", provider=provider
        ) from exc
    status = response.status_code
    if status in expected:
        return response
    code = str(status)
    if status == 429:
        raise RateLimited(
            f"{provider}: throttled ({_detail(response)})",
            provider=provider,
            code=code,
            retry_after=retry_after(response),
        )
    if status >= 500:
        raise ProviderUnavailable(
            f"{provider}: {_detail(response)}",
            provider=provider,
            code=code,
            retry_after=retry_after(response),
        )
    raise ProviderRejected(f"{provider}: {_detail(response)}", provider=provider, code=code)

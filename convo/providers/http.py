"""How convo talks HTTP to providers: the shared client, and the one place where httpx
failures become convo's ``ProviderError`` tree.

:func:`provider_client` makes the client every adapter is given: httpx's API over
aiohttp's connection pool (the ``httpx-aiohttp`` transport, by httpx's maintainer). httpcore's
own pool re-checks every pooled connection on every request, so its cost grows with the
number of sends in flight: on loopback it managed 467 requests/s with 16 in flight and 241
with 100, against 2,097 and 1,115 over aiohttp (``bench/webhooks.py`` is the end-to-end
figure). Adapters see an ordinary ``httpx.AsyncClient``.

Adapters call :func:`call` for every provider API request. Network errors and 5xx become
``ProviderUnavailable`` (retryable), 429 becomes ``RateLimited``; both carry the answer's
``Retry-After`` when it has one that can be read (:func:`convo.retry.parse_retry_after`).
Other 4xx become ``ProviderRejected`` (permanent). An adapter whose provider reports errors
inside a 200 body (Vonage) maps those itself, after this call.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from httpx_aiohttp import AiohttpTransport

from convo.exceptions import ProviderRejected, ProviderUnavailable, RateLimited
from convo.retry import parse_retry_after

DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)


def provider_client(timeout: httpx.Timeout = DEFAULT_TIMEOUT) -> httpx.AsyncClient:
    """A new client for provider APIs (module docstring); the caller closes it. Up to 100
    connections, kept alive 5 s; proxies from the environment are not used."""
    return httpx.AsyncClient(timeout=timeout, transport=AiohttpTransport())


def retry_after(response: httpx.Response) -> float | None:
    """The response's ``Retry-After`` in seconds (integer or HTTP date, capped), or None
    when it has none or it cannot be read: callers fall back to their own backoff."""
    value = response.headers.get("Retry-After")
    return None if value is None else parse_retry_after(value, time.time())


def _detail(response: httpx.Response) -> str:
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
) -> httpx.Response:
    """Send one request; return the response if its status is in ``expected``.

    Raises ``RateLimited``, ``ProviderUnavailable`` or ``ProviderRejected`` otherwise;
    ``code`` on the error is the HTTP status as a string.
    """
    try:
        response = await client.request(method, url, **kwargs)
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

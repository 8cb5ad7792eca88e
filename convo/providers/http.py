"""The one place where httpx failures become convo's ``ProviderError`` tree.

Adapters call :func:`call` for every provider API request. Network errors and 5xx become
``ProviderUnavailable`` (retryable), 429 becomes ``RateLimited`` (with ``Retry-After`` when
given), other 4xx ``ProviderRejected`` (permanent). An adapter whose provider reports
errors inside a 200 body (Vonage) maps those itself, after this call.
"""

from __future__ import annotations

from typing import Any

import httpx

from convo.exceptions import ProviderRejected, ProviderUnavailable, RateLimited


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date; callers fall back to their own backoff


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
            retry_after=_retry_after(response),
        )
    if status >= 500:
        raise ProviderUnavailable(f"{provider}: {_detail(response)}", provider=provider, code=code)
    raise ProviderRejected(f"{provider}: {_detail(response)}", provider=provider, code=code)

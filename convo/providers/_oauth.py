"""OAuth2 client-credentials bearer tokens (RFC 6749 §4.4), cached until shortly before expiry.

Used by the Enco adapter: one :class:`ClientCredentials` per provider section fetches a token
from the configured token URL (client id and secret sent with HTTP Basic auth, §2.3.1), keeps
it until ``expires_in`` (minus a margin) and fetches a new one when the API says 401
(:meth:`invalidate`, then :meth:`token` again). Concurrent callers share one fetch.
Neither the secret nor a token ever appears in an error message or a repr.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from convo.exceptions import ProviderRejected, ProviderUnavailable
from convo.providers.http import call

#: When the token endpoint gives no ``expires_in``: RFC 6749 leaves it optional.
DEFAULT_LIFETIME = 3600.0
#: Renew this long before the stated expiry, so a token never dies in flight.
MARGIN = 30.0


class ClientCredentials:
    """A cached bearer token for one OAuth2 client. ``token()`` raises ``ProviderRejected``
    when the endpoint refuses our credentials, ``ProviderUnavailable`` when it is down or
    answers something that is not a token."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        provider: str,
    ) -> None:
        self._client = client
        self._token_url = token_url
        self._auth = (client_id, client_secret)
        self._provider = provider
        self._token: str | None = None
        self._expires = 0.0  # time.monotonic() deadline
        self._lock = asyncio.Lock()
        self.fetches = 0  # how many tokens were fetched (observability, tests)

    def __repr__(self) -> str:
        return f"ClientCredentials(provider={self._provider!r}, token_url={self._token_url!r})"

    async def token(self) -> str:
        """A valid access token, fetched only when none is cached or it is about to expire."""
        async with self._lock:
            if self._token is None or time.monotonic() >= self._expires:
                self._token, lifetime = await self._fetch()
                self._expires = time.monotonic() + max(lifetime - MARGIN, lifetime / 2)
            return self._token

    def invalidate(self, stale: str) -> None:
        """Forget ``stale`` (the API refused it); a newer token fetched meanwhile stays."""
        if self._token == stale:
            self._token = None

    async def _fetch(self) -> tuple[str, float]:
        self.fetches += 1
        try:
            response = await call(
                self._client,
                "POST",
                self._token_url,
                provider=self._provider,
                expected=(200,),
                data={"grant_type": "client_credentials"},
                auth=self._auth,
                headers={"Accept": "application/json"},
            )
        except ProviderRejected as exc:
            raise ProviderRejected(
                f"{self._provider}: the token endpoint refused our client credentials "
                f"(check client_id and client_secret): HTTP {exc.code}",
                provider=self._provider,
                code=exc.code,
            ) from None  # the original text may echo request details
        try:
            data = response.json()
            token = data["access_token"]
            lifetime = float(data.get("expires_in", DEFAULT_LIFETIME))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ProviderUnavailable(
                f"{self._provider}: token endpoint answered without a usable access_token",
                provider=self._provider,
            ) from exc
        if not isinstance(token, str) or not token:
            raise ProviderUnavailable(
                f"{self._provider}: token endpoint answered an empty access_token",
                provider=self._provider,
            )
        return token, max(lifetime, 1.0)

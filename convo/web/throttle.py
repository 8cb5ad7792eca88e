"""Throttling wrong admin tokens, per client address, so the token cannot be guessed fast.

One :class:`TokenThrottle` per app (``app[TOKEN_THROTTLE]``) counts the wrong tokens of
every place that takes the admin token: the console's sign-in form, and the bearer token
of the admin API and of ``/metrics`` on the server's port. Each client address has
:data:`FREE_TRIES` wrong tokens, given back one every :data:`REFILL` seconds (so five a
minute once they are spent). A wrong token takes one. With none left, a request that
presents a token is answered 429 with ``Retry-After`` (whole seconds until one is back)
**before its token is compared**: while an address is throttled, even the right token
is refused, or the answer would still tell a right guess from a wrong one.

The address is the TCP peer (``request.remote``), or, from a reverse proxy named in
``[server] trusted_proxies``, the client it names (:mod:`convo.web.clients`); never a header
any client can write. Behind a proxy that is not named there every client shares the
proxy's address, so one guesser slows everybody's sign-ins, not only its own. At most
:data:`MAX_ADDRESSES` addresses are remembered; the longest-idle are forgotten first.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

from aiohttp import web

from convo.config.settings import IPNetwork
from convo.web.clients import client_address

__all__ = [
    "FREE_TRIES",
    "MAX_ADDRESSES",
    "REFILL",
    "TOKEN_THROTTLE",
    "TokenThrottle",
    "retry_after",
]

FREE_TRIES = 5
"""Wrong tokens an address may present at once before it must wait."""
REFILL = 12.0
"""Seconds after which one wrong token is given back."""
MAX_ADDRESSES = 10_000
"""Addresses remembered at most (the longest-idle are forgotten first)."""


class TokenThrottle:
    """Wrong-token budgets by client address (module docstring). ``clock`` gives seconds
    that only go forward; ``trusted`` are the reverse proxies whose ``X-Forwarded-For`` is
    believed."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        trusted: Sequence[IPNetwork] = (),
    ) -> None:
        self.clock = clock
        self.trusted = tuple(trusted)
        # address -> (tries left, when counted); in order of last change, oldest first
        self._tries: dict[str, tuple[float, float]] = {}

    def wait(self, request: web.Request) -> float:
        """Seconds the address of ``request`` must wait before a token of its is compared:
        0 when it may try now."""
        left = self._left(client_address(request, self.trusted))
        return 0.0 if left >= 1 else (1 - left) * REFILL

    def failed(self, request: web.Request) -> None:
        """Count a wrong token from the address of ``request``."""
        address = client_address(request, self.trusted)
        left = self._left(address) - 1
        self._tries.pop(address, None)  # to the end: the most recent
        self._tries[address] = (max(left, 0.0), self.clock())
        while len(self._tries) > MAX_ADDRESSES:
            del self._tries[next(iter(self._tries))]

    def refused(self, request: web.Request) -> web.Response | None:
        """The JSON 429 answer for ``request`` when its address must wait, else None."""
        seconds = self.wait(request)
        if seconds <= 0:
            return None
        return web.json_response(
            {"error": "too many wrong tokens from this address; try again later"},
            status=429,
            headers={"Retry-After": retry_after(seconds)},
        )

    def _left(self, address: str) -> float:
        counted = self._tries.get(address)
        if counted is None:
            return float(FREE_TRIES)
        left, at = counted
        return min(float(FREE_TRIES), left + (self.clock() - at) / REFILL)


def retry_after(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds, rounded up."""
    return str(math.ceil(seconds))


TOKEN_THROTTLE: web.AppKey[TokenThrottle] = web.AppKey("token_throttle", TokenThrottle)

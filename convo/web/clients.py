"""Who a request comes from: its TCP peer, or, behind reverse proxies the operator trusts
(``[server] trusted_proxies``), the client they name in ``X-Forwarded-For``.

Each proxy appends the address it got the request from to ``X-Forwarded-For``; a client
can write anything there before the first proxy does. So the list is read from its right
end, the part written by trusted hands, and the first entry that is not a trusted proxy
is the client. A request from a peer that is not trusted is taken at its peer address,
whatever its headers say; a chain of trusted proxies only (a request from inside) is
taken at its first entry.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web

from convo.config.settings import IPNetwork

__all__ = ["client_address"]


def client_address(request: web.Request, trusted: Sequence[IPNetwork]) -> str:
    """The address ``request`` comes from (module docstring); "unknown" when the peer
    has none (a Unix socket)."""
    peer = request.remote or "unknown"
    if not trusted or not _is_trusted(peer, trusted):
        return peer
    hops = [
        hop.strip()
        for header in request.headers.getall("X-Forwarded-For", ())
        for hop in header.split(",")
        if hop.strip()
    ]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


def _is_trusted(address: str, trusted: Sequence[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:  # not an address: nothing vouches for it
        return False
    return any(ip in network for network in trusted)

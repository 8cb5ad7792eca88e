"""Twilio's account as its fakes see it: REST basic auth (account SID + auth token, or an
API key), the account in the path, Twilio's error body, simulated failures, and webhook
signatures (``X-Twilio-Signature``, by :func:`convo.providers._twilio_common.signature`).
Shared by the Messaging and Voice simulators.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping

from aiohttp import web

from convo.providers._twilio_common import SIGNATURE_HEADER, signature


def twilio_error(status: int, code: int, message: str) -> web.Response:
    """Twilio's REST error body."""
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    headers = {"Retry-After": "1"} if status == 429 else None
    return web.json_response(body, status=status, headers=headers)


def basic_auth(header: str) -> tuple[str, str] | None:
    """``(user, password)`` of an HTTP basic ``Authorization`` header, or None."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(token, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


class TwilioAccountGuard:
    """Twilio's account and its REST auth, shared by the Messaging and Voice fakes."""

    def __init__(
        self, account_sid: str, auth_token: str, api_key_sid: str = "", api_key_secret: str = ""
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.api_key_sid = api_key_sid
        self.api_key_secret = api_key_secret
        self.failures: list[tuple[int, int]] = []

    def prefix(self) -> str:
        return f"/2010-04-01/Accounts/{self.account_sid}"

    def refuse(self, request: web.Request) -> web.Response | None:
        """The error answer for a request we refuse (auth, a simulated failure), or None."""
        given = basic_auth(request.headers.get("Authorization", ""))
        allowed = [(self.account_sid, self.auth_token)]
        if self.api_key_sid:
            allowed.append((self.api_key_sid, self.api_key_secret))
        if given is None or not any(
            hmac.compare_digest(given[0].encode(), user.encode())
            and hmac.compare_digest(given[1].encode(), password.encode())
            for user, password in allowed
        ):
            return twilio_error(401, 20003, "Authenticate")
        if request.match_info.get("account") != self.account_sid:
            return twilio_error(404, 20404, "The requested resource was not found")
        if self.failures:
            status, code = self.failures.pop(0)
            return twilio_error(status, code, "Simulated failure")
        return None

    def sign(self, url: str, fields: Mapping[str, str]) -> dict[str, str]:
        """The headers of a form post Twilio makes to ``url``."""
        return {SIGNATURE_HEADER: signature(self.auth_token, url, fields)}

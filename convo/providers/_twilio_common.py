"""What Twilio Messaging and Twilio Voice share: the account, request signatures, form
webhooks and the error body of the REST API.

Account and authentication. Every REST request names the account in its path
(``/2010-04-01/Accounts/{account_sid}/...``) and authenticates with HTTP basic auth: the
API key SID and secret when ``api_key_sid`` is configured (Twilio's recommendation for
production), else the account SID and its auth token. Webhooks are always signed with the
account's **auth token**, whichever credential sends, so ``auth_token`` is what verifies
them.

Signatures (``X-Twilio-Signature``): base64 of HMAC-SHA1, keyed with the auth token, over
the full URL Twilio called followed by every POST form parameter, sorted by name, each as
name + value (a repeated name: each distinct value, sorted). A GET request has no form part: its
query is in the URL already. Twilio itself may call a URL with or without an explicit
default port (``:443``/``:80``), so, as Twilio's own ``RequestValidator`` does, both
spellings are accepted. The URL is ``server.public_url`` + path + query (never the Host
header): ``public_url`` must be the URL Twilio is configured with.

The REST error body is ``{"code": 21211, "message": "...", "more_info": "...", "status":
400}``; :func:`raise_for_error` maps its ``code`` onto convo's exceptions
(:data:`ERROR_CODES`) before the HTTP status is considered.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import httpx

from convo.exceptions import (
    ConfigError,
    ContactOptedOut,
    MalformedWebhook,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
    RateLimited,
    SignatureError,
)
from convo.models import WebhookRequest
from convo.providers import http
from convo.providers._options import ProviderOptions
from convo.providers.signing import must_check

SIGNATURE_HEADER = "X-Twilio-Signature"
DEFAULT_BASE_URL = "https://api.twilio.com"
API_VERSION = "2010-04-01"
#: The options every Twilio section has (besides its channel's own).
ACCOUNT_OPTIONS = frozenset(
    {"account_sid", "auth_token", "api_key_sid", "api_key_secret", "base_url", "allow_unsigned"}
)

#: Twilio REST error codes -> (error class, meaning). A code not listed falls back on the
#: HTTP status (429 rate limited, 5xx unavailable, other 4xx rejected).
ERROR_CODES: dict[int, tuple[type[ProviderError], str]] = {
    20003: (ProviderRejected, "authentication failed (account SID, auth token or API key)"),
    20404: (ProviderRejected, "resource not found"),
    20429: (RateLimited, "too many requests"),
    20500: (ProviderUnavailable, "internal server error"),
    20503: (ProviderUnavailable, "service unavailable"),
    21211: (ProviderRejected, "invalid 'To' phone number"),
    21212: (ProviderRejected, "invalid 'From' phone number"),
    21408: (ProviderRejected, "permission to send to this region is not enabled"),
    21602: (ProviderRejected, "message body is required"),
    21606: (ProviderRejected, "the 'From' number cannot send texts"),
    21608: (ProviderRejected, "unverified 'To' number (trial account)"),
    21610: (ContactOptedOut, "the recipient opted out (replied STOP to this sender)"),
    21612: (ProviderRejected, "the 'To' number cannot be reached by text from this sender"),
    21614: (ProviderRejected, "'To' is not a mobile number"),
    21617: (ProviderRejected, "message body too long"),
    30007: (ProviderRejected, "message filtered by the carrier"),
}


class TwilioAccount:
    """The account of one Twilio section: REST credentials, the webhook key, the API base."""

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str = "",
        api_key_sid: str = "",
        api_key_secret: str = "",
        base_url: str = DEFAULT_BASE_URL,
    ) -> None:
        self.account_sid = account_sid
        self._auth_token = auth_token
        self._username = api_key_sid or account_sid
        self._password = api_key_secret if api_key_sid else auth_token
        self.base_url = base_url.rstrip("/")

    def __repr__(self) -> str:  # no credentials, ever
        return f"TwilioAccount(account_sid={self.account_sid!r}, base_url={self.base_url!r})"

    @classmethod
    def from_options(cls, opts: ProviderOptions) -> TwilioAccount:
        """Read and check the account options; ``ConfigError`` names the key."""
        account_sid = opts.string("account_sid", required=True)
        if not account_sid.startswith("AC"):
            raise ConfigError(f"{opts.where('account_sid')}: expected an account SID (AC...)")
        key_sid = opts.string("api_key_sid")
        key_secret = opts.string("api_key_secret")
        if bool(key_sid) != bool(key_secret):
            missing = "api_key_secret" if key_sid else "api_key_sid"
            raise ConfigError(
                f"{opts.where(missing)}: missing; an API key needs its SID and secret"
            )
        token = opts.string("auth_token")
        if not token and not key_sid:
            raise ConfigError(
                f"{opts.where('auth_token')}: missing; needed to send (or set api_key_sid "
                "and api_key_secret)"
            )
        if not token and not opts.boolean("allow_unsigned", False):
            raise ConfigError(
                f"{opts.where('auth_token')}: missing; Twilio signs webhooks with it "
                "(set allow_unsigned = true to accept unsigned webhooks)"
            )
        return cls(
            account_sid=account_sid,
            auth_token=token,
            api_key_sid=key_sid,
            api_key_secret=key_secret,
            base_url=opts.base_url(DEFAULT_BASE_URL),
        )

    @property
    def signs(self) -> bool:
        """Whether there is an auth token to check webhook signatures with."""
        return bool(self._auth_token)

    def url(self, resource: str) -> str:
        """``{base_url}/2010-04-01/Accounts/{sid}/{resource}``."""
        return f"{self.base_url}/{API_VERSION}/Accounts/{self.account_sid}/{resource}"

    async def request(
        self, client: httpx.AsyncClient, method: str, resource: str, *, provider: str, **kw: Any
    ) -> http.ProviderAnswer:
        """One REST request; success (2xx) is returned, failure raised by
        :func:`raise_for_error` (network errors: ``ProviderUnavailable``)."""
        response = await http.call(
            client,
            method,
            self.url(resource),
            provider=provider,
            expected=tuple(range(200, 600)),  # every answer is read here, not by status alone
            auth=(self._username, self._password),
            headers={"Accept": "application/json"},
            **kw,
        )
        if response.is_success:
            return response
        raise_for_error(response, provider)

    def verify(self, request: WebhookRequest, *, allow_unsigned: bool, provider: str) -> bool:
        """The signature rule (``convo.providers.signing``) with ``X-Twilio-Signature``;
        True when the request was signed and matched."""
        given = request.header(SIGNATURE_HEADER) or ""
        if not must_check(
            provider,
            has_secret=self.signs,
            allow_unsigned=allow_unsigned,
            signed=bool(given),
            unsigned=f"webhook has no {SIGNATURE_HEADER} header",
        ):
            return False
        params = form_pairs(request) if request.method.upper() == "POST" else []
        for url in url_variants(request.url):
            expected = signature(self._auth_token, url, params)
            if hmac.compare_digest(given.strip().encode("utf-8", "replace"), expected.encode()):
                return True
        raise SignatureError(
            f"{provider}: {SIGNATURE_HEADER} does not match the URL and form parameters "
            "(is server.public_url the URL Twilio calls?)"
        )


def signature(
    auth_token: str, url: str, params: Sequence[tuple[str, str]] | Mapping[str, str]
) -> str:
    """The ``X-Twilio-Signature`` of a request to ``url`` with form ``params``."""
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    values: dict[str, set[str]] = {}
    for name, value in pairs:
        values.setdefault(name, set()).add(value)
    # As Twilio's RequestValidator: names sorted, each name's distinct values sorted.
    data = url + "".join(name + value for name in sorted(values) for value in sorted(values[name]))
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def url_variants(url: str) -> list[str]:
    """``url`` as given, and with its default port added or removed (Twilio signs the URL
    as it called it, which may or may not spell the port)."""
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.hostname or ""
    if default is None or not host:
        return [url]
    if parts.port is None:
        other = parts._replace(netloc=_netloc(parts.netloc, f"{host}:{default}"))
    elif parts.port == default:
        other = parts._replace(netloc=_netloc(parts.netloc, host))
    else:
        return [url]
    return [url, urlunsplit(other)]


def _netloc(netloc: str, hostport: str) -> str:
    userinfo, at, _ = netloc.rpartition("@")
    return f"{userinfo}{at}{hostport}"


def form_pairs(request: WebhookRequest) -> list[tuple[str, str]]:
    """Every form parameter of a POST, repeated names kept (the signature covers them all);
    ``[]`` for a body that is not a UTF-8 form (the check then fails, or parsing says why)."""
    ctype = (request.content_type or request.header("Content-Type") or "").lower()
    if "application/x-www-form-urlencoded" not in ctype:
        return []
    try:
        return parse_qsl(request.body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        return []


def form_fields(request: WebhookRequest, what: str) -> Mapping[str, str]:
    """The webhook's fields: the POST form, or the GET query (Twilio may be configured to
    call with GET). ``MalformedWebhook`` for a POST that is not a UTF-8 form."""
    if request.method.upper() == "GET":
        return request.query
    ctype = (request.content_type or request.header("Content-Type") or "").lower()
    if "application/x-www-form-urlencoded" not in ctype:
        raise MalformedWebhook(
            f"{what}: expected a form body (application/x-www-form-urlencoded), "
            f"got content type {ctype or 'none'!r}"
        )
    if request.form:
        return request.form
    try:
        return dict(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise MalformedWebhook(f"{what}: form body is not UTF-8") from None


def required(fields: Mapping[str, str], key: str, what: str) -> str:
    value = fields.get(key, "").strip()
    if not value:
        raise MalformedWebhook(f"{what}: field {key!r} is missing or empty")
    return value


def raise_for_error(response: http.ProviderAnswer, provider: str) -> NoReturn:
    """Raise the ``ProviderError`` for a failed REST answer: by Twilio's error ``code``
    (:data:`ERROR_CODES`) when the body has one we know, else by HTTP status. 429 and 503
    carry ``Retry-After`` when Twilio sent one."""
    status = response.status_code
    code: int | None = None
    message = ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        raw = body.get("code")
        code = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
        message = str(body.get("message") or "")[:300]
    known = ERROR_CODES.get(code) if code is not None else None
    meaning = known[1] if known else ""
    detail = f"HTTP {status}" + (f", error {code}" if code is not None else "")
    detail += f" ({meaning})" if meaning else ""
    detail += f": {message}" if message else ""
    text = f"{provider}: {detail}"
    code_text = str(code) if code is not None else str(status)
    if known is not None:
        cls = known[0]
    elif status == 429:
        cls = RateLimited
    elif status >= 500:
        cls = ProviderUnavailable
    else:
        cls = ProviderRejected
    if issubclass(cls, RateLimited | ProviderUnavailable):
        raise cls(text, provider=provider, code=code_text, retry_after=http.retry_after(response))
    raise cls(text, provider=provider, code=code_text)

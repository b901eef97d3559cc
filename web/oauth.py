"""OAuth 2.0 client credentials for the application API (RFC 6749 §4.4, RFC 6750, RFC 8705).

``POST /v1/oauth/token`` takes ``grant_type=client_credentials`` in a form body (§4.4.2),
the client authenticated with HTTP Basic (``client_id:client_secret``, §2.3.1) or with
``client_id`` / ``client_secret`` form fields, and an optional ``scope`` (a subset of the
client's scopes; all of them by default). It answers a bearer token (RFC 6750) valid
``ApiSettings.token_seconds``.

Decisions:

- **Opaque tokens held in memory.** The secret is an app password of the client's mailbox
  (:mod:`messaging.api_clients`), so checking it unlocks the mailbox's key bundle; the token
  keeps those keys for its lifetime, and only its SHA-256 is the lookup key. A restart
  forgets every token (clients ask for a new one, as RFC 6749 clients do on 401), and a
  token is valid on the front that issued it: several fronts behind one name need sticky
  sessions. Revoking a client revokes its secrets; its tokens die at their expiry, and at
  once on this front (:meth:`TokenStore.revoke_client`).
- **Errors** are problem details (RFC 9457) that also carry RFC 6749 §5.2's ``error``
  member (``invalid_client``, ``invalid_scope``, ``unsupported_grant_type``…), so both
  kinds of client library understand them.
- **Certificate-bound tokens (RFC 8705 §3).** TLS is terminated in front of Pli. When the
  terminator, at an address listed in ``ApiSettings.trusted_proxies``, forwards a client
  certificate it verified against the trust anchor (``ApiSettings.client_cert_header``,
  URL-encoded PEM), the token is bound to the certificate's SHA-256 thumbprint
  (``cnf.x5t#S256`` in the token response) and is refused with any other certificate or
  none. The header from any other address is ignored: it proves nothing.
- Failed authentications drain a per-address bucket (each costs one Argon2id run).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

import crypto
from messaging.api_clients import ApiClient
from messaging.errors import AuthenticationFailed
from messaging.types import Address
from web.api.context import ApiContext, ApiDep
from web.deps import ContextDep
from web.problems import PROBLEM_JSON, ApiError, FieldError
from web.ratelimit import client_key

__all__ = [
    "router",
    "Grant",
    "TokenStore",
    "CurrentGrant",
    "require_scope",
    "certificate_thumbprint",
]

_TOKEN_PREFIX = "pli_at_"  # noqa: S105 - a prefix, not a secret


@dataclass(frozen=True, slots=True)
class Grant:
    """What a live bearer token stands for."""

    client: ApiClient
    keys: crypto.MailboxKeys
    scopes: frozenset[str]
    expires_at: float
    thumbprint: str | None = None
    credential_id: str = ""
    """The secret (app password credential) the token was issued for."""

    @property
    def address(self) -> Address:
        return self.client.address


class TokenStore:
    """Live tokens by the SHA-256 of their value; bounded, oldest dropped first."""

    def __init__(self, *, max_tokens: int, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._tokens: OrderedDict[bytes, Grant] = OrderedDict()
        self._max = max_tokens
        self._monotonic = monotonic

    def now(self) -> float:
        return self._monotonic()

    def issue(self, grant: Grant) -> str:
        token = _TOKEN_PREFIX + secrets.token_urlsafe(32)
        self._tokens[_digest(token)] = grant
        now = self._monotonic()
        while self._tokens:
            oldest_key, oldest = next(iter(self._tokens.items()))
            if len(self._tokens) <= self._max and oldest.expires_at > now:
                break
            del self._tokens[oldest_key]
        return token

    def find(self, token: str) -> Grant | None:
        key = _digest(token)
        grant = self._tokens.get(key)
        if grant is None:
            return None
        if grant.expires_at <= self._monotonic():
            del self._tokens[key]
            return None
        return grant

    def revoke_client(self, client_id: str) -> int:
        doomed = [k for k, g in self._tokens.items() if g.client.client_id == client_id]
        for key in doomed:
            del self._tokens[key]
        return len(doomed)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def tokens_of(api: ApiContext) -> TokenStore:
    store = api.tokens
    assert isinstance(store, TokenStore)  # noqa: S101 - set by create_app
    return store


def certificate_thumbprint(request: Request, api: ApiContext) -> str | None:
    """The base64url SHA-256 of the client certificate the trusted TLS terminator verified."""
    settings = api.settings
    peer = request.client.host if request.client is not None else ""
    if peer not in settings.trusted_proxies:
        return None
    value = request.headers.get(settings.client_cert_header)
    if not value:
        return None
    pem = urllib.parse.unquote(value)
    lines = [ln.strip() for ln in pem.strip().splitlines()]
    if len(lines) < 3 or not lines[0].startswith("-----BEGIN CERTIFICATE"):
        raise ApiError(400, "Invalid client certificate", "the forwarded certificate is not PEM")
    try:
        der = base64.b64decode("".join(lines[1:-1]), validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(
            400, "Invalid client certificate", "the forwarded certificate is not PEM"
        ) from None
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


# -- the token endpoint ---------------------------------------------------------------------

router = APIRouter(prefix="/v1/oauth", tags=["oauth"])


class TokenOut(BaseModel):
    """RFC 6749 §5.1 access token response (RFC 8705 ``cnf`` when certificate-bound)."""

    access_token: str
    token_type: str = Field(description="Always `Bearer` (RFC 6750)")
    expires_in: int = Field(description="Seconds the token is valid")
    scope: str = Field(description="The granted scopes, space-separated")
    cnf: dict[str, str] | None = Field(
        default=None, description='`{"x5t#S256": thumbprint}` of the bound certificate'
    )


def _oauth_error(
    status: int, error: str, detail: str, field: str | None = None, *, basic: bool = False
) -> JSONResponse:
    body: dict[str, object] = {
        "type": "about:blank",
        "title": "Token request refused",
        "status": status,
        "detail": detail,
        "error": error,
        "error_description": detail,
    }
    if field is not None:
        body["errors"] = [{"field": field, "in": "body", "message": detail}]
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="Pli API"' if basic else "Bearer"
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _basic_client(header: str | None) -> tuple[str, str] | None:
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(":")
    if not colon:
        return None
    # RFC 6749 §2.3.1: both are form-urlencoded before Basic encoding.
    return urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(password)


@router.post(
    "/token",
    summary="A bearer token for client credentials (RFC 6749 §4.4)",
    response_model=TokenOut,
    responses={
        400: {"description": "Bad grant type or scope", "content": {PROBLEM_JSON: {}}},
        401: {"description": "Wrong client credentials", "content": {PROBLEM_JSON: {}}},
        429: {"description": "Too many failed attempts", "content": {PROBLEM_JSON: {}}},
    },
)
async def token(
    request: Request,
    api: ApiDep,
    web: ContextDep,
    grant_type: Annotated[str, Form(max_length=64, description="`client_credentials`")],
    scope: Annotated[str | None, Form(max_length=1024)] = None,
    client_id: Annotated[str | None, Form(max_length=128)] = None,
    client_secret: Annotated[str | None, Form(max_length=256)] = None,
) -> JSONResponse:
    peer = client_key(request.client.host) if request.client is not None else "unknown"
    gate = web.auth_failures.check(peer)
    if not gate.allowed:
        raise ApiError(
            429,
            "Too many requests",
            f"too many failed authentications; retry in {gate.retry_after} s",
            headers={"Retry-After": str(gate.retry_after)},
        )
    basic = _basic_client(request.headers.get("authorization"))
    if basic is not None and (client_id or client_secret):
        return _oauth_error(400, "invalid_request", "use one client authentication method")
    if basic is None and (client_id is None or client_secret is None):
        return _oauth_error(401, "invalid_client", "client authentication is required", basic=True)
    cid, secret = basic if basic is not None else (client_id or "", client_secret or "")
    if grant_type != "client_credentials":
        return _oauth_error(
            400,
            "unsupported_grant_type",
            "only the client_credentials grant is supported",
            "grant_type",
        )
    try:
        authenticated = await api.services.clients.authenticate(cid, secret)
    except AuthenticationFailed:
        web.auth_failures.take(peer)
        return _oauth_error(401, "invalid_client", "unknown client or wrong secret", basic=True)
    client = authenticated.client
    wanted = frozenset(scope.split()) if scope else client.scopes
    if not wanted <= client.scopes:
        extra = ", ".join(sorted(wanted - client.scopes))
        return _oauth_error(
            400, "invalid_scope", f"scopes not granted to this client: {extra}", "scope"
        )
    thumbprint = certificate_thumbprint(request, api)
    store = tokens_of(api)
    ttl = api.settings.token_seconds
    value = store.issue(
        Grant(
            client=client,
            keys=authenticated.unlocked.keys,
            scopes=wanted,
            expires_at=store.now() + ttl,
            thumbprint=thumbprint,
            credential_id=authenticated.unlocked.credential_id,
        )
    )
    body = TokenOut(
        access_token=value,
        token_type="Bearer",  # noqa: S106 - RFC 6750 token type
        expires_in=ttl,
        scope=" ".join(sorted(wanted)),
        cnf={"x5t#S256": thumbprint} if thumbprint else None,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


# -- the bearer dependency ------------------------------------------------------------------

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A token from `POST /v1/oauth/token` (OAuth 2.0 client credentials).",
)


def _unauthorised(detail: str, error: str = "invalid_token") -> ApiError:
    return ApiError(
        401,
        "Authentication failed",
        detail,
        headers={"WWW-Authenticate": f'Bearer realm="Pli API", error="{error}"'},
    )


async def get_grant(
    request: Request,
    api: ApiDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Grant:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(
            401,
            "Authentication failed",
            "a bearer token is required (POST /v1/oauth/token)",
            headers={"WWW-Authenticate": 'Bearer realm="Pli API"'},
        )
    grant = tokens_of(api).find(credentials.credentials)
    if grant is None:
        raise _unauthorised("the token is unknown or expired")
    if grant.thumbprint is not None and certificate_thumbprint(request, api) != grant.thumbprint:
        raise _unauthorised("the token is bound to another client certificate (RFC 8705)")
    rate = grant.client.rate_per_minute or api.settings.rate_per_minute
    decision = api.limiter(rate).take(grant.client.client_id)
    if not decision.allowed:
        raise ApiError(
            429,
            "Too many requests",
            f"this client's rate limit is reached; retry in {decision.retry_after} s",
            headers={"Retry-After": str(decision.retry_after)},
        )
    request.state.api_client = grant.client.client_id
    return grant


CurrentGrant = Annotated[Grant, Depends(get_grant)]


def require_scope(scope: str) -> Callable[[Grant], Awaitable[Grant]]:
    """A dependency that refuses (403) a token without ``scope``."""

    async def check(grant: CurrentGrant) -> Grant:  # async: a def costs a thread hop per call
        if scope not in grant.scopes:
            raise ApiError(
                403,
                "Insufficient scope",
                f"this token lacks the scope {scope!r}",
                [FieldError("scope", f"requires {scope}", "header")],
                headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
            )
        return grant

    return check

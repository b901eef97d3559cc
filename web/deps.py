"""Dependencies of the routes, as ``Annotated`` aliases.

The services given to :func:`web.create_app` live in one :class:`WebContext` on
``app.state``; routes ask for what they need (``DirectoryDep``, ``KeyLogDep``) and for the
caller (``CurrentCaller``, ``OptionalProfessional``).

Who the caller is, decided once per request by :func:`get_caller`:

- with an ``Authorization`` header: the credentials are checked by the
  :class:`~web.auth.Authenticator`; wrong ones of any kind get 401, the same answer
  whether or not the address exists. Failed checks drain a per-client-address bucket; when
  it is empty the credentials are not checked at all (429), so nobody can make the server
  run Argon2id at will;
- without: an anonymous caller, who takes one token of the client address's bucket per
  request, or gets 429 with ``Retry-After``.

Authenticated professionals are not rate-limited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, Request, Security
from fastapi.openapi.models import HTTPBase as HTTPBaseModel
from fastapi.security.base import SecurityBase

from messaging.directory import Directory
from messaging.ports import KeyLog
from messaging.types import Address
from web.auth import Authenticator, parse_basic
from web.problems import ApiError
from web.ratelimit import RateLimiter, client_key
from web.settings import WebSettings

__all__ = [
    "WebContext",
    "Caller",
    "ContextDep",
    "SettingsDep",
    "DirectoryDep",
    "KeyLogDep",
    "CurrentCaller",
    "OptionalProfessional",
    "get_caller",
    "WWW_AUTHENTICATE",
]

WWW_AUTHENTICATE = 'Basic realm="Pli directory", charset="UTF-8"'


@dataclass(frozen=True, slots=True)
class WebContext:
    """What :func:`web.create_app` was given, plus the rate limiters it built."""

    settings: WebSettings
    directory: Directory | None
    key_log: KeyLog | None
    authenticator: Authenticator | None
    limiter: RateLimiter
    auth_failures: RateLimiter


def get_context(request: Request) -> WebContext:
    return cast(WebContext, request.app.state.web)


ContextDep = Annotated[WebContext, Depends(get_context)]


def get_settings(context: ContextDep) -> WebSettings:
    return context.settings


def get_directory(context: ContextDep) -> Directory:
    if context.directory is None:  # routers are only included with their service
        raise ApiError(503, "Service unavailable", "the directory is not configured")
    return context.directory


def get_key_log(context: ContextDep) -> KeyLog:
    if context.key_log is None:
        raise ApiError(503, "Service unavailable", "the key log is not configured")
    return context.key_log


SettingsDep = Annotated[WebSettings, Depends(get_settings)]
DirectoryDep = Annotated[Directory, Depends(get_directory)]
KeyLogDep = Annotated[KeyLog, Depends(get_key_log)]


class _BasicAuthorization(SecurityBase):
    """Declares HTTP Basic in the OpenAPI document; hands over the raw header.

    FastAPI's own ``HTTPBasic`` decodes credentials as ASCII only; :func:`parse_basic`
    reads UTF-8 (RFC 7617 ``charset``), so parsing stays ours.
    """

    def __init__(self) -> None:
        self.model = HTTPBaseModel(
            scheme="basic",
            description="A professional's mailbox address and one of its app passwords. "
            "Optional: without it the caller is anonymous (smaller pages, rate-limited). "
            "Only over TLS.",
        )
        self.scheme_name = "professional"

    async def __call__(self, request: Request) -> str | None:
        return request.headers.get("authorization")


_basic_authorization = _BasicAuthorization()


@dataclass(frozen=True, slots=True)
class Caller:
    """The client address of the request and, when authenticated, the professional."""

    client: str
    professional: Address | None = None

    @property
    def is_professional(self) -> bool:
        return self.professional is not None

    def page_cap(self, settings: WebSettings) -> int:
        if self.professional is not None:
            return settings.professional_page_size
        return settings.anonymous_page_size


def _too_many(retry_after: int) -> ApiError:
    return ApiError(
        429,
        "Too many requests",
        f"too many requests from this address; retry in {retry_after} s",
        headers={"Retry-After": str(retry_after)},
    )


def _unauthorised() -> ApiError:
    return ApiError(
        401,
        "Authentication failed",
        "the address or the app password is wrong",
        headers={"WWW-Authenticate": WWW_AUTHENTICATE},
    )


async def get_caller(
    request: Request,
    context: ContextDep,
    authorization: Annotated[str | None, Security(_basic_authorization)],
) -> Caller:
    client = client_key(request.client.host) if request.client is not None else "unknown"
    if authorization is None:
        decision = context.limiter.take(client)
        if not decision.allowed:
            raise _too_many(decision.retry_after)
        return Caller(client)
    gate = context.auth_failures.check(client)
    if not gate.allowed:
        raise _too_many(gate.retry_after)
    credentials = parse_basic(authorization)
    professional = None
    if credentials is not None and context.authenticator is not None:
        professional = await context.authenticator.professional(*credentials)
    if professional is None:
        context.auth_failures.take(client)
        raise _unauthorised()
    return Caller(client, professional)


CurrentCaller = Annotated[Caller, Depends(get_caller)]


async def get_optional_professional(caller: CurrentCaller) -> Address | None:
    return caller.professional


OptionalProfessional = Annotated[Address | None, Depends(get_optional_professional)]

"""What the application API's routes need, handed to :func:`web.create_app` as one value.

``pli/wiring.py`` builds an :class:`ApiServices` from the wired services; the application
keeps an :class:`ApiContext` (those services plus the token store and rate limiters it
made) on ``app.state.api``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, cast

from fastapi import Depends, Request

import crypto
from messaging.api_clients import ApiClientService, ApiState
from messaging.ports import Clock, MailboxStore, Notifier
from messaging.sealed import SealedIntake
from messaging.service import DeliveryService
from web.api.settings import ApiSettings
from web.problems import ApiError
from web.ratelimit import RateLimiter

__all__ = ["ApiServices", "ApiContext", "ApiDep", "get_api"]


@dataclass(frozen=True, slots=True)
class ApiServices:
    """The services of the application API (see :mod:`messaging.api_clients`)."""

    clients: ApiClientService
    state: ApiState
    delivery: DeliveryService
    intake: SealedIntake
    store: MailboxStore
    """Read side only: a client's own folders, messages and flags."""
    notifier: Notifier
    clock: Clock
    webhook_key: crypto.SigningKey
    """Signs webhook payloads; its public half is published at ``/v1/webhooks/signing-key``."""
    domain: str
    settings: ApiSettings = field(default_factory=ApiSettings)


@dataclass
class ApiContext:
    services: ApiServices
    tokens: object
    """The :class:`web.oauth.TokenStore` (typed there; kept loose to avoid an import cycle)."""
    limiters: dict[int, RateLimiter] = field(default_factory=dict)

    @property
    def settings(self) -> ApiSettings:
        return self.services.settings

    def limiter(self, rate_per_minute: float) -> RateLimiter:
        """One bucket set per distinct rate (clients of one rate share it, keyed by id)."""
        key = round(rate_per_minute * 1000)
        found = self.limiters.get(key)
        if found is None:
            found = RateLimiter(
                rate=rate_per_minute / 60.0,
                burst=max(1, min(self.settings.rate_burst, int(rate_per_minute))),
                max_keys=self.settings.max_tokens,
            )
            self.limiters[key] = found
        return found


async def get_api(request: Request) -> ApiContext:  # async: FastAPI runs a def in a thread
    found = getattr(request.app.state, "api", None)
    if found is None:  # routers are only included with their services
        raise ApiError(503, "Service unavailable", "the application API is not configured")
    return cast(ApiContext, found)


ApiDep = Annotated[ApiContext, Depends(get_api)]

"""Wiring of the application API (``web/api``): its state, services and webhook worker.

Kept apart from :mod:`pli.wiring` so the API adds one module rather than edits there.
"""

from __future__ import annotations

import hashlib
import hmac

import crypto
from messaging.api_clients import ApiClientService
from pli.secrets import InstanceSecrets
from pli.settings import Settings
from pli.wiring import Pli
from web.api import ApiServices, ApiSettings

__all__ = ["api_services", "api_settings", "client_service", "webhook_signing_key"]


def webhook_signing_key(secrets: InstanceSecrets) -> crypto.SigningKey:
    """The Ed25519 key that signs webhooks, derived from the instance key (never stored)."""
    seed = hmac.new(secrets.instance_key, b"pli webhook signing key v1", hashlib.sha256).digest()
    return crypto.SigningKey.from_seed(seed)


def api_settings(settings: Settings) -> ApiSettings:
    return ApiSettings(
        token_seconds=settings.api_token_seconds,
        rate_per_minute=settings.api_rate_per_minute,
        max_message_size=settings.max_message_size,
        request_timeout_seconds=settings.api_request_timeout_seconds,
        trusted_proxies=frozenset(settings.api_trusted_proxies),
        webhook_max_attempts=settings.api_webhook_max_attempts,
        webhook_allow_http=settings.api_webhook_allow_http,
    )


def client_service(pli: Pli) -> ApiClientService:
    return ApiClientService(
        state=pli.store.api_state(), accounts=pli.accounts, store=pli.store, clock=pli.clock
    )


def api_services(pli: Pli, settings: ApiSettings | None = None) -> ApiServices:
    clients = client_service(pli)
    return ApiServices(
        clients=clients,
        state=clients.state,
        delivery=pli.delivery,
        intake=pli.sealed_intake(),
        store=pli.store,
        notifier=pli.notifier,
        clock=pli.clock,
        webhook_key=webhook_signing_key(pli.secrets),
        domain=pli.settings.domain,
        settings=settings or api_settings(pli.settings),
    )

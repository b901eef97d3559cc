"""Checking a webhook request from Pli (see :mod:`web.webhooks` for the format)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

import crypto
from crypto.encoding import b64url_decode

__all__ = ["WebhookRefused", "verify_webhook"]

_CONTEXT = b"pli-webhook-v1\x00"


class WebhookRefused(Exception):
    """The request is not a fresh event signed by Pli."""


def verify_webhook(
    body: bytes,
    headers: Mapping[str, str],
    public_key: bytes,
    *,
    tolerance_seconds: int = 300,
    now: float | None = None,
) -> dict[str, object]:
    """The event of a webhook request whose signature and timestamp check out.

    ``headers`` is looked up case-insensitively; ``public_key`` is the raw Ed25519 key of
    ``GET /v1/webhooks/signing-key``. Raises :class:`WebhookRefused` for a missing or bad
    signature, or a timestamp more than ``tolerance_seconds`` away (a replay).
    """
    lower = {k.lower(): v for k, v in headers.items()}
    timestamp = lower.get("pli-webhook-timestamp", "")
    signature = lower.get("pli-webhook-signature", "")
    if not timestamp.isdigit() or not signature.startswith("ed25519="):
        raise WebhookRefused("missing or malformed signature headers")
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance_seconds:
        raise WebhookRefused("the timestamp is too old or in the future (replay?)")
    try:
        raw = b64url_decode(signature.removeprefix("ed25519="))
    except crypto.CryptoError:
        raise WebhookRefused("the signature is not base64url") from None
    message = _CONTEXT + timestamp.encode("ascii") + b"." + body
    if not crypto.verify_signature(crypto.SigningPublicKey(public_key), message, raw):
        raise WebhookRefused("the signature does not verify")
    event = json.loads(body)
    if not isinstance(event, dict):
        raise WebhookRefused("the body is not an event object")
    return event

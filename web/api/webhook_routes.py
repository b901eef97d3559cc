"""``/v1/webhooks``: register webhooks, see their delivery log, get the signing key.

See :mod:`web.webhooks` for the events, the signature and the retries. Registering needs
the ``webhooks`` scope; a URL must be ``https://`` (``http://`` only where the operator
allowed it, for a receiver on the same host).
"""

from __future__ import annotations

import secrets
import urllib.parse
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from crypto.encoding import b64url_encode
from messaging.api_clients import Webhook
from messaging.errors import NotFound
from web.api.context import ApiDep
from web.api.schemas import (
    SigningKeyOut,
    WebhookDeliveryListOut,
    WebhookDeliveryOut,
    WebhookIn,
    WebhookListOut,
    WebhookOut,
)
from web.idempotency import IDEMPOTENCY_HEADER, check_key, idempotent, request_hash
from web.oauth import Grant, require_scope
from web.problems import PROBLEM_JSON, ApiError, FieldError

__all__ = ["router"]

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

Manager = Annotated[Grant, Depends(require_scope("webhooks"))]
_MAX_WEBHOOKS = 10
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No or bad token", "content": {PROBLEM_JSON: {}}},
    403: {"description": "The token lacks the webhooks scope", "content": {PROBLEM_JSON: {}}},
}


def _out(hook: Webhook) -> WebhookOut:
    return WebhookOut(
        id=hook.id, url=hook.url, events=sorted(hook.events), created_at=hook.created_at
    )


@router.get(
    "/signing-key",
    response_model=SigningKeyOut,
    summary="The Ed25519 public key that signs every webhook request",
)
async def signing_key(api: ApiDep) -> SigningKeyOut:
    return SigningKeyOut(
        algorithm="Ed25519", key=b64url_encode(api.services.webhook_key.public.raw)
    )


@router.post(
    "",
    status_code=201,
    response_model=WebhookOut,
    responses={
        **_ERRORS,
        409: {"description": "Too many webhooks", "content": {PROBLEM_JSON: {}}},
        422: {"description": "Bad URL or events", "content": {PROBLEM_JSON: {}}},
    },
    summary="Register a webhook",
)
async def create(
    request: Request,
    api: ApiDep,
    grant: Manager,
    body: WebhookIn,
    idempotency_key: Annotated[
        str | None, Header(alias=IDEMPOTENCY_HEADER, min_length=1, max_length=255)
    ] = None,
) -> Response:
    key = check_key(idempotency_key, required=False)
    parsed = urllib.parse.urlsplit(body.url)
    allowed = {"https"} | ({"http"} if api.settings.webhook_allow_http else set())
    if parsed.scheme not in allowed or not parsed.hostname or parsed.username or parsed.password:
        raise ApiError(
            422,
            "Invalid field",
            f"url must be an {' or '.join(sorted(allowed))} URL without credentials",
            [FieldError("url", "an https:// URL", "body")],
        )
    digest = request_hash(request, body.model_dump_json())

    async def work() -> Response:
        existing = await api.services.state.list_webhooks(grant.client.client_id)
        if len(existing) >= _MAX_WEBHOOKS:
            raise ApiError(409, "Too many webhooks", f"at most {_MAX_WEBHOOKS} per client")
        hook = Webhook(
            id=f"wh_{secrets.token_hex(10)}",
            client_id=grant.client.client_id,
            url=body.url,
            events=frozenset(body.events),
            created_at=api.services.clock.now(),
        )
        await api.services.state.create_webhook(hook)
        return JSONResponse(
            _out(hook).model_dump(mode="json"),
            status_code=201,
            headers={"Location": f"/v1/webhooks/{hook.id}"},
        )

    return await idempotent(request, api, grant.client.client_id, key, digest, work)


@router.get("", response_model=WebhookListOut, responses=_ERRORS, summary="This client's webhooks")
async def list_webhooks(api: ApiDep, grant: Manager) -> WebhookListOut:
    hooks = await api.services.state.list_webhooks(grant.client.client_id)
    return WebhookListOut(webhooks=[_out(h) for h in hooks])


@router.get(
    "/deliveries",
    response_model=WebhookDeliveryListOut,
    responses=_ERRORS,
    summary="The delivery log: every event, its attempts and their outcome (newest first)",
)
async def deliveries(
    api: ApiDep, grant: Manager, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> WebhookDeliveryListOut:
    found = await api.services.state.list_deliveries(grant.client.client_id, limit)
    return WebhookDeliveryListOut(
        deliveries=[
            WebhookDeliveryOut(
                id=d.id,
                webhook_id=d.webhook_id,
                event=d.event,
                state=d.state,  # type: ignore[arg-type]
                attempts=d.attempts,
                last_status=d.last_status,
                last_error=d.last_error,
                created_at=d.created_at,
                next_attempt_at=d.next_attempt_at,
                delivered_at=d.delivered_at,
                payload=d.payload,
            )
            for d in found
        ]
    )


@router.delete(
    "/{webhook_id}",
    status_code=204,
    responses={**_ERRORS, 404: {"description": "No such webhook", "content": {PROBLEM_JSON: {}}}},
    summary="Remove a webhook (its pending events are dropped)",
)
async def delete(
    api: ApiDep, grant: Manager, webhook_id: Annotated[str, Path(min_length=1, max_length=64)]
) -> Response:
    try:
        await api.services.state.delete_webhook(grant.client.client_id, webhook_id)
    except NotFound:
        raise ApiError(404, "Not found", "this client has no such webhook") from None
    return Response(status_code=204)

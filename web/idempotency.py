"""``Idempotency-Key`` for the API's POST requests (draft-ietf-httpapi-idempotency-key-header).

A client that retries a POST with the same key gets the first answer again, and nothing is
done twice:

- same key, same request (method, path, query and body hash) → the stored response, with
  ``Idempotent-Replayed: true``;
- same key, different request → ``422`` naming the ``Idempotency-Key`` header;
- same key while the first request is still running (concurrent duplicates) → the second
  waits up to ``wait_seconds`` for the first to finish and replays its answer, else
  ``409`` with ``Retry-After``; only one of them ever delivers, because the claim is one
  insert under the primary key ``(client, key)``;
- a request that failed without an answer worth keeping (5xx, 429, 503) releases its claim,
  so the retry runs again; client errors (4xx) are stored and replayed like successes.

Keys are 1 to 255 printable ASCII characters, kept per client. A claim whose request never
finished (the process died) is taken over after ``ApiSettings.idempotency_stale_seconds``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from messaging.api_clients import IdempotencyRecord
from web.api.context import ApiContext
from web.problems import ApiError, FieldError, render

__all__ = ["IDEMPOTENCY_HEADER", "check_key", "request_hash", "idempotent"]

IDEMPOTENCY_HEADER = "Idempotency-Key"
_REPLAYED = "Idempotent-Replayed"
_KEEP_HEADERS = ("location",)
_RETRYABLE = {401, 403, 408, 409, 429}


def check_key(key: str | None, *, required: bool) -> str | None:
    if key is None:
        if required:
            raise ApiError.bad_parameter(
                IDEMPOTENCY_HEADER, "this POST needs an Idempotency-Key header", "header"
            )
        return None
    if not 1 <= len(key) <= 255 or not all(" " <= c <= "~" for c in key):
        raise ApiError.bad_parameter(
            IDEMPOTENCY_HEADER, "1 to 255 printable ASCII characters", "header"
        )
    return key


def request_hash(request: Request, body_digest: str) -> str:
    target = f"{request.method} {request.url.path}?{request.url.query}"
    return hashlib.sha256(f"{target}\n{body_digest}".encode()).hexdigest()


def _replay(record: IdempotencyRecord) -> Response:
    headers = json.loads(record.headers) if record.headers else {}
    headers[_REPLAYED] = "true"
    media = headers.pop("content-type", "application/json")
    assert record.status is not None  # noqa: S101 - only finished records are replayed
    return Response(record.body, status_code=record.status, media_type=media, headers=headers)


async def idempotent(
    request: Request,
    api: ApiContext,
    client_id: str,
    key: str | None,
    digest: str,
    work: Callable[[], Awaitable[Response]],
    *,
    wait_seconds: float = 10.0,
) -> Response:
    """Run ``work`` once per ``(client_id, key)`` (see the module docstring)."""
    state = api.services.state
    if key is None:
        response = await work()
        sends, events = getattr(request.state, "pending_sends", ((), ()))
        await state.record_sends(sends, events)
        return response
    clock = api.services.clock
    wanted = request_hash(request, digest)
    stale = timedelta(seconds=api.settings.idempotency_stale_seconds)
    deadline = asyncio.get_running_loop().time() + wait_seconds
    while True:
        now = clock.now()
        existing = await state.claim_idempotency(
            IdempotencyRecord(client_id, key, wanted, now), stale_before=now - stale
        )
        if existing is None:
            break
        if existing.request_hash != wanted:
            raise ApiError(
                422,
                "Idempotency key reused",
                "this Idempotency-Key was used for a different request",
                [FieldError(IDEMPOTENCY_HEADER, "already used for another request", "header")],
            )
        if existing.status is not None:
            return _replay(existing)
        if asyncio.get_running_loop().time() >= deadline:
            raise ApiError(
                409,
                "Request in progress",
                "a request with this Idempotency-Key is still being processed",
                [FieldError(IDEMPOTENCY_HEADER, "in progress", "header")],
                headers={"Retry-After": "1"},
            )
        await asyncio.sleep(0.05)
    try:
        response = await work()
    except ApiError as exc:
        if exc.status >= 500 or exc.status in _RETRYABLE:
            await state.release_idempotency(client_id, key)
            raise
        response = render(
            request.url.path,
            exc.status,
            exc.title,
            exc.detail,
            errors=exc.errors,
            headers=dict(exc.headers),
        )
    except BaseException:
        await asyncio.shield(state.release_idempotency(client_id, key))
        raise
    if response.status_code >= 500:
        await state.release_idempotency(client_id, key)
        return response
    kept = {k: v for k, v in response.headers.items() if k.lower() in _KEEP_HEADERS}
    kept["content-type"] = response.headers.get("content-type", "application/json")
    # The sends a 201 reports are written with its idempotency record: one commit, not two.
    # Shielded: once delivered, a client hanging up must not leave the claim unanswered
    # (a retry would then deliver again after the stale delay).
    sends, events = getattr(request.state, "pending_sends", ((), ()))
    await asyncio.shield(
        state.complete_idempotency(
            client_id,
            key,
            response.status_code,
            bytes(response.body),
            json.dumps(kept),
            sends,
            events,
        )
    )
    return response


def json_response(status: int, body: object, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)

"""The application API for health software (``/v1``): OAuth, messages, mailbox, webhooks.

:func:`install` adds it to an application made by :func:`web.create_app` (which calls it
when given ``api=``): the routers, the token store, the per-call trace and the request
schemas of the bodies read by hand (JSON or multipart) in the OpenAPI document.

Every call is traced without content (:class:`CallTrace`): who (``api:<client_id>``), the
route template (not the concrete path), the method and the status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from messaging.api_clients import ApiState
from messaging.ports import Clock
from messaging.types import TraceEntry
from web.api import mailbox, messages, webhook_routes
from web.api.context import ApiContext, ApiServices
from web.api.schemas import REQUEST_MODELS
from web.api.settings import ApiSettings
from web.oauth import TokenStore
from web.oauth import router as oauth_router

__all__ = ["ApiServices", "ApiSettings", "ApiContext", "install", "CallTrace"]

log = logging.getLogger("pli.web.api")


class CallTrace:
    """Writes one trace line per API call, from one background task (never the caller's),
    in batches."""

    def __init__(self, state: ApiState, *, max_pending: int = 10_000) -> None:
        self._state = state
        self._queue: asyncio.Queue[TraceEntry] = asyncio.Queue(max_pending)
        self._task: asyncio.Task[None] | None = None

    def add(self, entry: TraceEntry) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())
        try:
            self._queue.put_nowait(entry)
        except asyncio.QueueFull:
            log.warning("trace queue full: a call went untraced", extra={"action": entry.action})

    async def _drain(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < 500:
                batch.append(self._queue.get_nowait())
            try:
                # One transaction for every line queued meanwhile: under load, one commit
                # covers many calls instead of one fsync each.
                await self._state.record_calls(batch)
            except Exception:
                log.exception("could not write trace lines", extra={"lines": len(batch)})

    async def close(self) -> None:
        """Write what is queued, then stop the writer (before the store closes)."""
        await self.flush()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def flush(self, timeout: float = 5.0) -> None:
        """Write what is queued (at shutdown, and in tests before reading the trace)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not self._queue.empty():
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.05)


_TRACED = ("/v1/messages", "/v1/mailbox", "/v1/webhooks", "/v1/oauth")


class _TraceCalls:
    """Pure ASGI middleware adding each API call to the :class:`CallTrace`.

    Not ``@app.middleware("http")``: Starlette's ``BaseHTTPMiddleware`` runs every request
    in an extra task with memory streams, a cost paid by every send under load.
    """

    def __init__(self, app: ASGIApp, *, trace: CallTrace, clock: Clock) -> None:
        self._app = app
        self._trace = trace
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(_TRACED):
            await self._app(scope, receive, send)
            return
        status = 500  # what the server answers when the application raised

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, sending)
        finally:
            client_id = scope.get("state", {}).get("api_client")
            route = scope.get("route")
            template = getattr(route, "path", None) or "(no route)"
            self._trace.add(
                TraceEntry(
                    actor=f"api:{client_id}" if client_id else "api:anonymous",
                    action="api-call",
                    subject=client_id or "",
                    at=self._clock.now(),
                    details={
                        "method": str(scope.get("method", "")),
                        "route": str(template),
                        "status": str(status),
                    },
                )
            )


_API_PREFIXES = ("/v1/oauth", "/v1/messages", "/v1/mailbox", "/v1/webhooks")
_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details; `errors` names the fields at fault",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "error": {"type": "string", "description": "RFC 6749 §5.2 code (token endpoint)"},
        "error_description": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "in", "message"],
                "properties": {
                    "field": {"type": "string"},
                    "in": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
    },
}


def _problem_responses(schema: dict[str, Any]) -> None:
    """Every error of the application API is documented as what it is: problem+json."""
    schema["components"]["schemas"]["Problem"] = _PROBLEM_SCHEMA
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith(_API_PREFIXES):
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status in ("400", "401", "403", "404", "408", "409", "413", "415", "422", "429"):
                if status in responses or status in ("400", "401", "413", "415", "422", "429"):
                    entry = responses.setdefault(status, {"description": "A problem"})
                    entry["content"] = problem
            responses.pop("default", None)


def install(app: FastAPI, services: ApiServices) -> ApiContext:
    context = ApiContext(
        services=services, tokens=TokenStore(max_tokens=services.settings.max_tokens)
    )
    trace = CallTrace(services.state)
    app.state.api = context
    app.state.api_trace = trace
    app.include_router(oauth_router)
    app.include_router(messages.router)
    app.include_router(mailbox.router)
    app.include_router(webhook_routes.router)

    app.add_middleware(_TraceCalls, trace=trace, clock=services.clock)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in REQUEST_MODELS:
            body = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, definition in body.pop("$defs", {}).items():
                components.setdefault(name, definition)
            components[model.__name__] = body
        _problem_responses(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return context

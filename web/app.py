"""The application factory of the HTTP front.

:func:`create_app` includes a router only for the services it is given: the directory's
search and mailbox routes and the FHIR API with a ``directory``, the transparency log's
routes with a ``key_log``. ``/healthz``, ``/openapi.json`` and ``/docs`` are always there.

Errors are RFC 9457 problem details (``application/problem+json``) everywhere, including
for routes that do not exist and for request validation (400 naming the parameter), and
FHIR ``OperationOutcome`` resources under ``/fhir`` (see :mod:`web.problems`). No input
ends in a bare 500: an unexpected exception is logged and answered with a 500 problem
that says nothing about it.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from messaging.directory import Directory
from messaging.errors import Unavailable
from messaging.ports import KeyLog
from web.api import ApiServices
from web.api import install as install_api
from web.auth import Authenticator
from web.deps import WebContext
from web.problems import ApiError, FieldError, problem, render
from web.ratelimit import RateLimiter
from web.routes import directory as directory_routes
from web.routes import fhir as fhir_routes
from web.routes import log as log_routes
from web.settings import WebSettings

__all__ = ["create_app", "problem"]

log = logging.getLogger("pli.web")

_STATUS_TITLES = {
    400: "Bad request",
    401: "Authentication failed",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
}


def _field_errors(exc: RequestValidationError) -> list[FieldError]:
    errors = []
    for error in exc.errors():
        location = [str(part) for part in error.get("loc", ())]
        where = location[0] if location else "query"
        name = ".".join(location[1:]) or where
        errors.append(FieldError(name, f"{name}: {error.get('msg', 'invalid')}", where))
    return errors


def create_app(
    *,
    directory: Directory | None = None,
    key_log: KeyLog | None = None,
    authenticator: Authenticator | None = None,
    settings: WebSettings | None = None,
    version: str = "0.1.0",
    api: ApiServices | None = None,
) -> FastAPI:
    """The HTTP front over the given services (each router only if its service is given).

    Without an ``authenticator`` every caller is anonymous, and credentials are refused.
    With ``api``, the application API for health software is served too (:mod:`web.api`).
    """
    settings = settings or WebSettings()
    app = FastAPI(
        title="Pli",
        version=version,
        description="Secure health messaging: the directory, its FHIR face and the key "
        "transparency log. Errors are RFC 9457 problem details (FHIR: OperationOutcome).",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.web = WebContext(
        settings=settings,
        directory=directory,
        key_log=key_log,
        authenticator=authenticator,
        limiter=RateLimiter(
            rate=settings.rate_per_minute / 60.0,
            burst=settings.rate_burst,
            max_keys=settings.rate_limit_clients,
        ),
        auth_failures=RateLimiter(
            rate=settings.auth_failures_per_minute / 60.0,
            burst=settings.auth_failure_burst,
            max_keys=settings.rate_limit_clients,
        ),
    )

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return render(
            request.url.path,
            exc.status,
            exc.title,
            exc.detail,
            errors=exc.errors,
            headers=dict(exc.headers),
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = _STATUS_TITLES.get(exc.status_code, str(exc.detail))
        detail = str(exc.detail) if str(exc.detail) != title else ""
        return render(request.url.path, exc.status_code, title, detail, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _field_errors(exc)
        status = 422 if any(e.location == "body" for e in errors) else 400
        detail = "; ".join(e.message for e in errors)
        return render(request.url.path, status, "Invalid parameter", detail, errors=errors)

    @app.exception_handler(Unavailable)
    async def unavailable(request: Request, _exc: Unavailable) -> JSONResponse:
        return render(
            request.url.path,
            503,
            "Service unavailable",
            "storage cannot be reached now; retry later",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error", exc_info=exc, extra={"path": request.url.path})
        return render(request.url.path, 500, "Internal error", "an unexpected error occurred")

    @app.get("/healthz", tags=["operations"], summary="Liveness and readiness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    if directory is not None:
        app.include_router(directory_routes.router)
        app.include_router(fhir_routes.router)
    if key_log is not None:
        app.include_router(log_routes.router)
    if api is not None:
        install_api(app, api)
    return app

"""The application factory of the HTTP front.

Errors are RFC 9457 problem details (``application/problem+json``) everywhere, including
for routes that do not exist, so clients parse one error format.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = ["create_app", "problem"]

PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str = "", **extra: object) -> JSONResponse:
    body: dict[str, object] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def create_app(*, version: str = "0.1.0") -> FastAPI:
    app = FastAPI(title="Pli", version=version, openapi_url="/openapi.json", docs_url="/docs")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        return problem(422, "Invalid request", "see errors", errors=errors)

    @app.get("/healthz", tags=["operations"], summary="Liveness and readiness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app

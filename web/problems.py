"""Errors as RFC 9457 problem details, and as FHIR ``OperationOutcome`` under ``/fhir``.

Routes and dependencies raise :class:`ApiError`; the application's handlers (installed by
:func:`web.create_app`) render it, FastAPI's own validation errors and Starlette's HTTP
errors in one of two formats, chosen by the path:

- everywhere but ``/fhir``: ``application/problem+json`` (RFC 9457 §3) with ``type``,
  ``title``, ``status``, ``detail`` and, when parameters are at fault, an ``errors`` list
  of ``{"field", "in", "message"}`` members (an extension member, RFC 9457 §3.2);
- under ``/fhir``: an ``OperationOutcome`` resource (FHIR R4 §2.36 / RESTful API §3.1.0.5)
  in ``application/fhir+json``, one ``issue`` per fault, the parameter named in
  ``expression``.

Nothing here ever tells an anonymous caller more than the route meant to say.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from fastapi.responses import JSONResponse

__all__ = [
    "PROBLEM_JSON",
    "FHIR_JSON",
    "FieldError",
    "ApiError",
    "problem",
    "operation_outcome",
    "render",
]

PROBLEM_JSON = "application/problem+json"
FHIR_JSON = "application/fhir+json"

# OperationOutcome.issue.code (FHIR R4 value set issue-type) for each HTTP status.
_FHIR_CODES: Mapping[int, str] = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    413: "too-costly",
    422: "invalid",
    429: "throttled",
    503: "transient",
}


@dataclass(frozen=True, slots=True)
class FieldError:
    """A parameter at fault: its name, where it was (``query``, ``path``, ``header``), why."""

    field: str
    message: str
    location: str = "query"


@dataclass(eq=False)
class ApiError(Exception):
    """An error response: ``status``, a short ``title``, a ``detail`` for this occurrence."""

    status: int
    title: str
    detail: str = ""
    errors: Sequence[FieldError] = ()
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(f"{self.status} {self.title}: {self.detail}")

    @classmethod
    def bad_parameter(cls, name: str, message: str, location: str = "query") -> ApiError:
        return cls(400, "Invalid parameter", message, [FieldError(name, message, location)])


def problem(
    status: int,
    title: str,
    detail: str = "",
    *,
    errors: Sequence[FieldError] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """An RFC 9457 problem details response."""
    body: dict[str, object] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = [
            {"field": e.field, "in": e.location, "message": e.message} for e in errors
        ]
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def outcome_resource(
    status: int,
    detail: str,
    errors: Sequence[FieldError] = (),
    *,
    severity: str = "error",
    code: str | None = None,
) -> dict[str, object]:
    """An ``OperationOutcome`` with one issue per field error (or one for ``detail``);
    the issue ``code`` follows ``status`` unless given."""
    code = code or _FHIR_CODES.get(status, "processing" if status < 500 else "exception")
    issues: list[dict[str, object]] = [
        {"severity": severity, "code": code, "diagnostics": e.message, "expression": [e.field]}
        for e in errors
    ]
    if not issues:
        issues.append({"severity": severity, "code": code, "diagnostics": detail})
    return {"resourceType": "OperationOutcome", "issue": issues}


def operation_outcome(
    status: int,
    detail: str,
    *,
    errors: Sequence[FieldError] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A FHIR error response."""
    return JSONResponse(
        outcome_resource(status, detail, errors),
        status_code=status,
        media_type=FHIR_JSON,
        headers=headers,
    )


def is_fhir_path(path: str) -> bool:
    return path == "/fhir" or path.startswith("/fhir/")


def render(
    path: str,
    status: int,
    title: str,
    detail: str = "",
    *,
    errors: Sequence[FieldError] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The error response for a request to ``path``, in the format of that part of the API."""
    if is_fhir_path(path):
        return operation_outcome(status, detail or title, errors=errors, headers=headers)
    return problem(status, title, detail, errors=errors, headers=headers)

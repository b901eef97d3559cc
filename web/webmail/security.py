"""The webmail's web security: response headers, the session cookie, CSRF, rate limits.

- **Headers** on every webmail response: a strict Content-Security-Policy (W3C CSP3) with
  no inline script and no eval. ``'wasm-unsafe-eval'`` is allowed because libsodium.js
  compiles its WebAssembly module with ``WebAssembly.instantiate``; it allows compiling
  WebAssembly and nothing else (no ``eval``, no ``new Function``). ``frame-ancestors
  'none'`` (no framing, clickjacking), HSTS (RFC 6797), ``X-Content-Type-Options:
  nosniff``, ``Referrer-Policy: no-referrer``, ``Cross-Origin-Opener-Policy``, and
  ``Cache-Control: no-store`` on API answers (they hold envelopes and key bundles).
- **Session cookie** (RFC 6265bis): ``Secure``, ``HttpOnly``, ``SameSite=Strict``,
  ``Path=/webmail``, no ``Max-Age`` beyond the session's own end; the server keeps only a
  keyed hash of the token (:class:`messaging.webmail.WebmailService`).
- **CSRF**: every unsafe method (POST, PUT, PATCH, DELETE) must carry ``X-CSRF-Token``
  equal to the HMAC the server derives from the session; ``SameSite=Strict`` is a second
  wall, not the only one. A missing, stale or foreign token is a 403.
- **Rate limits**: sign-in attempts per client address and per account address, and code
  attempts per client address (token buckets of :mod:`web.ratelimit`); the code itself
  also dies after a few wrong tries (``WebmailLimits.code_attempts``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from web.problems import ApiError
from web.ratelimit import RateLimiter

__all__ = [
    "COOKIE",
    "CSRF_HEADER",
    "CSP",
    "WebmailLimiters",
    "security_headers",
    "rate_limit",
]

COOKIE = "pli_session"
CSRF_HEADER = "x-csrf-token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "font-src 'self'",
        "connect-src 'self'",
        "frame-src blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

_HEADERS = {
    "Content-Security-Policy": CSP,
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def is_webmail_path(path: str) -> bool:
    return path == "/" or path == "/webmail" or path.startswith("/webmail/")


async def security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Middleware: the headers above on every webmail response (errors included)."""
    response = await call_next(request)
    if is_webmail_path(request.url.path):
        for name, value in _HEADERS.items():
            response.headers.setdefault(name, value)
        if request.url.path.startswith("/webmail/api/"):
            response.headers["Cache-Control"] = "no-store"
    return response


@dataclass(frozen=True, slots=True)
class WebmailLimiters:
    login_per_client: RateLimiter
    login_per_account: RateLimiter
    codes_per_client: RateLimiter

    @classmethod
    def default(cls) -> WebmailLimiters:
        return cls(
            login_per_client=RateLimiter(rate=20 / 60, burst=20),
            login_per_account=RateLimiter(rate=10 / 3600, burst=10),
            codes_per_client=RateLimiter(rate=10 / 60, burst=10),
        )


def rate_limit(limiter: RateLimiter, key: str) -> None:
    decision = limiter.take(key)
    if not decision.allowed:
        raise ApiError(
            429,
            "Too many requests",
            f"too many attempts; retry in {decision.retry_after} s",
            headers={"Retry-After": str(decision.retry_after)},
        )

"""Limits and switches of the application API (``/v1`` for health software).

``pli/`` builds one :class:`ApiSettings` from its configuration (``api_*`` settings in
``pli/settings.py``); the defaults suit a small deployment and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ApiSettings"]


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """Limits of the application API.

    - ``token_seconds``: lifetime of a bearer token (RFC 6749 ``expires_in``).
    - ``rate_per_minute`` / ``rate_burst``: each client's token bucket, unless the client
      has its own rate; ``max_tokens``: live tokens remembered (oldest forgotten first).
    - ``max_message_size``: the largest message (25 MB, as *Mon espace santé*); a request
      body may be ``max_request_overhead`` larger (multipart framing, JSON fields).
    - ``max_json_size``: the largest JSON body (the structured fields of a typed send).
    - ``request_timeout_seconds``: a send that takes longer is answered 503 (nothing was
      acknowledged; the ``Idempotency-Key`` makes the retry safe).
    - ``idempotency_stale_seconds``: a claim older than this whose request never finished
      is taken over by a retry.
    - ``trusted_proxies`` / ``client_cert_header``: the TLS terminator's addresses and the
      header in which it forwards the verified client certificate (URL-encoded PEM, as
      nginx's ``$ssl_client_escaped_cert``), for certificate-bound tokens (RFC 8705).
    - ``webhook_*``: delivery attempts, the first back-off (doubled each time), the HTTP
      timeout, whether plain ``http://`` URLs are allowed (tests, a local receiver), the
      worker's poll interval and the tolerance on signed timestamps.
    - ``upload_dir``: where uploads are spooled (default: the system's temporary dir).
    """

    token_seconds: int = 600
    rate_per_minute: float = 6000.0
    rate_burst: int = 200
    max_tokens: int = 100_000
    max_message_size: int = 25 * 1024 * 1024
    max_request_overhead: int = 1024 * 1024
    max_json_size: int = 1024 * 1024
    request_timeout_seconds: float = 60.0
    idempotency_stale_seconds: float = 120.0
    trusted_proxies: frozenset[str] = field(default_factory=frozenset)
    client_cert_header: str = "x-client-cert"
    webhook_max_attempts: int = 8
    webhook_first_backoff_seconds: float = 2.0
    webhook_timeout_seconds: float = 10.0
    webhook_allow_http: bool = False
    worker_poll_seconds: float = 1.0
    webhook_tolerance_seconds: int = 300
    upload_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.token_seconds < 1 or self.rate_per_minute <= 0 or self.rate_burst < 1:
            raise ValueError("token_seconds, rate_per_minute and rate_burst must be positive")
        if self.max_message_size < 1 or self.max_json_size < 1:
            raise ValueError("size limits must be positive")
        if self.webhook_max_attempts < 1 or self.webhook_first_backoff_seconds <= 0:
            raise ValueError("webhook attempts and back-off must be positive")

    @property
    def max_request_size(self) -> int:
        return self.max_message_size + self.max_request_overhead

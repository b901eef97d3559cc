"""The HTTP front's own settings: page sizes, rate limits, the FHIR search bound.

``pli/`` builds one :class:`WebSettings` from its configuration and passes it to
:func:`web.create_app`; the defaults suit a small deployment and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from messaging.directory import COUNT_LIMIT, MAX_PAGE_SIZE

__all__ = ["WebSettings"]


@dataclass(frozen=True, slots=True)
class WebSettings:
    """Limits of the HTTP front.

    - ``anonymous_page_size`` / ``professional_page_size``: the largest page an anonymous
      caller / an authenticated professional gets (larger requests are capped, not refused);
      the directory itself never returns more than :data:`MAX_PAGE_SIZE`.
    - ``rate_per_minute`` / ``rate_burst``: the token bucket of each anonymous client
      address (requests per minute in the long run, and how many may come at once).
    - ``auth_failures_per_minute`` / ``auth_failure_burst``: the separate bucket that failed
      logins of one client address drain; when it is empty, credentials from that address
      are not even checked (each check costs an Argon2id run) until it refills.
    - ``rate_limit_clients``: how many client addresses the buckets remember (least recently
      seen forgotten first): memory stays bounded whatever the traffic.
    - ``fhir_scan_limit``: how many matching directory lines a FHIR search considers at most
      (its results are grouped into resources); beyond, the Bundle says it is incomplete.
      The directory itself pages through the first :data:`COUNT_LIMIT` matches only.
    - ``public_base_url``: the external URL of the API (``https://annuaire.example``) for the
      links in responses; by default the request's own base URL.
    """

    anonymous_page_size: int = 20
    professional_page_size: int = MAX_PAGE_SIZE
    rate_per_minute: float = 120.0
    rate_burst: int = 30
    auth_failures_per_minute: float = 10.0
    auth_failure_burst: int = 10
    rate_limit_clients: int = 100_000
    fhir_scan_limit: int = COUNT_LIMIT
    public_base_url: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.anonymous_page_size <= self.professional_page_size <= MAX_PAGE_SIZE:
            raise ValueError(
                "page sizes must satisfy 1 <= anonymous <= professional <= "
                f"{MAX_PAGE_SIZE}, not {self.anonymous_page_size} and "
                f"{self.professional_page_size}"
            )
        if self.rate_per_minute <= 0 or self.auth_failures_per_minute <= 0:
            raise ValueError("rates must be positive")
        if self.rate_burst < 1 or self.auth_failure_burst < 1 or self.rate_limit_clients < 1:
            raise ValueError("bursts and the number of clients must be at least 1")
        if not MAX_PAGE_SIZE <= self.fhir_scan_limit <= COUNT_LIMIT:
            raise ValueError(f"fhir_scan_limit must be from {MAX_PAGE_SIZE} to {COUNT_LIMIT}")
        if self.public_base_url is not None and not self.public_base_url.startswith(
            ("http://", "https://")
        ):
            raise ValueError("public_base_url must be an http(s) URL")

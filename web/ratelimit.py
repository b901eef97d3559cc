"""A small in-process token bucket per client address.

Each key (a client address) owns a bucket of ``burst`` tokens that refills at ``rate``
tokens per second; a request takes one token or is refused with the time until the next
one. Buckets are kept in least-recently-used order and at most ``max_keys`` are remembered:
forgetting a bucket only gives that client a full one again, so memory stays bounded and
nothing worse than a fresh burst can come of it.

Limits are per process: with N fronts behind a load balancer a client gets up to N times
the rate, which is what "rate limit" means for an anti-scraping measure. A shared limit
would live in the database or a proxy.

:func:`client_key` names the bucket of a client address: an IPv4 address (IPv4-mapped IPv6
included) is its own key, an IPv6 address counts as its /64 network, because one subscriber
usually holds a whole /64 and could otherwise rotate through 2**64 fresh buckets.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RateLimiter", "Decision", "client_key"]


def client_key(host: str) -> str:
    """The bucket key of a client address (see the module notes)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a request may go on; when not, ``retry_after`` seconds (at least 1) until it may."""

    allowed: bool
    retry_after: int = 0


class RateLimiter:
    """Token buckets keyed by client address. Not thread-safe: one per event loop."""

    def __init__(
        self,
        *,
        rate: float,
        burst: int,
        max_keys: int = 100_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("rate must be positive, burst and max_keys at least 1")
        self._rate = rate
        self._burst = float(burst)
        self._max_keys = max_keys
        self._monotonic = monotonic
        # key -> (tokens, time of the last update)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _tokens(self, key: str, now: float) -> float:
        entry = self._buckets.get(key)
        if entry is None:
            return self._burst
        tokens, at = entry
        return min(self._burst, tokens + max(0.0, now - at) * self._rate)

    def _store(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)

    def _refusal(self, tokens: float) -> Decision:
        return Decision(False, max(1, math.ceil((1.0 - tokens) / self._rate)))

    def take(self, key: str) -> Decision:
        """Take one token from ``key``'s bucket, or say how long to wait."""
        now = self._monotonic()
        tokens = self._tokens(key, now)
        if tokens < 1.0:
            self._store(key, tokens, now)
            return self._refusal(tokens)
        self._store(key, tokens - 1.0, now)
        return Decision(True)

    def check(self, key: str) -> Decision:
        """Whether ``key`` has a token, without taking it."""
        tokens = self._tokens(key, self._monotonic())
        return Decision(True) if tokens >= 1.0 else self._refusal(tokens)

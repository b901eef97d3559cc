"""Limits of the SMTP fronts: per message, per session, per peer address.

Every number is a setting (``pli/settings.py``, ``smtp_*``); the defaults follow RFC 5321
§4.5.3.1 (lines of 1,000 octets with CRLF, at least 100 recipients) and Postfix's habits
(``smtpd_hard_error_limit``, ``smtpd_client_connection_count_limit``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

__all__ = ["SmtpLimits", "ConnectionCounter", "AuthFailures"]


@dataclass(frozen=True, slots=True)
class SmtpLimits:
    max_message_size: int = 25 * 1024 * 1024
    """Octets of message data (the SIZE extension advertises it, RFC 1870)."""
    max_recipients: int = 100
    """RCPT commands accepted per message; more get ``452 4.5.3`` (RFC 5321 §4.5.3.1.10)."""
    max_line_length: int = 1000
    """Octets per line, CRLF included, not counting a transparency dot (RFC 5321 §4.5.3.1.6)."""
    max_commands: int = 10_000
    """Commands per session (a peer reuses its session for many messages)."""
    max_errors: int = 20
    """Error replies (4xx/5xx) per session before ``421`` and disconnection."""
    max_connections_per_peer: int = 50
    """Simultaneous sessions from one IP address."""
    max_auth_failures: int = 3
    """Failed AUTH per session before ``421``."""
    auth_failure_delay: float = 1.0
    """Seconds added before answering each failed AUTH of a session (1×, 2×, 3×…)."""
    timeout: float = 300.0
    """Seconds of silence before the session is closed (RFC 5321 §4.5.3.2)."""


class ConnectionCounter:
    """Sessions in progress per peer IP address."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._open: Counter[str] = Counter()

    def acquire(self, host: str) -> bool:
        if self._open[host] >= self._limit:
            return False
        self._open[host] += 1
        return True

    def release(self, host: str) -> None:
        self._open[host] -= 1
        if self._open[host] <= 0:
            del self._open[host]

    def count(self, host: str) -> int:
        return self._open[host]


class AuthFailures:
    """Failed authentications, counted per front since start (exported in the log)."""

    def __init__(self) -> None:
        self.total = 0
        self.by_peer: Counter[str] = Counter()

    _MAX_PEERS = 10_000

    def record(self, host: str) -> int:
        self.total += 1
        if host not in self.by_peer and len(self.by_peer) >= self._MAX_PEERS:
            # Bounded memory under a spray from many addresses: forget the quietest half.
            for quiet, _count in self.by_peer.most_common()[self._MAX_PEERS // 2 :]:
                del self.by_peer[quiet]
        self.by_peer[host] += 1
        return self.by_peer[host]

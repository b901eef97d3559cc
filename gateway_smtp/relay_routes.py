"""Where the relay sends a peer domain's mail: a configured route, else its MX records.

RFC 5321 §5.1: MX records in preference order (equal preferences shuffled); no MX record
means the domain itself is the implicit MX; a "null MX" (RFC 7505: one MX of preference 0
and exchange ``.``) means the domain accepts no mail, a permanent failure. A DNS answer that
could not be had (timeout, SERVFAIL) is a temporary failure: the message stays queued.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.resolver

__all__ = ["Hop", "RouteError", "Routes", "parse_route"]


@dataclass(frozen=True, slots=True)
class Hop:
    """One server to try: its name (checked against its certificate) and port."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class RouteError(Exception):
    """No server can be found for a domain; ``permanent`` says whether to retry."""

    def __init__(self, status: str, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.permanent = permanent


def parse_route(text: str, default_port: int) -> Hop:
    """``host``, ``host:port`` or ``[v6]:port``."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else default_port
        return Hop(host, port)
    host, sep, port_text = text.rpartition(":")
    if sep and port_text.isdigit():
        return Hop(host, int(port_text))
    return Hop(text, default_port)


class Routes:
    """Static routes first (lower-cased domain), then DNS."""

    def __init__(
        self,
        static: Mapping[str, str],
        *,
        port: int = 25,
        resolver: dns.asyncresolver.Resolver | None = None,
    ) -> None:
        self._static = {d.lower().rstrip("."): parse_route(v, port) for d, v in static.items()}
        self._port = port
        self._resolver = resolver

    async def hops(self, domain: str) -> list[Hop]:
        domain = domain.lower().rstrip(".")
        if domain in self._static:
            return [self._static[domain]]
        resolver = self._resolver or dns.asyncresolver.get_default_resolver()
        try:
            answer = await resolver.resolve(domain, "MX")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoNameservers) as error:
            if isinstance(error, dns.resolver.NXDOMAIN):
                raise RouteError("5.1.2", f"{domain} does not exist", permanent=True) from None
            raise RouteError("4.4.3", f"no DNS answer for {domain}", permanent=False) from None
        except dns.resolver.NoAnswer:
            return [Hop(domain, self._port)]  # the implicit MX (RFC 5321 §5.1)
        except dns.exception.DNSException as error:
            raise RouteError("4.4.3", f"DNS lookup of {domain}: {error}", permanent=False) from None
        records = [(r.preference, str(r.exchange).rstrip(".")) for r in answer]
        if any(name == "" for _, name in records):
            raise RouteError("5.1.10", f"{domain} accepts no mail (null MX)", permanent=True)
        random.shuffle(records)  # equal preferences in random order, then sort (stable)
        records.sort(key=lambda item: item[0])
        return [Hop(name, self._port) for _, name in records]

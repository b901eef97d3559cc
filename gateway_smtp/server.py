"""Start and stop the SMTP listeners: the MX, submission (STARTTLS) and submissions (TLS).

RFC 5321 (SMTP), RFC 6409 and RFC 8314 (submission on 587 and 465), RFC 3207 (STARTTLS).

:class:`SmtpFronts` owns the listening sockets and every session: ``stop`` closes the
listeners first, lets transactions in progress finish (bounded by ``grace`` seconds) so a
message being committed is answered, then closes the remaining sessions. The allow-list
refresh and the CRL's run as long as the fronts do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import weakref
from dataclasses import dataclass, field

from gateway_smtp.allowlist import AllowListSource
from gateway_smtp.limits import AuthFailures, ConnectionCounter, SmtpLimits
from gateway_smtp.mx import MxHandler
from gateway_smtp.peers import PeerTrust
from gateway_smtp.protocol import PliSMTP
from gateway_smtp.submission import SubmissionHandler
from messaging import AccountService, DeliveryService
from messaging.gateways import GatewaySupport
from messaging.ports import Clock

__all__ = ["SmtpFronts", "SmtpPorts", "Listening"]

log = logging.getLogger("gateway_smtp.server")


@dataclass(frozen=True, slots=True)
class SmtpPorts:
    """Ports to listen on; 0 picks a free one (tests), None leaves the front off."""

    host: str = "127.0.0.1"
    mx: int | None = 2525
    submission: int | None = 2587
    submissions: int | None = 2465


@dataclass
class Listening:
    """Where each front listens: ``{"mx": ("127.0.0.1", 2525), …}``."""

    addresses: dict[str, tuple[str, int]] = field(default_factory=dict)

    def url(self, name: str) -> str:
        host, port = self.addresses[name]
        return f"smtp://{host}:{port}" if name != "submissions" else f"smtps://{host}:{port}"


class SmtpFronts:
    def __init__(
        self,
        *,
        delivery: DeliveryService,
        accounts: AccountService,
        support: GatewaySupport,
        allowlist: AllowListSource,
        trust: PeerTrust,
        clock: Clock,
        local_domain: str,
        hostname: str,
        limits: SmtpLimits | None = None,
        crl_refresh_seconds: float = 3600.0,
    ) -> None:
        self._limits = limits or SmtpLimits()
        self._crl_refresh_seconds = crl_refresh_seconds
        self._crl_task: asyncio.Task[None] | None = None
        self._trust = trust
        self._allowlist = allowlist
        self._hostname = hostname
        self.auth_failures = AuthFailures()
        self.mx_handler = MxHandler(
            delivery=delivery,
            support=support,
            allowlist=allowlist,
            clock=clock,
            local_domain=local_domain,
            hostname=hostname,
        )
        self.submission_handler = SubmissionHandler(
            delivery=delivery,
            accounts=accounts,
            support=support,
            clock=clock,
            local_domain=local_domain,
            failures=self.auth_failures,
        )
        self._servers: list[asyncio.Server] = []
        self._sessions: weakref.WeakSet[PliSMTP] = weakref.WeakSet()
        # One count per front: a peer MX and a mail client behind the same NAT do not
        # take each other's connections.
        self._counters = {
            name: ConnectionCounter(self._limits.max_connections_per_peer)
            for name in ("mx", "submission", "submissions")
        }

    def _factory(self, name: str) -> PliSMTP:
        loop = asyncio.get_running_loop()
        limits, counter, hostname = self._limits, self._counters[name], self._hostname
        if name == "mx":
            session = PliSMTP(
                self.mx_handler,
                limits=limits,
                connections=counter,
                hostname=hostname,
                loop=loop,
                tls_context=self._trust.mx_context,
                require_starttls=True,
                auth_exclude_mechanism=["PLAIN", "LOGIN"],
            )
        else:
            # 587 negotiates TLS with STARTTLS; 465 is TLS from the first byte (RFC 8314).
            starttls = name == "submission"
            session = PliSMTP(
                self.submission_handler,
                limits=limits,
                connections=counter,
                hostname=hostname,
                loop=loop,
                tls_context=self._trust.submission_context if starttls else None,
                require_starttls=starttls,
                auth_required=True,
                auth_require_tls=True,
                dsn=True,
            )
        self._sessions.add(session)
        return session

    async def _refresh_crl(self) -> None:
        while True:
            await asyncio.sleep(self._crl_refresh_seconds)
            # New sessions take the new context; a bad CRL leaves the last valid one.
            await asyncio.to_thread(self._trust.refresh_crl)

    async def start(self, ports: SmtpPorts) -> Listening:
        self._allowlist.start()
        loop = asyncio.get_running_loop()
        self._crl_task = loop.create_task(self._refresh_crl())
        listening = Listening()
        plan: list[tuple[str, int | None, ssl.SSLContext | None]] = [
            ("mx", ports.mx, None),
            ("submission", ports.submission, None),
            ("submissions", ports.submissions, self._trust.submission_context),
        ]
        try:
            for name, port, context in plan:
                if port is None:
                    continue
                server = await loop.create_server(
                    lambda name=name: self._factory(name),
                    host=ports.host,
                    port=port,
                    ssl=context,
                    reuse_address=True,
                )
                self._servers.append(server)
                sockname = server.sockets[0].getsockname()
                listening.addresses[name] = (str(sockname[0]), int(sockname[1]))
        except BaseException:
            await self.stop(grace=0)
            raise
        return listening

    async def stop(self, grace: float = 30.0) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        # Sessions in DATA are committing a message: let them answer it.
        while any(_busy(s) for s in self._sessions) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for session in list(self._sessions):
            if session.transport is not None:
                session.transport.close()
        self._sessions.clear()
        if self._crl_task is not None:
            self._crl_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._crl_task
            self._crl_task = None
        await self._allowlist.stop()


def _busy(session: PliSMTP) -> bool:
    if session.transport is None:
        return False
    return session.committing

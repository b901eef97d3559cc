"""Wiring of the SMTP fronts: the MX and submission listeners ``pli serve`` starts
(settings ``smtp_*``, ``smtp_port``, ``submission_port``, ``submissions_port``; docs/smtp.md)."""

from __future__ import annotations

from gateway_smtp.allowlist import AllowListSource
from gateway_smtp.limits import SmtpLimits
from gateway_smtp.peers import PeerTrust
from gateway_smtp.server import SmtpFronts, SmtpPorts
from messaging import AccountService, DeliveryService
from messaging.gateways import GatewaySupport
from messaging.ports import Clock, MailboxStore
from pli.settings import Settings
from pli.tls import TlsFiles

__all__ = ["allowlist_source", "smtp_fronts", "smtp_ports"]


def allowlist_source(settings: Settings) -> AllowListSource:
    """The trust space's allow-list; our own domain and ``relay_peer_domains`` always in it."""
    source = AllowListSource(
        settings.smtp_allowlist,
        always=[settings.domain, *settings.relay_peer_domains],
        refresh_seconds=settings.smtp_allowlist_refresh_seconds,
    )
    source.refresh()  # commands that never serve relay with the same list
    return source


def smtp_ports(settings: Settings) -> SmtpPorts:
    return SmtpPorts(
        host=settings.host,
        mx=settings.smtp_port,
        submission=settings.submission_port,
        submissions=settings.submissions_port,
    )


def smtp_fronts(
    settings: Settings,
    *,
    store: MailboxStore,
    delivery: DeliveryService,
    accounts: AccountService,
    clock: Clock,
    tls: TlsFiles,
    allowlist: AllowListSource,
) -> SmtpFronts:
    trust = PeerTrust(
        cert=tls.cert,
        key=tls.key,
        anchor=tls.ca,
        crl=tls.crl,
        kept_crl=settings.home / "state" / "trust-crl.pem" if tls.crl else None,
    )
    if tls.crl is not None:
        (settings.home / "state").mkdir(mode=0o700, parents=True, exist_ok=True)
        trust.refresh_crl()
    return SmtpFronts(
        delivery=delivery,
        accounts=accounts,
        support=GatewaySupport(store, clock),
        allowlist=allowlist,
        trust=trust,
        clock=clock,
        local_domain=settings.domain,
        hostname=settings.smtp_hostname or settings.domain,
        limits=SmtpLimits(
            max_message_size=settings.max_message_size,
            max_recipients=settings.max_recipients,
            max_line_length=settings.smtp_max_line_length,
            max_commands=settings.smtp_max_commands,
            max_errors=settings.smtp_max_errors,
            max_connections_per_peer=settings.smtp_max_connections_per_peer,
            max_auth_failures=settings.smtp_max_auth_failures,
            auth_failure_delay=settings.smtp_auth_failure_delay_seconds,
            timeout=settings.smtp_timeout_seconds,
        ),
        crl_refresh_seconds=settings.smtp_crl_refresh_seconds,
    )

"""Wiring of the outbound relay: the delivery service's :class:`Relaying` and the worker
``pli serve`` runs (settings ``relay_*``, docs/operations.md)."""

from __future__ import annotations

import random

from gateway_smtp.relay import RelayPolicy, RelayWorker
from gateway_smtp.relay_routes import Routes
from mailbox_store import SqlMailboxStore
from messaging import Address, DeliveryService
from messaging.outbound import PeerDomains, Relaying, StaticPeerDomains
from messaging.ports import Clock
from pli.secrets import InstanceSecrets
from pli.settings import Settings
from pli.tls import TlsFiles, client_context

__all__ = ["relaying", "relay_worker"]


def relaying(
    settings: Settings,
    secrets: InstanceSecrets,
    store: SqlMailboxStore,
    peers: PeerDomains | None = None,
) -> Relaying | None:
    """What the delivery service needs to queue remote recipients; None when disabled.

    ``peers`` is the trust space's allow-list when the SMTP gateway has one; until then the
    fixed list ``relay_peer_domains``.
    """
    if not settings.relay_enabled or secrets.queue_keys is None:
        return None
    return Relaying(
        local_domain=settings.domain,
        peers=peers or StaticPeerDomains(frozenset(d.lower() for d in settings.relay_peer_domains)),
        queue=store.outbound,
        queue_key=secrets.queue_keys.encryption_public,
    )


def relay_worker(
    settings: Settings,
    secrets: InstanceSecrets,
    store: SqlMailboxStore,
    delivery: DeliveryService,
    clock: Clock,
    tls: TlsFiles,
) -> RelayWorker | None:
    if not settings.relay_enabled or secrets.queue_keys is None:
        return None
    helo = settings.relay_helo or settings.domain
    return RelayWorker(
        queue=store.outbound,
        queue_keys=secrets.queue_keys,
        routes=Routes(settings.relay_routes, port=settings.relay_port),
        tls=client_context(tls),
        delivery=delivery,
        trace=store.record_trace,
        policy=RelayPolicy(
            helo=helo,
            postmaster=Address.parse(f"postmaster@{settings.domain}"),
            concurrency_per_domain=settings.relay_concurrency_per_domain,
            batch=settings.relay_batch,
            poll_seconds=settings.relay_poll_seconds,
            lease_seconds=settings.relay_lease_seconds,
            timeout_seconds=settings.relay_timeout_seconds,
            retry_base_seconds=settings.relay_retry_base_seconds,
            retry_max_seconds=settings.relay_retry_max_seconds,
            retry_jitter=settings.relay_retry_jitter,
            delay_notice_seconds=settings.relay_delay_notice_seconds,
            max_age_seconds=settings.relay_max_age_seconds,
            rng=random.SystemRandom(),
        ),
        clock=clock,
    )

"""A Pli instance with its outbound relay, for the relay tests: SQL store, real TLS, a clock
the test moves (retry times are then exact, and no test sleeps through a back-off)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import crypto
from gateway_smtp.relay import RelayPolicy, RelayWorker
from gateway_smtp.relay_routes import Routes
from mailbox_store import SqlMailboxStore
from messaging import (
    AccountService,
    Address,
    DeliveryService,
    InProcessNotifier,
    LocalKeyDirectory,
    MailboxKind,
    ManualClock,
)
from messaging.dsn import DeliveryReport, parse_dsn
from messaging.outbound import Relaying, StaticPeerDomains
from messaging.types import MessageKind
from tests.support.test_ca import Issued, TestCA

FAST = crypto.Argon2Limits(1, 8192)
LOCAL = "pli.test"
PEER = "ch-peer.test"


@dataclass
class RelayWorld:
    store: SqlMailboxStore
    clock: ManualClock
    accounts: AccountService
    delivery: DeliveryService
    worker: RelayWorker
    queue_keys: crypto.MailboxKeys

    async def person(self, name: str) -> tuple[Address, crypto.MailboxKeys]:
        address = Address.parse(f"{name}@{LOCAL}")
        await self.accounts.create(address, MailboxKind.PER, name, f"passphrase of {name}")
        unlocked = await self.accounts.unlock(address, f"passphrase of {name}")
        return address, unlocked.keys

    async def reports(self, who: Address, keys: crypto.MailboxKeys) -> list[DeliveryReport]:
        """The delivery reports in ``who``'s inbox, oldest first."""
        found = []
        for record in await self.delivery.list_messages(who, "INBOX"):
            if record.kind is MessageKind.RECEIPT:
                opened = await self.delivery.open_message(who, keys, "INBOX", record.uid)
                found.append(parse_dsn(opened.raw))
        return found


def relay_tls(ca: TestCA, ours: Issued) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca.cert_path))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(ours.chain, ours.key)
    return context


@asynccontextmanager
async def relay_world(
    url: str,
    tmp_path: Path,
    ca: TestCA,
    routes: dict[str, str],
    **policy: float,
) -> AsyncIterator[RelayWorld]:
    clock = ManualClock(datetime(2026, 11, 22, 9, 0, tzinfo=UTC))
    store = await SqlMailboxStore.open(url, blob_dir=tmp_path / "blobs")
    try:
        queue_keys = crypto.generate_keys()
        accounts = AccountService(
            store=store,
            clock=clock,
            instance_secret=b"k" * 32,
            passphrase_limits=FAST,
            app_password_limits=FAST,
        )
        delivery = DeliveryService(
            store=store,
            blobs=store.blobs,
            keys=LocalKeyDirectory(store),
            notifier=InProcessNotifier(),
            clock=clock,
            operator_key=crypto.generate_signing_key(),
            relaying=Relaying(
                local_domain=LOCAL,
                peers=StaticPeerDomains(frozenset({PEER})),
                queue=store.outbound,
                queue_key=queue_keys.encryption_public,
            ),
        )
        ours = ca.issue(f"mx.{LOCAL}", dns_names=("127.0.0.1",))
        worker = RelayWorker(
            queue=store.outbound,
            queue_keys=queue_keys,
            routes=Routes(routes),
            tls=relay_tls(ca, ours),
            delivery=delivery,
            trace=store.record_trace,
            policy=RelayPolicy(
                helo=f"mx.{LOCAL}",
                postmaster=Address.parse(f"postmaster@{LOCAL}"),
                timeout_seconds=10.0,
                **policy,  # type: ignore[arg-type]
            ),
            clock=clock,
        )
        yield RelayWorld(store, clock, accounts, delivery, worker, queue_keys)
    finally:
        await store.close()

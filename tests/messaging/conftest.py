"""Services wired on the in-memory reference implementations of the ports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

import crypto
from mailbox_store import InMemoryBlobStore, InMemoryMailboxStore
from messaging import (
    AccountService,
    Address,
    DeliveryService,
    InProcessNotifier,
    Limits,
    LocalKeyDirectory,
    MailboxKind,
    ManualClock,
)

FAST = crypto.Argon2Limits(1, 8192)


@dataclass
class World:
    store: InMemoryMailboxStore
    blobs: InMemoryBlobStore
    clock: ManualClock
    notifier: InProcessNotifier
    accounts: AccountService
    delivery: DeliveryService
    operator: crypto.SigningKey

    async def person(self, name: str, kind: MailboxKind = MailboxKind.PER) -> Address:
        address = Address.parse(f"{name}@medecin.pli.test")
        await self.accounts.create(address, kind, name, f"passphrase of {name}")
        return address

    async def keys(self, address: Address) -> crypto.MailboxKeys:
        unlocked = await self.accounts.unlock(address, f"passphrase of {address.local}")
        return unlocked.keys


@pytest.fixture
def world() -> World:
    store = InMemoryMailboxStore()
    blobs = InMemoryBlobStore()
    clock = ManualClock(datetime(2026, 11, 22, 9, 0, tzinfo=UTC))
    notifier = InProcessNotifier()
    operator = crypto.generate_signing_key()
    accounts = AccountService(
        store=store,
        clock=clock,
        instance_secret=b"k" * 32,
        passphrase_limits=FAST,
        app_password_limits=FAST,
    )
    delivery = DeliveryService(
        store=store,
        blobs=blobs,
        keys=LocalKeyDirectory(store),
        notifier=notifier,
        clock=clock,
        operator_key=operator,
        limits=Limits(max_message_size=1024 * 1024, max_recipients=5),
    )
    return World(store, blobs, clock, notifier, accounts, delivery, operator)

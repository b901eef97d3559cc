"""Senders seal only for keys the transparency log proves; accounts publish on creation."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

import crypto
from directory.keys import TransparentKeyDirectory
from directory.transparency import InMemoryLogStorage, TransparencyLog
from mailbox_store import InMemoryBlobStore, InMemoryMailboxStore
from messaging import (
    AccountService,
    Address,
    DeliveryService,
    InProcessNotifier,
    MailboxKind,
    ManualClock,
    SignatureStatus,
)
from messaging.transparency import KeyProof, KeyVerificationError, KeyVerifier
from messaging.verified_keys import VerifiedKeyDirectory
from tests.messaging.conftest import FAST

LOG_KEY = crypto.SigningKey.from_seed(b"L" * 32)
LOG_ID = "pli-test-log"


class CountingLog:
    """The real log, counting proof requests, optionally lying about one address's keys."""

    def __init__(self, log: TransparentKeyDirectory) -> None:
        self.log = log
        self.lookups = 0
        self.swap_for: Address | None = None

    async def lookup_with_proof(
        self, address: Address, *, known_size: int | None = None
    ) -> KeyProof | None:
        self.lookups += 1
        proof = await self.log.lookup_with_proof(address, known_size=known_size)
        if proof is not None and address == self.swap_for:
            attacker = crypto.generate_keys()
            leaf = dataclasses.replace(proof.leaf, encryption_key=attacker.encryption_public)
            proof = dataclasses.replace(proof, leaf=leaf)
        return proof

    async def consistency_proof(self, old_size: int, new_size: int):
        return await self.log.consistency_proof(old_size, new_size)

    async def latest_head(self):
        return await self.log.latest_head()

    async def lookup(self, address: Address):
        return await self.log.lookup(address)

    async def signing_keys(self, address: Address) -> list[bytes]:
        return await self.log.signing_keys(address)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 22, 9, 0, tzinfo=UTC))


@pytest.fixture
def log(clock: ManualClock) -> TransparentKeyDirectory:
    return TransparentKeyDirectory(
        TransparencyLog(InMemoryLogStorage(), LOG_KEY, log_id=LOG_ID, clock=clock), clock=clock
    )


@pytest.fixture
def store() -> InMemoryMailboxStore:
    return InMemoryMailboxStore()


@pytest.fixture
def accounts(
    store: InMemoryMailboxStore, clock: ManualClock, log: TransparentKeyDirectory
) -> AccountService:
    return AccountService(
        store=store,
        clock=clock,
        instance_secret=b"s" * 32,
        passphrase_limits=FAST,
        app_password_limits=FAST,
        publisher=log,
    )


async def test_creating_an_account_publishes_its_keys(
    accounts: AccountService, log: TransparentKeyDirectory
):
    alice = Address.parse("alice@medecin.pli.test")
    created = await accounts.create(alice, MailboxKind.PER, "Alice", "p")
    logged = await log.lookup(alice)
    assert logged is not None
    assert logged.encryption_key == created.account.encryption_key
    assert await accounts.publish_all() == 1
    assert (await log.latest_head()).tree_size == 1  # republishing appended nothing


async def test_a_proven_key_is_handed_out_and_then_served_from_cache(
    accounts: AccountService, log: TransparentKeyDirectory
):
    alice = Address.parse("alice@medecin.pli.test")
    created = await accounts.create(alice, MailboxKind.PER, "Alice", "p")
    counting = CountingLog(log)
    keys = VerifiedKeyDirectory(counting, KeyVerifier(LOG_KEY.public, LOG_ID))
    first = await keys.lookup(alice)
    second = await keys.lookup(alice)
    assert first is not None and first == second
    assert first.encryption_key == created.account.encryption_key
    assert counting.lookups == 1
    assert await keys.lookup(Address.parse("nobody@medecin.pli.test")) is None


async def test_a_key_the_log_does_not_prove_is_refused(
    accounts: AccountService, log: TransparentKeyDirectory
):
    alice = Address.parse("alice@medecin.pli.test")
    await accounts.create(alice, MailboxKind.PER, "Alice", "p")
    counting = CountingLog(log)
    counting.swap_for = alice
    keys = VerifiedKeyDirectory(counting, KeyVerifier(LOG_KEY.public, LOG_ID))
    with pytest.raises(KeyVerificationError):
        await keys.lookup(alice)


async def test_a_key_signed_by_another_log_is_refused(
    accounts: AccountService, log: TransparentKeyDirectory
):
    alice = Address.parse("alice@medecin.pli.test")
    await accounts.create(alice, MailboxKind.PER, "Alice", "p")
    other = crypto.SigningKey.from_seed(b"O" * 32)
    keys = VerifiedKeyDirectory(log, KeyVerifier(other.public, LOG_ID))
    with pytest.raises(KeyVerificationError):
        await keys.lookup(alice)


async def test_a_revoked_key_is_no_key(accounts: AccountService, log: TransparentKeyDirectory):
    alice = Address.parse("alice@medecin.pli.test")
    await accounts.create(alice, MailboxKind.PER, "Alice", "p")
    await log.revoke(alice)
    keys = VerifiedKeyDirectory(log, KeyVerifier(LOG_KEY.public, LOG_ID))
    assert await keys.lookup(alice) is None


async def test_delivery_through_verified_keys_is_signed_and_opens(
    accounts: AccountService,
    log: TransparentKeyDirectory,
    store: InMemoryMailboxStore,
    clock: ManualClock,
):
    alice = Address.parse("alice@medecin.pli.test")
    bob = Address.parse("bob@medecin.pli.test")
    for who in (alice, bob):
        await accounts.create(who, MailboxKind.PER, who.local, f"pass {who.local}")
    delivery = DeliveryService(
        store=store,
        blobs=InMemoryBlobStore(),
        keys=VerifiedKeyDirectory(log, KeyVerifier(LOG_KEY.public, LOG_ID)),
        notifier=InProcessNotifier(),
        clock=clock,
        operator_key=crypto.generate_signing_key(),
    )
    sender = await accounts.unlock(alice, "pass alice")
    sent = await delivery.send(alice, sender.keys, [bob], b"Subject: hi\r\n\r\nbody\r\n")
    reader = await accounts.unlock(bob, "pass bob")
    opened = await delivery.open_message(bob, reader.keys, "INBOX", sent.placed[0].uid)
    assert opened.signature is SignatureStatus.VALID

"""APPEND through the delivery service, and the per-session mailbox facade with its bounded
plaintext cache (what the IMAP gateway calls)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import pytest

import crypto
from mailbox_store import SqlMailboxStore
from messaging import (
    AccountService,
    Address,
    DeliveryService,
    InProcessNotifier,
    InvalidMessage,
    Limits,
    LocalKeyDirectory,
    MailboxKind,
    ManualClock,
    MessageKind,
    Provenance,
    RuleViolation,
    SignatureStatus,
)
from messaging.errors import NotFound
from messaging.mailbox_session import MailboxAccess, MailboxSession
from messaging.types import BlobRef, FlagMode
from tests.messaging.conftest import FAST, World

WHEN = datetime(2019, 4, 2, 14, 5, 9, tzinfo=UTC)
SECRET_LINE = "Patient: Jeanne Martin, glycémie 1,32 g/L"


def message(subject: str = "Brouillon", padding: int = 0) -> bytes:
    body = SECRET_LINE + "\r\n" + "x" * padding
    return (
        f"From: alice@medecin.pli.test\r\nTo: bob@medecin.pli.test\r\nSubject: {subject}\r\n"
        "Message-ID: <draft-1@pli.test>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"{body}\r\n"
    ).encode()


async def session_of(world: World, who: Address, cache_bytes: int = 1 << 20) -> MailboxSession:
    access = MailboxAccess(store=world.store, delivery=world.delivery, cache_bytes=cache_bytes)
    return access.session(who, await world.keys(who))


# -- APPEND -------------------------------------------------------------------------------


async def test_an_appended_message_is_sealed_for_the_account_and_reads_back_exactly(
    world: World,
) -> None:
    alice = await world.person("alice")
    mailbox = await session_of(world, alice)
    await mailbox.create_folder("Brouillons/Patients")
    raw = message()

    placed = await mailbox.append(
        "Brouillons/Patients", raw, flags=frozenset({"\\Draft", "\\Recent"}), internal_date=WHEN
    )

    assert (placed.account, placed.folder, placed.uid) == (alice, "Brouillons/Patients", 1)
    [record] = await mailbox.records("Brouillons/Patients")
    assert record.flags == {"\\Draft"} and record.internal_date == WHEN
    assert record.modseq == placed.modseq and record.kind is MessageKind.NOTE
    assert record.provenance is Provenance.E2E and record.sender == alice
    assert record.plaintext_size == len(raw)
    opened = await mailbox.open(record)
    assert opened.raw == raw
    assert (opened.provenance, opened.signature, opened.signer) == (
        Provenance.E2E,
        SignatureStatus.VALID,
        str(alice),
    )
    stored = world.blobs.open(record.blob).read()
    assert SECRET_LINE.encode() not in stored and b"Brouillon" not in stored


async def test_append_without_a_date_uses_the_commit_time_and_notifies(world: World) -> None:
    alice = await world.person("alice")
    mailbox = await session_of(world, alice)
    events = mailbox.watch()
    try:
        placed = await mailbox.append("Drafts", message())
        assert await anext(events) == "Drafts"
    finally:
        await events.aclose()

    [record] = await mailbox.fetch_records("Drafts", [placed.uid])
    assert record.internal_date == world.clock.now()


async def test_append_refusals_store_nothing(world: World) -> None:
    alice, bob = await world.person("alice"), await world.person("bob")
    mailbox = await session_of(world, alice)
    before = await mailbox.folders()

    with pytest.raises(InvalidMessage):  # above APPENDLIMIT
        await mailbox.append("INBOX", message(padding=mailbox.append_limit))
    with pytest.raises(NotFound):  # the gateway answers NO [TRYCREATE]
        await mailbox.append("Nowhere", message())
    blobs_before = len(world.blobs._blobs)
    with pytest.raises(InvalidMessage):
        await mailbox.append("INBOX", message(), flags=frozenset({"bad flag"}))
    assert len(world.blobs._blobs) == blobs_before  # refused before sealing
    with pytest.raises(RuleViolation):  # somebody else's keys
        await world.delivery.append(alice, await world.keys(bob), "INBOX", message())

    assert await mailbox.folders() == before
    assert mailbox.append_limit == 1024 * 1024


async def test_append_is_durable_on_a_sql_store(database_url: str, tmp_path: Path) -> None:
    clock = ManualClock(datetime(2026, 11, 22, 9, 0, tzinfo=UTC))

    async def open_services() -> tuple[SqlMailboxStore, AccountService, DeliveryService]:
        store = await SqlMailboxStore.open(database_url, blob_dir=tmp_path / "blobs")
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
            limits=Limits(),
        )
        return store, accounts, delivery

    alice = Address.parse("alice@medecin.pli.test")
    store, accounts, delivery = await open_services()
    try:
        await accounts.create(alice, MailboxKind.PER, "Alice", "pw alice")
        keys = (await accounts.unlock(alice, "pw alice")).keys
        placed = await delivery.append(alice, keys, "Sent", message(), internal_date=WHEN)
    finally:
        await store.close()

    store, accounts, delivery = await open_services()
    try:
        keys = (await accounts.unlock(alice, "pw alice")).keys
        opened = await delivery.open_message(alice, keys, "Sent", placed.uid)
        assert opened.raw == message() and opened.record.internal_date == WHEN
    finally:
        await store.close()


# -- the session cache --------------------------------------------------------------------


async def test_opening_twice_and_opening_a_copy_decrypt_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await world.person("alice")
    mailbox = await session_of(world, alice)
    await mailbox.append("INBOX", message())
    [record] = await mailbox.records("INBOX")
    [(_, copy_uid)] = await mailbox.copy("INBOX", [record.uid], "Archive")
    [copy] = await mailbox.fetch_records("Archive", [copy_uid])
    reads: list[object] = []
    real_open = world.blobs.open

    def counting_open(ref: BlobRef) -> BinaryIO:
        reads.append(ref)
        return real_open(ref)

    monkeypatch.setattr(world.blobs, "open", counting_open)

    first = await mailbox.open(record)
    again = await mailbox.open(record)
    copied = await mailbox.open(copy)

    assert first.raw == again.raw == copied.raw
    assert copied.record == copy  # the caller's record, not the cached one
    assert len(reads) == 1
    stats = mailbox.cache_stats
    assert (stats.misses, stats.hits, stats.entries) == (1, 2, 1)


async def test_metadata_never_decrypts(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    alice = await world.person("alice")
    mailbox = await session_of(world, alice)
    for _ in range(3):
        await mailbox.append("INBOX", message())
    reads: list[object] = []
    monkeypatch.setattr(world.blobs, "open", lambda ref: reads.append(ref))

    await mailbox.folders()
    await mailbox.status("INBOX")
    records = await mailbox.records("INBOX")
    await mailbox.fetch_records("INBOX", [r.uid for r in records])
    await mailbox.update_flags("INBOX", [1, 2], FlagMode.ADD, frozenset({"\\Seen", "\\Deleted"}))
    await mailbox.changes_since("INBOX", 0)
    await mailbox.move("INBOX", [3], "Archive")
    await mailbox.expunge("INBOX", [1])
    await mailbox.subscriptions()

    assert reads == [] and mailbox.cache_stats.misses == 0


async def test_the_cache_is_bounded_in_bytes_least_recently_used_first(world: World) -> None:
    alice = await world.person("alice")
    size = len(message(padding=1000))
    mailbox = await session_of(world, alice, cache_bytes=2 * size + 10)
    for index in range(3):
        await mailbox.append("INBOX", message(subject=f"n{index}", padding=1000))
    await mailbox.append("INBOX", message(subject="huge", padding=5 * size))
    one, two, three, huge = await mailbox.records("INBOX")

    await mailbox.open(one)
    await mailbox.open(two)
    await mailbox.open(one)  # two is now the least recently used
    await mailbox.open(three)
    assert mailbox.cache_stats.evictions == 1 and mailbox.cache_stats.bytes <= 2 * size + 10
    await mailbox.open(one)
    assert mailbox.cache_stats.hits == 2  # one stayed
    await mailbox.open(two)
    assert mailbox.cache_stats.misses == 4  # two had gone

    assert (await mailbox.open(huge)).raw.endswith(b"x\r\n")  # served, never kept
    assert mailbox.cache_stats.bytes <= 2 * size + 10


async def test_closing_forgets_messages_and_keys(world: World) -> None:
    alice = await world.person("alice")
    mailbox = await session_of(world, alice)
    await mailbox.append("INBOX", message())
    [record] = await mailbox.records("INBOX")
    await mailbox.open(record)

    mailbox.close()

    assert mailbox.closed and mailbox.cache_stats.entries == 0
    assert mailbox.cache_stats.bytes == 0
    with pytest.raises(RuntimeError):
        await mailbox.open(record)
    with pytest.raises(RuntimeError):
        await mailbox.append("INBOX", message())


async def test_a_gateway_message_says_who_handed_it_over(world: World) -> None:
    bob = await world.person("bob")
    raw = message()
    await world.delivery.receive(
        Address.parse("sender@autre-ms.test"),
        [bob],
        raw,
        gateway=crypto.GatewayInfo(peer="mx.autre-ms.test", tls="CN=mx.autre-ms.test"),
    )
    mailbox = await session_of(world, bob)
    [record] = await mailbox.records("INBOX")

    opened = await mailbox.open(record)

    assert (opened.provenance, opened.signature, opened.gateway_peer) == (
        Provenance.GATEWAY,
        SignatureStatus.VALID,
        "mx.autre-ms.test",
    )
    assert dataclasses.replace(opened, raw=b"").record == record


async def test_a_signer_the_directory_vouched_for_is_not_asked_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await world.person("alice")
    mailbox = await session_of(world, alice)
    for _ in range(3):
        await mailbox.append("INBOX", message())
    stranger = Address.parse("stranger@autre-ms.test")
    await world.delivery.receive(
        stranger, [alice], message(), gateway=crypto.GatewayInfo(peer="mx", tls="")
    )
    directory = world.delivery._keys
    asked: list[Address] = []
    real = directory.signing_keys

    async def counting(address: Address) -> list[bytes]:
        asked.append(address)
        return await real(address)

    monkeypatch.setattr(directory, "signing_keys", counting)
    records = await mailbox.records("INBOX")
    opened = [
        await world.delivery.open_message(alice, await world.keys(alice), "INBOX", r.uid)
        for r in records
    ]

    assert [o.signature for o in opened] == [SignatureStatus.VALID] * 4
    assert asked == [alice]  # once for three messages; the operator's key needs no directory


async def test_a_signer_the_directory_did_not_vouch_for_is_asked_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await world.person("alice")
    mailbox = await session_of(world, alice)
    placed = await mailbox.append("INBOX", message())
    directory = world.delivery._keys
    real = directory.signing_keys
    answers: list[list[bytes]] = [[]]  # first the directory knows no key (not published yet)

    async def late(address: Address) -> list[bytes]:
        return answers.pop() if answers else await real(address)

    monkeypatch.setattr(directory, "signing_keys", late)
    keys = await world.keys(alice)

    first = await world.delivery.open_message(alice, keys, "INBOX", placed.uid)
    second = await world.delivery.open_message(alice, keys, "INBOX", placed.uid)

    assert (first.signature, second.signature) == (
        SignatureStatus.UNKNOWN_SIGNER,
        SignatureStatus.VALID,
    )

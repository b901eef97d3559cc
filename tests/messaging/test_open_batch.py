"""Opening many messages at once (``MailboxSession.open_batch``,
``DeliveryService.open_messages``): what an IMAP FETCH of envelopes or bodies over a range
calls. The same messages, provenance and signature status as opening them one by one."""

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
    Limits,
    LocalKeyDirectory,
    MailboxKind,
    ManualClock,
    Provenance,
    SignatureStatus,
)
from messaging.errors import NotFound
from messaging.types import BlobRef, FlagMode
from tests.messaging.conftest import FAST, World
from tests.messaging.test_mailbox_session import message, session_of


async def test_a_batch_opens_what_opening_one_by_one_opens(world: World) -> None:
    alice = await world.person("alice")
    mailbox = await session_of(world, alice)
    for index in range(5):
        await mailbox.append("INBOX", message(subject=f"n{index}"))
    await world.delivery.receive(
        Address.parse("sender@autre-ms.test"),
        [alice],
        message(subject="from a peer"),
        gateway=crypto.GatewayInfo(peer="mx.autre-ms.test", tls="CN=mx.autre-ms.test"),
    )
    records = await mailbox.records("INBOX")
    alone = await session_of(world, alice)

    batch = await mailbox.open_batch(records)

    expected = [await alone.open(r) for r in records]
    assert batch == expected
    assert [o.provenance for o in expected] == [Provenance.E2E] * 5 + [Provenance.GATEWAY]
    assert {o.signature for o in expected} == {SignatureStatus.VALID}
    assert expected[-1].gateway_peer == "mx.autre-ms.test"
    assert b"Subject: n3" in expected[3].raw
    stats = mailbox.cache_stats
    assert (stats.misses, stats.hits, stats.entries) == (6, 0, 6)


async def test_a_batch_serves_cached_messages_and_reads_only_the_others(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await world.person("alice")
    mailbox = await session_of(world, alice)
    for index in range(4):
        await mailbox.append("INBOX", message(subject=f"n{index}"))
    records = await mailbox.records("INBOX")
    await mailbox.open(records[1])
    reads: list[BlobRef] = []
    real_open = world.blobs.open

    def counting_open(ref: BlobRef) -> BinaryIO:
        reads.append(ref)
        return real_open(ref)

    monkeypatch.setattr(world.blobs, "open", counting_open)
    flagged = dataclasses.replace(records[1], flags=frozenset({"\\Flagged"}))

    opened = await mailbox.open_batch([records[0], flagged, records[2], records[3]])

    assert sorted(r.digest for r in reads) == sorted(records[i].blob.digest for i in (0, 2, 3))
    assert opened[1] is not None and opened[1].record == flagged  # the caller's record
    stats = mailbox.cache_stats
    assert (stats.misses, stats.hits) == (1 + 3, 1)
    again = await mailbox.open_batch(records)
    assert len(reads) == 3 and all(o is not None for o in again)


async def test_a_message_gone_from_the_folder_is_none_in_its_place(world: World) -> None:
    alice = await world.person("alice")
    mailbox = await session_of(world, alice)
    for _ in range(3):
        await mailbox.append("INBOX", message())
    records = await mailbox.records("INBOX")
    await mailbox.update_flags("INBOX", [2], FlagMode.ADD, frozenset({"\\Deleted"}))
    await mailbox.expunge("INBOX")

    opened = await mailbox.open_batch(records)

    assert [o is None for o in opened] == [False, True, False]
    with pytest.raises(NotFound):
        await mailbox.open_many(records)
    assert len(await mailbox.open_many([records[0], records[2]])) == 2


async def test_an_envelope_that_does_not_open_is_reported_and_the_others_still_open(
    world: World,
) -> None:
    alice = await world.person("alice")
    mailbox = await session_of(world, alice)
    for index in range(3):
        await mailbox.append("INBOX", message(subject=f"n{index}"))
    records = await mailbox.records("INBOX")
    broken = records[1].blob
    stored = world.blobs._blobs[broken.digest]
    world.blobs._blobs[broken.digest] = stored[:-40] + bytes(40)  # the last frame is damaged

    found = await world.delivery.open_messages(
        alice, await world.keys(alice), "INBOX", [r.uid for r in records]
    )

    assert isinstance(found[2], crypto.CryptoError)
    assert b"Subject: n0" in found[1].raw and b"Subject: n2" in found[3].raw  # type: ignore[union-attr]
    with pytest.raises(crypto.CryptoError):
        await mailbox.open_batch(records)
    with pytest.raises(crypto.CryptoError):  # the same as opening it alone
        await (await session_of(world, alice)).open(records[1])


async def test_on_sql_small_envelopes_open_from_the_batch_read_without_the_blob_store(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ManualClock(datetime(2026, 11, 22, 9, 0, tzinfo=UTC))
    store = await SqlMailboxStore.open(
        database_url, blob_dir=tmp_path / "blobs", inline_blob_max=4096
    )
    try:
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
        alice = Address.parse("alice@medecin.pli.test")
        await accounts.create(alice, MailboxKind.PER, "Alice", "pw alice")
        keys = (await accounts.unlock(alice, "pw alice")).keys
        small, large = message(subject="small"), message(subject="large", padding=8000)
        for raw in (small, large, small):
            await delivery.append(alice, keys, "INBOX", raw)
        reads: list[BlobRef] = []
        real_open = store.blobs.open

        def counting_open(ref: BlobRef) -> BinaryIO:
            reads.append(ref)
            return real_open(ref)

        monkeypatch.setattr(store.blobs, "open", counting_open)

        found = await delivery.open_messages(alice, keys, "INBOX", [1, 2, 3, 4])

        assert sorted(found) == [1, 2, 3]
        assert [found[uid].raw for uid in (1, 2, 3)] == [small, large, small]  # type: ignore[union-attr]
        assert [ref.size > 4096 for ref in reads] == [True]  # only the large one is a file
        alone = await delivery.open_message(alice, keys, "INBOX", 2)
        assert found[2] == alone
    finally:
        await store.close()

"""``MailboxStore.get_messages``: many messages of a folder in one read (an IMAP FETCH over a
range), on every implementation, and the inline envelopes it returns on SQL."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from pathlib import Path

import pytest

from mailbox_store import SqlMailboxStore
from messaging.errors import NotFound
from messaging.ports import MailboxStore
from messaging.types import BlobRef, FlagMode
from tests.mailbox_store import factories as f
from tests.mailbox_store.test_contract import make

ALICE = f.address("alice")
BOB = f.address("bob")


async def test_get_messages_returns_the_existing_uids_in_order_with_slots(
    store: MailboxStore,
) -> None:
    await make(store, ALICE, BOB)
    sent = [f.delivery(ALICE, [BOB]) for _ in range(5)]
    for one in sent:
        await store.deliver(one)
    await store.update_flags(BOB, "INBOX", [2], FlagMode.ADD, frozenset({"\\Deleted"}))
    assert await store.expunge(BOB, "INBOX") == [2]

    found = await store.get_messages(BOB, "INBOX", [5, 1, 2, 3, 3, 99, 0])

    assert [m.record.uid for m in found] == [1, 3, 5]
    for message in found:
        single = await store.get_message(BOB, "INBOX", message.record.uid)
        assert message.record == single.record
        assert message.slot == single.slot == f.slot_for(BOB, message.record.envelope_id)
    assert [m.record.envelope_id for m in found] == [sent[i].envelope_id for i in (0, 2, 4)]


async def test_get_messages_reads_the_folder_asked_and_the_account_s_own_slot(
    store: MailboxStore,
) -> None:
    await make(store, ALICE, BOB)
    shared = f.delivery(ALICE, [BOB])
    await store.deliver(shared)

    [sent] = await store.get_messages(ALICE, "Sent", [1])
    [received] = await store.get_messages(BOB, "inbox", [1])

    assert (sent.record.folder, sent.slot) == ("Sent", f.slot_for(ALICE, shared.envelope_id))
    assert sent.record.flags == {f.SEEN}
    assert (received.record.folder, received.slot) == (
        "INBOX",
        f.slot_for(BOB, shared.envelope_id),
    )
    assert await store.get_messages(ALICE, "INBOX", [1]) == []


async def test_get_messages_of_many_uids_sees_every_one(store: MailboxStore) -> None:
    await make(store, ALICE, BOB)
    for _ in range(620):  # beyond the IN-list bound: a range scan filtered in the store
        await store.deliver(f.delivery(ALICE, [BOB], sent_copy=False))
    wanted = list(range(1, 621, 2)) + list(range(600, 621))

    found = await store.get_messages(BOB, "INBOX", wanted)

    assert [m.record.uid for m in found] == sorted(set(wanted))


async def test_get_messages_of_an_unknown_folder_or_account_is_not_found(
    store: MailboxStore,
) -> None:
    await make(store, BOB)
    with pytest.raises(NotFound):
        await store.get_messages(BOB, "Nowhere", [1])
    with pytest.raises(NotFound):
        await store.get_messages(ALICE, "INBOX", [1])


async def test_get_messages_returns_small_envelopes_inline_and_large_ones_by_reference(
    database_url: str, tmp_path: Path
) -> None:
    store = await SqlMailboxStore.open(
        database_url, blob_dir=tmp_path / "blobs", inline_blob_max=1024
    )
    try:
        await make(store, ALICE, BOB)
        small, large = os.urandom(1024), os.urandom(1025)
        for data in (small, large):
            ref = await asyncio.to_thread(_put, store, data)
            await store.deliver(dataclasses.replace(f.delivery(ALICE, [BOB]), blob=ref))

        first, second = await store.get_messages(BOB, "INBOX", [1, 2])

        assert first.inline == small
        assert second.inline is None  # a file: the blob store reads it
        single = await store.get_message(BOB, "INBOX", 1)
        assert single.inline is None  # one message: the blob store's own read, as before
    finally:
        await store.close()


def _put(store: SqlMailboxStore, data: bytes) -> BlobRef:
    with store.blobs.writer() as writer:
        writer.write(data)
        return writer.finish()

"""Small blobs are committed in the database with their delivery; large ones are files."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailbox_store import SqlMailboxStore
from messaging.errors import NotFound, UnknownMailbox
from messaging.types import BlobRef, Delivery
from tests.mailbox_store.factories import account, address, delivery

INLINE_MAX = 1024


@pytest.fixture
async def store(database_url: str, tmp_path: Path) -> AsyncIterator[SqlMailboxStore]:
    opened = await SqlMailboxStore.open(
        database_url, blob_dir=tmp_path / "blobs", inline_blob_max=INLINE_MAX
    )
    try:
        for name in ("alice", "bob"):
            await opened.create_account(account(address(name)), [])
        yield opened
    finally:
        await opened.close()


def put(store: SqlMailboxStore, data: bytes) -> BlobRef:
    with store.blobs.writer() as writer:
        for start in range(0, len(data), 300):
            writer.write(data[start : start + 300])
        return writer.finish()


def with_blob(item: Delivery, ref: BlobRef) -> Delivery:
    return dataclasses.replace(item, blob=ref)


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def test_a_small_blob_is_committed_with_its_delivery_and_no_file_is_written(
    store: SqlMailboxStore, database_url: str, tmp_path: Path
):
    data = os.urandom(INLINE_MAX)
    ref = await asyncio.to_thread(put, store, data)
    await store.deliver(with_blob(delivery(address("alice"), [address("bob")]), ref))
    assert store.blobs.pending(ref) is None
    assert files_under(tmp_path / "blobs") == []
    with await asyncio.to_thread(store.blobs.open, ref) as handle:
        assert handle.read() == data
    reopened = await SqlMailboxStore.open(
        database_url, blob_dir=tmp_path / "blobs", inline_blob_max=INLINE_MAX
    )
    try:
        with await asyncio.to_thread(reopened.blobs.open, ref) as handle:
            assert handle.read() == data
    finally:
        await reopened.close()


async def test_a_large_blob_is_a_file_durable_before_its_delivery(
    store: SqlMailboxStore, tmp_path: Path
):
    data = os.urandom(INLINE_MAX + 1)
    ref = await asyncio.to_thread(put, store, data)
    assert [p.name for p in files_under(tmp_path / "blobs")] == [ref.digest]
    await store.deliver(with_blob(delivery(address("alice"), [address("bob")]), ref))
    with await asyncio.to_thread(store.blobs.open, ref) as handle:
        assert handle.read() == data


async def test_a_refused_delivery_leaves_no_small_blob_behind(store: SqlMailboxStore):
    ref = await asyncio.to_thread(put, store, b"small ciphertext")
    doomed = with_blob(delivery(address("alice"), [address("ghost")]), ref)
    with pytest.raises(UnknownMailbox):
        await store.deliver(doomed)
    assert store.blobs.pending(ref) is None
    with pytest.raises(NotFound):
        await asyncio.to_thread(store.blobs.open, ref)


async def test_reading_a_small_blob_on_the_event_loop_is_refused(store: SqlMailboxStore):
    ref = await asyncio.to_thread(put, store, b"x")
    await store.deliver(with_blob(delivery(address("alice"), [address("bob")]), ref))
    with pytest.raises(RuntimeError, match="worker thread"):
        store.blobs.open(ref)

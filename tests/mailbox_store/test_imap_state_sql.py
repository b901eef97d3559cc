"""What only the SQL store can show: large folders cost a bounded number of statements, and
revision store_0004 upgrades a populated database without touching its IMAP state."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from mailbox_store import SqlMailboxStore
from mailbox_store import engine as engines
from mailbox_store.migrate import upgrade
from mailbox_store.tables import FolderRow, MessageRow
from messaging.types import FlagMode
from tests.mailbox_store import factories as f
from tests.mailbox_store.conftest import StepClock

ALICE = f.address("alice")
BOB = f.address("bob")
LARGE = 10_000


@contextmanager
def counted(store: SqlMailboxStore) -> Iterator[list[str]]:
    """The SQL statements ``store`` sends while the block runs (transaction control aside)."""
    statements: list[str] = []

    def record(*args: Any) -> None:
        statement = str(args[2])
        if statement.split()[0].upper() not in {"BEGIN", "COMMIT", "ROLLBACK"}:
            statements.append(statement)

    sync_engine = store._engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(sync_engine, "before_cursor_execute", record)


@pytest.fixture
async def large(database_url: str, clock: StepClock) -> AsyncIterator[SqlMailboxStore]:
    """Alice's INBOX with 10,000 copies of one envelope (inserted in bulk: the delivery path
    has its own tests)."""
    store = await SqlMailboxStore.open(database_url, clock=clock)
    try:
        for who in (ALICE, BOB):
            await store.create_account(f.account(who), [])
        [placed] = await store.deliver(f.delivery(BOB, [ALICE], sent_copy=False))
        first = await store.get_message(ALICE, "INBOX", placed.uid)
        async with store._writer.begin() as connection:
            folder_id = (
                await connection.execute(
                    sa.select(MessageRow.folder_id).where(MessageRow.uid == placed.uid)
                )
            ).scalar_one()
            await connection.execute(
                sa.insert(MessageRow),
                [
                    {
                        "folder_id": folder_id,
                        "uid": uid,
                        "modseq": uid,
                        "flags": "",
                        "seen": False,
                        "internal_date": first.record.internal_date,
                        "envelope_id": first.record.envelope_id,
                    }
                    for uid in range(2, LARGE + 1)
                ],
            )
            await connection.execute(
                sa.update(FolderRow)
                .where(FolderRow.id == folder_id)
                .values(uidnext=LARGE + 1, highestmodseq=LARGE)
            )
        yield store
    finally:
        await store.close()


async def test_a_large_folder_is_read_and_changed_in_a_few_statements(
    large: SqlMailboxStore,
) -> None:
    every = list(range(1, LARGE + 1))

    with counted(large) as reads:
        records = await large.fetch_records(ALICE, "INBOX", every)
    assert [r.uid for r in records] == every
    assert len(reads) <= 2, reads  # the folder, then every record: no query per message

    with counted(large) as writes:
        update = await large.update_flags(
            ALICE, "INBOX", every, FlagMode.ADD, frozenset({"\\Seen"})
        )
    assert len(update.updated) == LARGE and {r.modseq for r in update.updated} == {LARGE + 1}
    assert len(writes) <= 8, len(writes)

    with counted(large) as changes:
        since = await large.changes_since(ALICE, "INBOX", LARGE)
    assert len(since.records) == LARGE and len(changes) <= 3

    await large.update_flags(ALICE, "INBOX", every[::2], FlagMode.ADD, frozenset({"\\Deleted"}))
    with counted(large) as expunge:
        gone = await large.expunge(ALICE, "INBOX")
    assert gone == every[::2] and len(expunge) <= 10, len(expunge)
    status = await large.folder_status(ALICE, "INBOX")
    assert (status.messages, status.unseen) == (LARGE // 2, 0)


async def test_store_0004_upgrades_a_populated_database_in_place(database_url: str) -> None:
    engine = engines.create_engine(database_url)
    try:
        await upgrade(engine, "store_0002")
        async with engine.execution_options(**engines.WRITE).begin() as connection:
            account_id = (
                await connection.execute(
                    sa.text(
                        "INSERT INTO accounts (address, kind, display_name, encryption_key,"
                        " signing_key, created_at) VALUES ('alice@medecin.pli.test', 'PER',"
                        " 'Alice', :k, :k, :at) RETURNING id"
                    ),
                    {"k": b"k" * 32, "at": f.WHEN.replace(tzinfo=None)},
                )
            ).scalar_one()
            for name, role, uidnext in (("INBOX", "inbox", 8), ("Old", None, 3)):
                await connection.execute(
                    sa.text(
                        "INSERT INTO folders (account_id, name, role, uidvalidity, uidnext,"
                        " highestmodseq) VALUES (:a, :n, :r, 1700000000, :u, 12)"
                    ),
                    {"a": account_id, "n": name, "r": role, "u": uidnext},
                )
    finally:
        await engine.dispose()

    store = await SqlMailboxStore.open(database_url)  # migrates to the head
    try:
        folders = {folder.name: folder for folder in await store.list_folders(ALICE)}
        assert {
            name: (f.uidvalidity, f.uidnext, f.highestmodseq) for name, f in folders.items()
        } == {
            "INBOX": (1700000000, 8, 12),
            "Old": (1700000000, 3, 12),
        }
        assert all(folder.subscribed for folder in folders.values())
        assert await store.list_subscriptions(ALICE) == ["INBOX", "Old"]
        created = await store.create_folder(ALICE, "New")
        assert created.uidvalidity > 1700000000
    finally:
        await store.close()

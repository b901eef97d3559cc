"""What only the SQL store can show: engine settings, stored forms, several processes,
and ``Unavailable`` when the database cannot be reached."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from mailbox_store import SqlMailboxStore
from mailbox_store import engine as engines
from messaging.errors import Unavailable
from tests.mailbox_store import factories as f
from tests.support import postgres

ALICE = f.address("alice")
BOB = f.address("bob")


async def raw(url: str, statement: str) -> list[tuple[object, ...]]:
    """Rows as the database holds them, with no type conversion by the store."""
    engine = engines.create_engine(url)
    try:
        async with engine.connect() as connection:
            result = await connection.exec_driver_sql(statement)
            return [tuple(row) for row in result.all()]
    finally:
        await engine.dispose()


@pytest.fixture
async def opened(database_url: str) -> AsyncIterator[SqlMailboxStore]:
    store = await SqlMailboxStore.open(database_url)
    try:
        yield store
    finally:
        await store.close()


async def test_sqlite_connections_are_durable_wal_with_foreign_keys(tmp_path: Path) -> None:
    engine = engines.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'pli.db'}")
    try:
        async with engine.connect() as connection:
            pragmas = {
                name: (await connection.exec_driver_sql(f"PRAGMA {name}")).scalar_one()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
    finally:
        await engine.dispose()

    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 2,  # FULL
        "foreign_keys": 1,
        "busy_timeout": engines.SQLITE_BUSY_TIMEOUT_MS,
    }


def test_urls_without_a_driver_get_the_async_one() -> None:
    assert engines.async_url("sqlite:////var/pli.db") == "sqlite+aiosqlite:////var/pli.db"
    assert engines.async_url("postgresql://u:p@h/db") == "postgresql+asyncpg://u:p@h/db"
    with pytest.raises(ValueError, match="unsupported"):
        engines.async_url("mysql://h/db")


async def test_times_are_stored_in_utc(database_url: str, opened: SqlMailboxStore) -> None:
    paris = timezone(timedelta(hours=2))
    created = datetime(2026, 6, 1, 14, 0, tzinfo=paris)
    await opened.create_account(dataclasses.replace(f.account(ALICE), created_at=created), [])

    [(stored,)] = await raw(database_url, "SELECT created_at FROM accounts")

    if isinstance(stored, datetime):  # PostgreSQL: timestamptz
        assert stored == datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    else:  # SQLite: naive UTC text
        assert str(stored).startswith("2026-06-01 12:00:00")


async def test_a_revoked_credential_keeps_no_secret(
    database_url: str, opened: SqlMailboxStore
) -> None:
    await opened.create_account(f.account(ALICE), [f.credential("pw"), f.credential("old")])

    await opened.revoke_credential(ALICE, "old")

    rows = await raw(
        database_url,
        "SELECT id, length(salt), length(auth_hash), length(sealed_bundle), "
        "revoked_at IS NOT NULL FROM credentials ORDER BY id",
    )
    assert [(*row[:4], bool(row[4])) for row in rows] == [
        ("old", 0, 0, 0, True),
        ("pw", 16, 32, len(b"bundle:pw"), False),
    ]


async def test_writing_to_oneself_stores_one_key_slot(
    database_url: str, opened: SqlMailboxStore
) -> None:
    await opened.create_account(f.account(ALICE), [])
    await opened.deliver(f.delivery(ALICE, [ALICE]))

    assert await raw(database_url, "SELECT count(*) FROM key_slots") == [(1,)]
    assert await raw(database_url, "SELECT count(*) FROM messages") == [(2,)]


async def test_two_processes_on_one_database_never_share_a_uid(database_url: str) -> None:
    first = await SqlMailboxStore.open(database_url)
    second = await SqlMailboxStore.open(database_url)
    try:
        await first.create_account(f.account(ALICE), [])
        await first.create_account(f.account(BOB), [])
        deliveries = [f.delivery(ALICE, [BOB]) for _ in range(40)]

        placed = await asyncio.gather(
            *((first if i % 2 else second).deliver(d) for i, d in enumerate(deliveries))
        )

        uids = sorted(p.uid for result in placed for p in result if p.account == BOB)
        assert uids == list(range(1, 41))
        listed = await second.list_messages(BOB, "INBOX")
        assert [m.uid for m in listed] == list(range(1, 41))
        modseqs = [m.modseq for m in listed]
        assert modseqs == sorted(set(modseqs))
    finally:
        await first.close()
        await second.close()


async def test_an_unreachable_postgresql_is_unavailable() -> None:
    with pytest.raises(Unavailable):
        await SqlMailboxStore.open("postgresql+asyncpg://postgres@127.0.0.1:1/nothing")


async def test_an_unopenable_sqlite_file_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(Unavailable):
        await SqlMailboxStore.open(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'pli.db'}")


async def test_a_delivery_while_postgresql_refuses_connections_is_unavailable(
    postgres_admin_url: str,
) -> None:
    url = await postgres.create_database(postgres_admin_url)
    name = url.rsplit("/", 1)[1]
    admin_engine = create_async_engine(
        engines.async_url(postgres_admin_url), isolation_level="AUTOCOMMIT"
    )
    admin = await admin_engine.connect()
    try:
        store = await SqlMailboxStore.open(url)
        try:
            await store.create_account(f.account(ALICE), [])
            await store.create_account(f.account(BOB), [])
            await admin.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await admin.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
                ),
                {"n": name},
            )

            with pytest.raises(Unavailable):
                await store.deliver(f.delivery(ALICE, [BOB]))
            with pytest.raises(Unavailable):
                await store.get_account(ALICE)

            await admin.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            placed = await store.deliver(f.delivery(ALICE, [BOB]))  # and it recovers
            assert placed[0].uid == 1
        finally:
            await store.close()
    finally:
        await admin.close()
        await admin_engine.dispose()
        await postgres.drop_database(postgres_admin_url, url)


async def test_reads_see_a_consistent_schema(opened: SqlMailboxStore, database_url: str) -> None:
    """Every table the store queries exists after open (a smoke test of open's migration)."""
    engine = engines.create_engine(database_url)
    try:
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda c: sa.inspect(c).get_table_names())
    finally:
        await engine.dispose()
    assert "messages" in names and "alembic_version_store" in names
    assert await opened.list_accounts() == []

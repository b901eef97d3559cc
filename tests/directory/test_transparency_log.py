"""The transparency log's storages: one contract, run on memory, SQLite and PostgreSQL.

Every proof a storage serves is compared with :class:`crypto.merkle.MerkleTree` built from
the same leaves, and verified with the RFC 9162 verifiers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

import directory.transparency_tables  # noqa: F401  (registers the log's tables)
from crypto.keys import SigningKey
from crypto.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    verify_consistency,
    verify_inclusion,
    verify_tree_head,
)
from directory.db import Base
from directory.schema import create_engine, upgrade
from directory.transparency import (
    InMemoryLogStorage,
    LogEntry,
    LogStorage,
    SqlLogStorage,
    TransparencyLog,
)
from messaging.clock import ManualClock
from messaging.errors import NotFound
from tests.support import postgres

LOG_KEY = SigningKey.from_seed(b"\x07" * 32)
LOG_ID = "directory.pli.test"
START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
BACKENDS = ["memory", "sqlite", "postgresql"]


async def create_tables(engine: AsyncEngine) -> None:
    """The schema as production gets it: the directory's migrations, dir_0002 included."""
    await upgrade(engine)


@dataclass
class Backend:
    storage: LogStorage
    engine: AsyncEngine | None


@asynccontextmanager
async def open_backend(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Backend]:
    """A fresh, empty log storage of the given kind (shared with the key directory tests)."""
    if kind == "memory":
        yield Backend(InMemoryLogStorage(), None)
        return
    admin = None
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'log.db'}"
    else:
        admin = request.getfixturevalue("postgres_admin_url")
        url = await postgres.create_database(admin)
    engine = create_engine(url)
    try:
        await create_tables(engine)
        yield Backend(SqlLogStorage(engine), engine)
    finally:
        await engine.dispose()
        if admin is not None:
            await postgres.drop_database(admin, url)


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    async with open_backend(request.param, request, tmp_path) as opened:
        yield opened


def make_log(storage: LogStorage, clock: ManualClock | None = None) -> TransparencyLog:
    return TransparencyLog(storage, LOG_KEY, log_id=LOG_ID, clock=clock or ManualClock(START))


def leaf_data(n: int) -> bytes:
    return f"leaf {n}".encode()


def constant(data: bytes):
    def build(_: LogEntry | None) -> bytes:
        return data

    return build


async def fill(log: TransparencyLog, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        await log.append(f"subject-{n % 5}", constant(leaf_data(n)))


# --- Proofs equal the reference tree's ----------------------------------------------------


async def test_every_head_proof_and_root_matches_the_reference_tree(backend):
    log = make_log(backend.storage)
    await fill(log, 37)
    reference = MerkleTree(leaf_data(n) for n in range(37))
    for size in range(1, 38):
        head = await log.head(size)
        assert verify_tree_head(head, LOG_KEY.public)
        assert (head.log_id, head.tree_size) == (LOG_ID, size)
        assert head.root_hash == reference.root(size) == await log.root(size)
        for index in range(size):
            proof = await log.inclusion_proof(index, size)
            assert list(proof.path) == reference.inclusion_proof(index, size)
            assert verify_inclusion(leaf_data(index), index, size, proof.path, head.root_hash)
        for old in range(size + 1):
            consistency = await log.consistency_proof(old, size)
            assert list(consistency.path) == reference.consistency_proof(old, size)
            assert verify_consistency(
                old, size, reference.root(old), head.root_hash, consistency.path
            )


async def test_heads_carry_the_clock_time_in_milliseconds(backend):
    clock = ManualClock(START)
    log = make_log(backend.storage, clock)
    first = await log.append("a", constant(b"1"))
    clock.advance(timedelta(seconds=2, milliseconds=5))
    second = await log.append("a", constant(b"2"))
    assert first.head.timestamp_ms == int(START.timestamp()) * 1000
    assert second.head.timestamp_ms - first.head.timestamp_ms == 2005
    assert await log.latest_head() == second.head


async def test_an_empty_log_has_a_signed_head_of_the_empty_tree(backend):
    log = make_log(backend.storage)
    head = await log.latest_head()
    assert (head.tree_size, head.root_hash) == (0, EMPTY_ROOT)
    assert verify_tree_head(head, LOG_KEY.public)
    assert await log.size() == 0
    assert await log.root(0) == EMPTY_ROOT


async def test_append_many_continues_the_same_tree(backend):
    log = make_log(backend.storage)
    await fill(log, 3)
    head = await log.append_many([(f"bulk-{n}", leaf_data(n)) for n in range(3, 40)])
    await fill(log, 2, start=40)
    reference = MerkleTree(leaf_data(n) for n in range(42))
    assert head.tree_size == 40
    assert head.root_hash == reference.root(40)
    assert (await log.latest_head()).root_hash == reference.root()
    assert list((await log.consistency_proof(3, 42)).path) == reference.consistency_proof(3, 42)
    assert list((await log.inclusion_proof(17, 40)).path) == reference.inclusion_proof(17, 40)
    with pytest.raises(NotFound):
        await log.head(20)  # a batch signs its last size only
    with pytest.raises(ValueError, match="nothing"):
        await log.append_many([])


# --- Entries and subjects ---------------------------------------------------------------------


async def test_entries_latest_and_history_follow_the_subjects(backend):
    log = make_log(backend.storage)
    await fill(log, 12)
    entries = await log.entries(3, 6)
    assert entries == [LogEntry(n, f"subject-{n % 5}", leaf_data(n)) for n in range(3, 6)]
    assert await log.entries(10, 100) == [
        LogEntry(n, f"subject-{n % 5}", leaf_data(n)) for n in (10, 11)
    ]
    assert [e.index for e in await log.history("subject-1")] == [1, 6, 11]
    assert (await log.latest("subject-1")) == LogEntry(11, "subject-1", leaf_data(11))
    assert (await log.latest("subject-1", before=11)) == LogEntry(6, "subject-1", leaf_data(6))
    assert await log.latest("subject-1", before=1) is None
    assert await log.latest("nobody") is None
    assert await log.history("nobody") == []


async def test_the_builder_sees_the_subjects_latest_entry(backend):
    log = make_log(backend.storage)
    seen: list[LogEntry | None] = []

    def build(previous: LogEntry | None) -> bytes:
        seen.append(previous)
        return b"v%d" % len(seen)

    await log.append("alice", build)
    await log.append("bob", constant(b"other"))
    await log.append("alice", build)
    assert seen == [None, LogEntry(0, "alice", b"v1")]


async def test_a_failing_builder_appends_nothing(backend):
    log = make_log(backend.storage)
    await fill(log, 3)
    before = await log.latest_head()

    def refuse(_: LogEntry | None) -> bytes:
        raise NotFound("nothing to revoke")

    with pytest.raises(NotFound):
        await log.append("x", refuse)
    assert await log.size() == 3
    assert await log.latest_head() == before
    await log.append("x", constant(leaf_data(3)))
    assert (await log.latest_head()).root_hash == MerkleTree(leaf_data(n) for n in range(4)).root()


async def test_proofs_outside_the_log_are_not_found(backend):
    log = make_log(backend.storage)
    await fill(log, 4)
    with pytest.raises(NotFound):
        await log.inclusion_proof(0, 5)
    with pytest.raises(NotFound):
        await log.inclusion_proof(4, 4)
    with pytest.raises(NotFound):
        await log.consistency_proof(3, 2)
    with pytest.raises(NotFound):
        await log.consistency_proof(1, 9)
    with pytest.raises(NotFound):
        await log.head(9)
    with pytest.raises(NotFound):
        await log.root(5)


# --- Concurrency -------------------------------------------------------------------------------


async def test_concurrent_appends_get_distinct_indexes_and_one_head_per_size(backend):
    log = make_log(backend.storage)
    count = 40
    results = await asyncio.gather(
        *(log.append(f"s{n % 3}", constant(leaf_data(n))) for n in range(count))
    )
    assert sorted(r.entry.index for r in results) == list(range(count))
    assert sorted(r.head.tree_size for r in results) == list(range(1, count + 1))
    entries = await log.entries(0, count)
    assert [e.index for e in entries] == list(range(count))
    reference = MerkleTree(e.data for e in entries)
    for result in results:
        size = result.head.tree_size
        assert await log.head(size) == result.head
        assert result.head.root_hash == reference.root(size)
        assert entries[result.entry.index].data == result.entry.data


async def test_concurrent_appends_for_one_subject_number_it_without_gaps(backend):
    log = make_log(backend.storage)

    def next_version(previous: LogEntry | None) -> bytes:
        number = 0 if previous is None else int(previous.data) + 1
        return str(number).encode()

    await asyncio.gather(*(log.append("alice", next_version) for _ in range(25)))
    history = await log.history("alice")
    assert [int(e.data) for e in history] == list(range(25))


async def test_two_engines_on_one_database_append_without_collisions(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    engines = [create_engine(url) for _ in range(2)]
    try:
        await create_tables(engines[0])
        logs = [make_log(SqlLogStorage(engine)) for engine in engines]
        await asyncio.gather(*(logs[n % 2].append("s", constant(leaf_data(n))) for n in range(30)))
        entries = await logs[0].entries(0, 100)
        assert [e.index for e in entries] == list(range(30))
        assert sorted(e.data for e in entries) == sorted(leaf_data(n) for n in range(30))
        head = await logs[1].latest_head()
        assert head.root_hash == MerkleTree(e.data for e in entries).root()
    finally:
        for engine in engines:
            await engine.dispose()


# --- Schema --------------------------------------------------------------------------------


async def test_the_migration_creates_exactly_the_tables_of_the_models(backend):
    if backend.engine is None:
        return  # nothing to migrate in memory

    def differences(conn: Connection) -> list[object]:
        context = MigrationContext.configure(conn)
        ours = [t for t in Base.metadata.sorted_tables if t.name.startswith("dir_keylog_")]
        assert len(ours) == 4
        wanted = MetaData()
        for table in ours:
            table.to_metadata(wanted)
        return [
            diff
            for diff in compare_metadata(context, wanted)
            if "dir_keylog_" in repr(diff) and diff[0] != "remove_table"
        ]

    async with backend.engine.connect() as conn:
        assert await conn.run_sync(differences) == []
    # The state row exists from the start, so the first append is no special case.
    assert await SqlLogStorage(backend.engine).size() == 0


async def test_refreshing_the_head_re_signs_the_same_tree_with_a_new_time(backend):
    clock = ManualClock(START)
    log = make_log(backend.storage, clock)
    empty = await log.refresh_head()
    assert (empty.tree_size, empty.root_hash) == (0, EMPTY_ROOT)
    await fill(log, 5)
    before = await log.latest_head()
    clock.advance(timedelta(hours=1))
    fresh = await log.refresh_head()
    assert (fresh.tree_size, fresh.root_hash) == (before.tree_size, before.root_hash)
    assert fresh.timestamp_ms - before.timestamp_ms == 3_600_000
    assert verify_tree_head(fresh, LOG_KEY.public)
    assert await log.head(5) == fresh == await log.latest_head()


async def test_refreshes_racing_appends_keep_one_head_per_size_and_the_right_roots(backend):
    log = make_log(backend.storage)
    await asyncio.gather(
        *(log.append("s", constant(leaf_data(n))) for n in range(15)),
        *(log.refresh_head() for _ in range(10)),
    )
    entries = await log.entries(0, 100)
    reference = MerkleTree(e.data for e in entries)
    for size in range(1, 16):
        head = await log.head(size)
        assert head.root_hash == reference.root(size)
        assert verify_tree_head(head, LOG_KEY.public)

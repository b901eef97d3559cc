"""Fixtures of the mailbox store tests: a clock, and a store of each implementation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailbox_store import InMemoryMailboxStore, SqlMailboxStore
from messaging.ports import MailboxStore
from tests.support import postgres


class StepClock:
    """A clock that moves one millisecond forward each time it is read."""

    def __init__(self, start: datetime = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)) -> None:
        self.current = start

    def now(self) -> datetime:
        self.current += timedelta(milliseconds=1)
        return self.current


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: StepClock
) -> AsyncIterator[MailboxStore]:
    """The same contract for every implementation: in memory, SQLite, PostgreSQL.

    SQL databases are made the way ``tests/conftest.py``'s ``database_url`` makes them
    (that fixture is parametrised by engine, so it cannot be asked for per parameter here).
    """
    if request.param == "memory":
        memory = InMemoryMailboxStore(clock=clock)
        yield memory
        await memory.close()
        return
    if request.param == "sqlite":
        sqlite = await SqlMailboxStore.open(
            f"sqlite+aiosqlite:///{tmp_path / 'pli.db'}", clock=clock
        )
        try:
            yield sqlite
        finally:
            await sqlite.close()
        return
    admin = request.getfixturevalue("postgres_admin_url")
    url = await postgres.create_database(admin)
    try:
        pg = await SqlMailboxStore.open(url, clock=clock)
        try:
            yield pg
        finally:
            await pg.close()
    finally:
        await postgres.drop_database(admin, url)

"""Fixtures of the directory tests: a clock, and a directory of each implementation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from directory import InMemoryDirectory, SqlDirectory
from messaging.directory import Directory
from tests.support import postgres


class StepClock:
    """A clock that moves one second forward each time it is read."""

    def __init__(self, start: datetime = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)) -> None:
        self.current = start

    def now(self) -> datetime:
        self.current += timedelta(seconds=1)
        return self.current


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def directory(
    request: pytest.FixtureRequest, tmp_path: Path, clock: StepClock
) -> AsyncIterator[Directory]:
    """The same contract for every implementation: in memory, SQLite, PostgreSQL.

    SQL databases are made the way ``tests/conftest.py``'s ``database_url`` makes them
    (that fixture is parametrised by engine, so it cannot be asked for per parameter here).
    """
    if request.param == "memory":
        yield InMemoryDirectory(clock=clock)
        return
    if request.param == "sqlite":
        sqlite = await SqlDirectory.open(f"sqlite+aiosqlite:///{tmp_path / 'pli.db'}", clock=clock)
        try:
            yield sqlite
        finally:
            await sqlite.close()
        return
    admin = request.getfixturevalue("postgres_admin_url")
    url = await postgres.create_database(admin)
    try:
        pg = await SqlDirectory.open(url, clock=clock)
        try:
            yield pg
        finally:
            await pg.close()
    finally:
        await postgres.drop_database(admin, url)


@pytest.fixture
async def sql_directory(database_url: str, clock: StepClock) -> AsyncIterator[SqlDirectory]:
    """The SQL directory on each engine, for what only a database can show."""
    directory = await SqlDirectory.open(database_url, clock=clock)
    try:
        yield directory
    finally:
        await directory.close()


async def export(directory: Directory) -> bytes:
    return b"".join([chunk async for chunk in directory.export_extraction()])

"""Fixtures of the directory tests: a clock, and a directory of each implementation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from directory import InMemoryDirectory, SqlDirectory
from messaging.directory import Directory
from tests.support.clock import StepClock
from tests.support.databases import fresh_database


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def directory(
    request: pytest.FixtureRequest, tmp_path: Path, clock: StepClock
) -> AsyncIterator[Directory]:
    """The same contract for every implementation: in memory, SQLite, PostgreSQL.

    SQL databases are made as ``tests/conftest.py``'s ``database_url`` makes them (that
    fixture is parametrised by engine, so it cannot be asked for per parameter here).
    """
    if request.param == "memory":
        yield InMemoryDirectory(clock=clock)
        return
    async with fresh_database(request, request.param, tmp_path) as url:
        sql = await SqlDirectory.open(url, clock=clock)
        try:
            yield sql
        finally:
            await sql.close()


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

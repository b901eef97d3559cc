"""Fixtures of the mailbox store tests: a clock, and a store of each implementation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from mailbox_store import InMemoryMailboxStore, SqlMailboxStore
from messaging.ports import MailboxStore
from tests.support.clock import StepClock as StepClock  # tests import it from here
from tests.support.databases import fresh_database


@pytest.fixture
def clock() -> StepClock:
    return StepClock(step=timedelta(milliseconds=1))


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: StepClock
) -> AsyncIterator[MailboxStore]:
    """The same contract for every implementation: in memory, SQLite, PostgreSQL.

    SQL databases are made as ``tests/conftest.py``'s ``database_url`` makes them (that
    fixture is parametrised by engine, so it cannot be asked for per parameter here).
    """
    if request.param == "memory":
        memory = InMemoryMailboxStore(clock=clock)
        yield memory
        await memory.close()
        return
    async with fresh_database(request, request.param, tmp_path) as url:
        sql = await SqlMailboxStore.open(url, clock=clock)
        try:
            yield sql
        finally:
            await sql.close()

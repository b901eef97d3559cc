"""Fixtures shared by the whole suite: engines, data directories, clocks."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support import postgres


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """An admin URL of a PostgreSQL server; fails (never skips) when none can be had."""
    url = os.environ.get(postgres.ENV_VAR)
    if url:
        yield url
        return
    with postgres.throwaway_cluster() as started:
        yield started


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database of each engine: SQLite in a file, PostgreSQL by URL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'pli.db'}"
        return
    admin = request.getfixturevalue("postgres_admin_url")
    url = await postgres.create_database(admin)
    try:
        yield url
    finally:
        await postgres.drop_database(admin, url)

"""A fresh, empty database of one engine, for the fixtures parametrised by engine."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support import postgres


@contextlib.asynccontextmanager
async def fresh_database(
    request: pytest.FixtureRequest, engine: str, tmp_path: Path
) -> AsyncIterator[str]:
    """The URL of a new database: SQLite in a file of ``tmp_path``, or PostgreSQL (on the
    server of the ``postgres_admin_url`` fixture, dropped afterwards)."""
    if engine == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'pli.db'}"
        return
    admin = request.getfixturevalue("postgres_admin_url")
    url = await postgres.create_database(admin)
    try:
        yield url
    finally:
        await postgres.drop_database(admin, url)

"""Engines and migrations of the directory.

:func:`create_engine` makes an async engine for a SQLite or PostgreSQL URL and sets SQLite
up the way the directory needs it: WAL, a busy timeout, and SQLAlchemy's recipe for
aiosqlite that makes ``BEGIN`` explicit, so that a transaction really spans every statement
of an import (``BEGIN IMMEDIATE`` when a connection asks for it: a long import takes the
write lock first instead of failing half-way).

:func:`migrate` / :func:`upgrade` run the Alembic revisions in ``directory/migrations``
programmatically (no ``alembic.ini``) to every head, recording them in
``alembic_version_directory``. On PostgreSQL an advisory lock serialises fronts that start
together.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

__all__ = ["create_engine", "migrate", "upgrade", "database_url", "IMMEDIATE"]

MIGRATIONS = Path(__file__).parent / "migrations"
IMMEDIATE = "pli_directory_immediate"
"""Execution option: begin this connection's transactions with ``BEGIN IMMEDIATE`` (SQLite)."""
_LOCK_ID = 0x504C4944  # "PLID": the advisory lock of the directory's migrations


def database_url(url: str) -> str:
    """The SQLAlchemy async URL for a plain ``sqlite:`` or ``postgresql:`` URL."""
    for plain, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


def create_engine(url: str, **options: object) -> AsyncEngine:
    """An async engine for ``url``; SQLite gets WAL, a busy timeout and explicit BEGIN."""
    engine = create_async_engine(database_url(url), **options)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: DBAPIConnection, _record: object) -> None:
    # The driver's own implicit BEGIN (before DML only) would leave DDL and reads of a long
    # import outside the transaction; SQLAlchemy's documented recipe turns it off.
    cast(Any, dbapi_connection).isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    immediate = connection.get_execution_options().get(IMMEDIATE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _run_alembic(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "heads")


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the directory's schema to the latest revision, in one transaction."""
    async with engine.connect() as connection:
        connection = await connection.execution_options(**{IMMEDIATE: True})
        async with connection.begin():
            await connection.run_sync(_run_alembic)


async def migrate(url: str) -> None:
    """Bring the directory's schema at ``url`` to the latest revision."""
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()

"""Schema migrations of the store, run programmatically with Alembic.

The migrations ship inside the package (``mailbox_store/migrations``) and need no
``alembic.ini``: :func:`alembic_config` builds the configuration in code. The store's
version table is ``alembic_version_store``, so the store can share a PostgreSQL database
with other packages that keep their own Alembic history.

Invariants:

- An upgrade is one transaction (PostgreSQL and SQLite both have transactional DDL; the
  SQLite engine emits its own ``BEGIN IMMEDIATE``), so a failed upgrade leaves the previous
  schema intact.
- Several processes may start at once: on PostgreSQL the upgrade holds a transaction-level
  advisory lock, on SQLite the write lock, so exactly one of them migrates and the others
  then find the schema at head.
- Migrations only add or reshape schema; they never rewrite UIDVALIDITY, UIDs or MODSEQs.
- Files are read (scripts loaded) in a worker thread; statements run on the async engine
  through ``AsyncConnection.run_sync``, so the event loop never blocks.

For developers: ``alembic_config(url)`` works with ``alembic.command`` (``revision
--autogenerate``, ``upgrade``, ``history``…); ``migrations/env.py`` uses the same options.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext, RevisionStep
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from mailbox_store import engine as engines
from mailbox_store.tables import Base

__all__ = [
    "VERSION_TABLE",
    "MIGRATIONS_DIR",
    "alembic_config",
    "context_options",
    "migrate",
    "upgrade",
    "current_revision",
    "run_env",
]

VERSION_TABLE = "alembic_version_store"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_ADVISORY_LOCK_KEY = 0x706C692D73746F72  # "pli-stor": serialises concurrent migrators


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration for the store's migrations, built in code."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", engines.async_url(url).replace("%", "%%"))
    return config


def _include_name(name: str | None, type_: str, _parent: object) -> bool:
    # Autogenerate looks only at the store's own tables: a shared database may hold others.
    if type_ == "table":
        return name in Base.metadata.tables
    return True


def context_options() -> dict[str, Any]:
    """Options given to ``EnvironmentContext.configure`` everywhere the store migrates."""
    return {
        "target_metadata": Base.metadata,
        "version_table": VERSION_TABLE,
        "include_name": _include_name,
        "render_as_batch": True,
        "compare_type": True,
    }


def _load_script() -> ScriptDirectory:
    script = ScriptDirectory.from_config(alembic_config())
    script.get_heads()  # loads every revision file now, in this (worker) thread
    return script


def _run_upgrade(connection: Connection, script: ScriptDirectory, revision: str) -> None:
    def steps(heads: tuple[str, ...], _context: MigrationContext) -> list[RevisionStep]:
        # What ``alembic.command.upgrade`` does, without loading env.py from disk (Alembic
        # itself passes the tuple of current heads where this private method says ``str``).
        return script._upgrade_revs(revision, heads)  # type: ignore[arg-type]

    with EnvironmentContext(
        alembic_config(), script, fn=steps, destination_rev=revision
    ) as environment:
        environment.configure(connection=connection, **context_options())
        environment.run_migrations()


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Upgrade the store's schema behind ``engine`` to ``revision``, in one transaction."""
    script = await asyncio.to_thread(_load_script)
    async with engine.execution_options(**engines.WRITE).begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY}
            )
        await connection.run_sync(_run_upgrade, script, revision)


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None before the first migration."""

    def read(connection: Connection) -> str | None:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(read)


async def migrate(url: str) -> None:
    """Upgrade the database at ``url`` to the newest schema (idempotent)."""
    async with engines.translate_errors():
        engine = engines.create_engine(url, pool_size=1)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()


def run_env() -> None:
    """Body of ``migrations/env.py``, for the ``alembic`` command and ``alembic.command``.

    Uses ``config.attributes["connection"]`` when the caller passed a connection, else the
    configured ``sqlalchemy.url``.
    """
    from alembic import context

    if context.is_offline_mode():
        context.configure(
            url=context.config.get_main_option("sqlalchemy.url"),
            literal_binds=True,
            **context_options(),
        )
        with context.begin_transaction():
            context.run_migrations()
        return

    def run(connection: Connection) -> None:
        context.configure(connection=connection, **context_options())
        with context.begin_transaction():
            context.run_migrations()

    given: Connection | None = context.config.attributes.get("connection")
    if given is not None:
        run(given)
        return

    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("set sqlalchemy.url (alembic_config(url)) or pass a connection")

    async def online() -> None:
        engine = engines.create_engine(url, pool_size=1)
        try:
            async with engine.execution_options(**engines.WRITE).connect() as connection:
                await connection.run_sync(run)
                await connection.commit()
        finally:
            await engine.dispose()

    asyncio.run(online())

"""The directory's schema: its own Alembic history and version table, on each engine."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from directory import SqlDirectory, migrate, tables
from directory.db import Base
from directory.schema import create_engine
from directory.tables import __all__ as models

TABLES = {getattr(tables, model).__tablename__ for model in models}


async def test_migrating_twice_is_harmless_and_records_dir_0001(database_url: str):
    await migrate(database_url)
    await migrate(database_url)
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            versions = (
                (await conn.execute(text("SELECT version_num FROM alembic_version_directory")))
                .scalars()
                .all()
            )
    finally:
        await engine.dispose()
    assert {"dir_mailboxes", "dir_roles", "dir_practitioners", "dir_organisations"} <= tables
    assert {"dir_patients", "dir_applications", "dir_imports", "dir_role_search"} <= tables
    assert "alembic_version" not in tables  # the mailbox store's table is not ours
    assert len(versions) == 1  # one head; dir_0001 is its root
    history = await _history()
    assert history[0] == "dir_0001" and versions[0] == history[-1]
    assert history[:3] == ["dir_0001", "dir_0002", "dir_0003"]
    # dir_0003: PostgreSQL's name × city index; SQLite has no such table.
    assert ("dir_role_pairs" in tables) == database_url.startswith("postgresql")


async def _history() -> list[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from directory.schema import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    script = ScriptDirectory.from_config(config)
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


async def test_the_migrations_create_exactly_the_declared_tables(database_url: str):
    await migrate(database_url)
    engine = create_engine(database_url)

    def ours(item: Any, name: str | None, kind: str, *_: Any) -> bool:
        # Our tables only: not the search table, the transparency log or the store's.
        table = name if kind == "table" else getattr(getattr(item, "table", None), "name", None)
        return table in TABLES

    def differences(connection: Any) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"include_object": ours})
        return list(compare_metadata(context, Base.metadata))

    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(differences) == []
    finally:
        await engine.dispose()


async def test_a_sqlite_directory_needs_a_file():
    with pytest.raises(ValueError, match="file"):
        await SqlDirectory.open("sqlite+aiosqlite://")

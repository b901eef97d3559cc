"""Alembic environment of the directory, run by :func:`directory.schema.upgrade` only.

The caller hands over an open connection in ``config.attributes["connection"]``; the
revisions run inside the caller's transaction and record themselves in
``alembic_version_directory``, apart from the mailbox store's own version table.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from directory import tables, transparency_tables  # noqa: F401  (register tables on Base.metadata)
from directory.db import Base

VERSION_TABLE = "alembic_version_directory"


def _include_name(name: str | None, type_: str, _parents: object) -> bool:
    """Autogenerate looks at the directory's own tables only, not at the search table
    (engine-specific, written by hand) nor at the mailbox store's tables."""
    if type_ == "table":
        return (
            name is not None and name.startswith("dir_") and not name.startswith("dir_role_search")
        )
    return True


def run() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("the directory migrates through directory.migrate(), not alembic.ini")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        include_name=_include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


run()

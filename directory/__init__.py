"""The directory: professionals, organisations, patients, applications and their mailboxes.

Implements :class:`messaging.directory.Directory` twice — :class:`SqlDirectory` (SQLite or
PostgreSQL, migrated by Alembic with its own version table) and :class:`InMemoryDirectory`
(the reference, for tests) — and reads and writes the national "Extraction Correspondance
MSSanté" file (:mod:`directory.extraction`). See ``docs/directory.md``.
"""

from directory.memory import InMemoryDirectory
from directory.schema import migrate
from directory.sql import SqlDirectory

__all__ = ["InMemoryDirectory", "SqlDirectory", "migrate"]

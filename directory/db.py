"""The directory's SQLAlchemy declarative base: every directory table hangs off it.

The directory shares the database of the mailbox store but migrates on its own (Alembic
version table ``alembic_version_directory``), so the two packages stay independent.
"""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Base of the directory's private tables."""

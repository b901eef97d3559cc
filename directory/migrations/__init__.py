"""Alembic migrations of the directory (version table ``alembic_version_directory``).

Run programmatically by :func:`directory.migrate`; there is no ``alembic.ini``.
"""

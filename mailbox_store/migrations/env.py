"""Alembic environment of the mailbox store.

The store migrates itself (``mailbox_store.migrate``); this file serves the ``alembic``
command and ``alembic.command`` calls made with ``mailbox_store.migrate.alembic_config``.
"""

from mailbox_store.migrate import run_env

run_env()

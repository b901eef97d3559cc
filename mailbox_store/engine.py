"""Async engines for the store, configured for durability.

SQLite (the embedded default):

- ``journal_mode=WAL`` so readers never block the writer, and ``synchronous=FULL`` so a
  commit survives power loss (WAL with ``NORMAL`` only survives a process crash: the last
  transactions may be rolled back after a power cut, which would break the promise that an
  acknowledged message is stored);
- ``foreign_keys=ON`` and a ``busy_timeout``, set on every new connection by a listener;
- the driver's implicit transactions are turned off and the store emits ``BEGIN`` itself:
  ``BEGIN IMMEDIATE`` for writes (engines made with :data:`WRITE` options), so a writer
  takes the write lock up front and waits on ``busy_timeout`` instead of failing with
  "database is locked" when it would otherwise upgrade a read lock; plain ``BEGIN`` for
  reads. That also makes DDL transactional, so a migration is all or nothing.

PostgreSQL (production): asyncpg with the server's default ``synchronous_commit`` (on),
``pool_pre_ping`` so a restarted server costs one failed ping instead of one failed
request, and a connect timeout so an unreachable server surfaces as ``Unavailable``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from messaging.errors import Unavailable

__all__ = ["WRITE", "async_url", "create_engine", "is_unavailable", "translate_errors"]

WRITE: dict[str, Any] = {"pli_write": True}
"""Execution options of write transactions (``BEGIN IMMEDIATE`` on SQLite)."""

SQLITE_BUSY_TIMEOUT_MS = 15_000
POSTGRES_CONNECT_TIMEOUT_S = 10


def async_url(url: str) -> str:
    """Accept ``sqlite:///`` and ``postgresql://`` too: pick the async driver for them."""
    parsed = make_url(url)
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    if parsed.drivername not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        raise ValueError(f"unsupported database URL scheme {parsed.drivername!r}")
    return parsed.render_as_string(hide_password=False)


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An async engine for ``url`` with the settings described in the module docstring."""
    target = make_url(async_url(url))
    if target.drivername == "sqlite+aiosqlite":
        engine = create_async_engine(target, pool_size=pool_size)
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
        return engine
    return create_async_engine(
        target,
        pool_size=pool_size,
        pool_pre_ping=True,
        connect_args={
            "timeout": POSTGRES_CONNECT_TIMEOUT_S,
            "server_settings": {"application_name": "pli-mailbox-store"},
        },
    )


def _sqlite_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:  # noqa: ANN401 - the driver's adapted connection
    # Autocommit at the driver level: _sqlite_on_begin emits BEGIN itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        mode = cursor.fetchone()
        if mode is None or str(mode[0]).lower() != "wal":
            raise RuntimeError(f"SQLite refused WAL journal mode (got {mode!r})")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    write = connection.get_execution_options().get("pli_write", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


# SQLSTATE classes that mean "not now" rather than "not this": connection exceptions,
# transaction rollbacks (serialisation failure, deadlock), lack of resources (disk full, too
# many connections), object state (database not accepting connections, lock not
# available), operator intervention (shutdown, cannot connect now), system errors.
_TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "55", "57", "58")


def is_unavailable(error: BaseException) -> bool:
    """True when ``error`` means the database cannot be used now (the caller may retry)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(
            current,
            sa_exc.OperationalError
            | sa_exc.InterfaceError
            | sa_exc.TimeoutError
            | sa_exc.DisconnectionError
            | OSError
            | TimeoutError,
        ):
            return True
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES:
            return True
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return False


@asynccontextmanager
async def translate_errors() -> AsyncIterator[None]:
    """Turn "the database cannot be reached or used now" into :class:`Unavailable`."""
    try:
        yield
    except Unavailable:
        raise
    except Exception as error:
        if is_unavailable(error):
            raise Unavailable(f"mailbox store unavailable: {type(error).__name__}") from error
        raise

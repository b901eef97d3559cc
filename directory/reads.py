"""Read-only SQLite connections for the directory's hot reads (search), used from threads.

SQLAlchemy over aiosqlite crosses between the event loop and aiosqlite's thread about
sixteen times per query (cursor, BEGIN, execute, description, fetch, close, rollback…), at
about a tenth of a millisecond each: more than the FTS5 query itself. Here a whole read —
its statements and the fetch — runs in one worker thread, one crossing in all, on
connections opened ``mode=ro`` (WAL lets them read while an import writes; they see
committed data only). Writes, imports and everything else stay on the SQLAlchemy engine.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

__all__ = ["SqliteReads"]

T = TypeVar("T")

_CACHE_KIB = 16 * 1024


class SqliteReads:
    """A pool of read-only connections to one SQLite file; grows to the number of threads
    that read at once, never more."""

    def __init__(self, path: Path) -> None:
        self._uri = f"{path.resolve().as_uri()}?mode=ro"
        self._idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._all: list[sqlite3.Connection] = []

    def _open(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self._uri, uri=True, check_same_thread=False, isolation_level=None
        )
        connection.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
        self._all.append(connection)
        return connection

    def _run(self, read: Callable[[sqlite3.Connection], T]) -> T:
        try:
            connection = self._idle.get_nowait()
        except queue.Empty:
            connection = self._open()
        try:
            return read(connection)
        finally:
            self._idle.put(connection)

    async def run(self, read: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``read`` with a connection of its own, in a worker thread."""
        return await asyncio.to_thread(self._run, read)

    def close(self) -> None:
        for connection in self._all:
            connection.close()
        self._all.clear()

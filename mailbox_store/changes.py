"""Change feeds: "this folder of this account changed", to every watcher, from every process.

What :meth:`messaging.ports.MailboxStore.watch` returns (IMAP IDLE and NOOP, RFC 2177 and
RFC 3501 §6.1.2, webmail push). An event is the *name* of a folder whose state changed, or
``"*"`` when any folder may have changed (created, renamed, deleted, or events may have
been lost); it is a hint to re-read the state, so events are coalesced.

- :class:`ChangeHub` fans out in-process: each subscription has a bounded set of pending
  names (a duplicate is absorbed, an overflow collapses into ``"*"``), registered when
  :meth:`ChangeHub.subscribe` returns and released by ``aclose()`` or when the iterator is
  garbage-collected (the hub holds subscriptions weakly).
- :class:`SqlChangeFeed` adds other processes sharing the database:

  * PostgreSQL: every committing transaction that changes a folder runs ``pg_notify`` on
    :data:`CHANNEL` (delivered only if the transaction commits, after it commits); one
    connection per store ``LISTEN``s while someone watches, and a lost connection gives
    every watcher ``"*"`` before listening again.
  * SQLite has no notifications: while someone watches, one task per store reads the
    watched accounts' folders (name, UIDVALIDITY, HIGHESTMODSEQ) every ``poll_interval``
    seconds in one query and reports what differs; changes committed by this process are
    also published at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mailbox_store import engine as engines
from mailbox_store.tables import AccountRow, FolderRow
from messaging.errors import Unavailable

__all__ = ["ANY", "CHANNEL", "ChangeHub", "SqlChangeFeed", "Subscription"]

ANY = "*"
CHANNEL = "pli_mailbox_changes"
_log = logging.getLogger(__name__)


class Subscription:
    """One watcher's pending events; an async iterator of folder names."""

    def __init__(self, hub: ChangeHub, key: str, limit: int, *, live: bool) -> None:
        self._hub: ChangeHub | None = hub
        self._key = key
        self._limit = limit
        self._pending: dict[str, None] = {}
        self._ready = asyncio.Event()
        self._live = asyncio.Event()
        if live:
            self._live.set()

    @property
    def is_live(self) -> bool:
        return self._live.is_set()

    def make_live(self) -> None:
        self._live.set()

    async def ready(self) -> None:
        """Return once every change committed from now on will be reported (the LISTEN
        is in place, or the poller has read this account's state since the subscription);
        at once for in-process feeds. Read the state to compare against *after* this."""
        await self._live.wait()

    def push(self, folder: str) -> None:
        if folder in self._pending:
            return
        if len(self._pending) >= self._limit:
            self._pending = {ANY: None}
        else:
            self._pending[folder] = None
        self._ready.set()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> str:
        while not self._pending:
            if self._hub is None:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        folder = next(iter(self._pending))
        del self._pending[folder]
        return folder

    async def aclose(self) -> None:
        """Stop watching; a waiting ``__anext__`` ends the iteration."""
        hub = self._hub
        if hub is not None:
            hub.discard(self._key, self)
        self.end()

    def end(self) -> None:
        self._hub = None
        self._pending.clear()
        self._ready.set()
        self._live.set()  # nothing more will come: nobody should wait for it


class ChangeHub:
    """In-process fan-out of changed folders, per account key."""

    def __init__(self, pending_limit: int = 256) -> None:
        self._limit = pending_limit
        self._subscriptions: dict[str, weakref.WeakSet[Subscription]] = {}

    def subscribe(self, key: str, *, live: bool = True) -> Subscription:
        subscription = Subscription(self, key, self._limit, live=live)
        self._subscriptions.setdefault(key, weakref.WeakSet()).add(subscription)
        return subscription

    def discard(self, key: str, subscription: Subscription) -> None:
        found = self._subscriptions.get(key)
        if found is not None:
            found.discard(subscription)
            if not found:
                del self._subscriptions[key]

    def publish(self, key: str, folder: str) -> None:
        for subscription in tuple(self._subscriptions.get(key, ())):
            subscription.push(folder)

    def publish_all(self, folder: str = ANY) -> None:
        for key in self.watched():
            self.publish(key, folder)

    def close(self) -> None:
        """End every subscription: their iterators stop once drained (the store closes)."""
        subscriptions = [sub for subs in self._subscriptions.values() for sub in subs]
        self._subscriptions.clear()
        for subscription in subscriptions:
            subscription.end()

    def subscriptions(self) -> list[Subscription]:
        return [sub for subs in self._subscriptions.values() for sub in subs]

    def watched(self) -> list[str]:
        """Keys with at least one live subscription."""
        for key in [k for k, subs in self._subscriptions.items() if not subs]:
            del self._subscriptions[key]
        return list(self._subscriptions)

    def watchers(self, key: str) -> int:
        return len(self._subscriptions.get(key, ()))


class SqlChangeFeed:
    """Watch accounts of a SQL store across processes (see the module docstring)."""

    def __init__(
        self, engine: AsyncEngine, *, poll_interval: float = 0.25, pending_limit: int = 256
    ) -> None:
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        self._poll_interval = poll_interval
        self.hub = ChangeHub(pending_limit)
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._listening = False

    @property
    def running(self) -> bool:
        """True while a poller or a listener runs (someone watches)."""
        return self._task is not None and not self._task.done()

    def watch(self, key: str) -> Subscription:
        if self._closed:
            raise Unavailable("the mailbox store is closed")
        subscription = self.hub.subscribe(key, live=self._postgres and self._listening)
        if not self.running:
            body = self._listen() if self._postgres else self._poll()
            self._task = asyncio.get_running_loop().create_task(body, name="pli-change-feed")
        return subscription

    async def notify_in(
        self, connection: AsyncConnection, changes: Iterable[tuple[str, str]]
    ) -> None:
        """Inside a write transaction: tell the other processes, when it commits."""
        if not self._postgres:
            return
        payloads = sorted({json.dumps([key, folder]) for key, folder in changes})
        if payloads:
            await connection.execute(
                text("SELECT pg_notify(:channel, p) FROM unnest(CAST(:payloads AS text[])) AS p"),
                {"channel": CHANNEL, "payloads": payloads},
            )

    def committed(self, changes: Iterable[tuple[str, str]]) -> None:
        """After a commit: wake this process's watchers (PostgreSQL's come by NOTIFY)."""
        if self._postgres:
            return
        for key, folder in changes:
            self.hub.publish(key, folder)

    async def close(self) -> None:
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.hub.close()

    # -- SQLite: poll -------------------------------------------------------------------

    async def _poll(self) -> None:
        seen: dict[str, dict[str, tuple[int, int]]] = {}
        while True:
            keys = self.hub.watched()
            if not keys:
                return
            waiting = [sub for sub in self.hub.subscriptions() if not sub.is_live]
            try:
                current = await self._snapshot(keys)
            except Exception:  # the database is busy or gone: say so, try again later
                _log.warning("change feed: cannot read folder states", exc_info=True)
                await asyncio.sleep(self._poll_interval)
                continue
            for key in keys:
                now = current.get(key, {})
                before = seen.get(key)
                if before is not None and now != before:
                    if now.keys() != before.keys():
                        self.hub.publish(key, ANY)
                    else:
                        for name, state in now.items():
                            if before[name] != state:
                                self.hub.publish(key, name)
                seen[key] = now
            for key in [k for k in seen if k not in keys]:
                del seen[key]
            for subscription in waiting:  # their account's state was read after they came
                subscription.make_live()
            await asyncio.sleep(self._poll_interval)

    async def _snapshot(self, keys: list[str]) -> dict[str, dict[str, tuple[int, int]]]:
        query = (
            select(
                AccountRow.address, FolderRow.name, FolderRow.uidvalidity, FolderRow.highestmodseq
            )
            .join(FolderRow, FolderRow.account_id == AccountRow.id)
            .where(AccountRow.address.in_(keys))
        )
        found: dict[str, dict[str, tuple[int, int]]] = {}
        async with engines.translate_errors(), self._engine.connect() as connection:
            for address, name, uidvalidity, highestmodseq in await connection.execute(query):
                found.setdefault(address, {})[name] = (uidvalidity, highestmodseq)
        return found

    # -- PostgreSQL: LISTEN -------------------------------------------------------------

    async def _listen(self) -> None:
        first = True
        while self.hub.watched():
            try:
                await self._listen_once(announce=not first)
            except asyncio.CancelledError:
                raise
            except Exception:
                _log.warning("change feed: LISTEN connection lost", exc_info=True)
            first = False
            if self.hub.watched():
                await asyncio.sleep(min(self._poll_interval * 4, 1.0))

    async def _listen_once(self, *, announce: bool) -> None:
        def received(_connection: Any, _pid: int, _channel: str, payload: str) -> None:  # noqa: ANN401
            try:
                key, folder = json.loads(payload)
            except (ValueError, TypeError):
                return
            self.hub.publish(str(key), str(folder))

        async with self._engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None  # noqa: S101 - a checked-out connection has a driver
            await driver.add_listener(CHANNEL, received)
            try:
                if announce:  # events may have been lost while reconnecting
                    self.hub.publish_all()
                # No await between the test and the flag: a subscription made while
                # ``_listening`` is true is heard by this connection.
                while self.hub.watched() and not driver.is_closed():
                    self._listening = True
                    for subscription in self.hub.subscriptions():
                        subscription.make_live()
                    await asyncio.sleep(self._poll_interval)
                self._listening = False
            finally:
                self._listening = False
                if not driver.is_closed():
                    with contextlib.suppress(Exception):
                        await driver.remove_listener(CHANNEL, received)

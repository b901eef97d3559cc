"""Group commit: many concurrent writes, one transaction, one fsync.

A durable commit costs one flush to stable storage (an ``fsync`` of the SQLite WAL, a WAL
flush on PostgreSQL), and that flush, not the SQL, bounds how many deliveries a store can
acknowledge per second. :class:`GroupCommitter` lets concurrent callers share it:

- each :meth:`GroupCommitter.submit` queues its item and waits on a future;
- one committer task takes everything pending (up to ``max_group`` items), commits the group
  in ONE transaction, then resolves every caller's future. While it commits, newcomers
  queue up and form the next group, so the group size adapts to the load and a lone caller
  pays no added latency.

Implementation notes (the invariants):

- A caller's future resolves only after the transaction carrying its item has committed:
  group commit changes nothing to the durability promise, only to its price.
- ``commit_group`` returns one outcome per item: a result, or the exception of an item it
  refused without writing it (an unknown mailbox), so a refused item never sinks the
  others. When the group transaction itself fails, the committer cannot tell whose item
  caused it, so it retries the items one by one with ``commit_one``, each in its own
  transaction: the good ones land, the bad one gets its own error. When the failure is
  :class:`~messaging.errors.Unavailable` (the database cannot be reached), retrying would
  only fail N times more slowly, so every caller of the group gets that error at once.
- An item whose caller was cancelled before its group started is dropped, never committed.
  Once a group has started, cancelling a caller does not undo its commit.
- :meth:`GroupCommitter.close` stops accepting items, lets the committer finish every item
  already queued, then returns; items submitted afterwards get ``Unavailable``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from messaging.errors import Unavailable

__all__ = ["GroupCommitter", "CommitStats"]

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


@dataclass(slots=True)
class CommitStats:
    """Counters of what the committer did, for tests and metrics."""

    transactions: int = 0
    """Transactions that committed at least one item (a group, or one item after a fallback)."""
    deliveries: int = 0
    """Items committed."""
    groups: int = 0
    """Group transactions attempted."""
    fallbacks: int = 0
    """Groups whose transaction failed and whose items were retried one by one."""
    refused: int = 0
    """Items that got an error instead of a result."""
    largest_group: int = 0


@dataclass(slots=True)
class _Pending(Generic[ItemT, ResultT]):
    item: ItemT
    future: asyncio.Future[ResultT]


class GroupCommitter(Generic[ItemT, ResultT]):
    """Queue items from concurrent callers and commit them in groups.

    ``commit_group(items)`` commits the items in one transaction and returns, in order, a
    result or an exception for each (an exception it returns refuses that item alone); if
    it raises, the transaction committed nothing. ``commit_one(item)`` commits one item in
    its own transaction and returns its result or raises its error.
    """

    def __init__(
        self,
        commit_group: Callable[[Sequence[ItemT]], Awaitable[Sequence[ResultT | Exception]]],
        commit_one: Callable[[ItemT], Awaitable[ResultT]],
        *,
        max_group: int = 64,
    ) -> None:
        if max_group < 1:
            raise ValueError("max_group must be at least 1")
        self._commit_group = commit_group
        self._commit_one = commit_one
        self._max_group = max_group
        self._queue: asyncio.Queue[_Pending[ItemT, ResultT] | None] = asyncio.Queue()
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self.stats = CommitStats()

    @property
    def closed(self) -> bool:
        return self._closed

    async def submit(self, item: ItemT) -> ResultT:
        """Queue ``item``; return its result once the transaction carrying it has committed."""
        if self._closed:
            raise Unavailable("the mailbox store is closed")
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="mailbox-store-group-commit"
            )
        future: asyncio.Future[ResultT] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(item, future))
        return await future

    async def close(self) -> None:
        """Stop accepting items; return once every queued item has been committed."""
        if self._closed:
            return
        self._closed = True
        if self._task is None:
            return
        self._queue.put_nowait(None)
        await asyncio.shield(self._task)

    async def _run(self) -> None:
        group: list[_Pending[ItemT, ResultT]] = []
        try:
            stopping = False
            while not stopping:
                first = await self._queue.get()
                if first is None:
                    return
                group = [first]
                while len(group) < self._max_group and not self._queue.empty():
                    following = self._queue.get_nowait()
                    if following is None:
                        stopping = True
                        break
                    group.append(following)
                group = [pending for pending in group if not pending.future.done()]
                if group:
                    await self._commit(group)
                group = []
        finally:
            # Only reached with work left if this task itself was cancelled (loop shutdown):
            # nobody will commit it, so say so rather than leave callers waiting forever.
            self._closed = True
            while not self._queue.empty():
                pending = self._queue.get_nowait()
                if pending is not None:
                    group.append(pending)
            for pending in group:
                if not pending.future.done():
                    pending.future.set_exception(Unavailable("the mailbox store is closed"))

    async def _commit(self, group: list[_Pending[ItemT, ResultT]]) -> None:
        self.stats.groups += 1
        self.stats.largest_group = max(self.stats.largest_group, len(group))
        try:
            outcomes = await self._commit_group([pending.item for pending in group])
        except Unavailable as error:
            for pending in group:
                self._resolve(pending, error)
            return
        except Exception:  # whose item failed is found by retrying each alone
            self.stats.fallbacks += 1
            await self._commit_each(group)
            return
        if len(outcomes) != len(group):  # a bug in commit_group, not in an item
            mismatch = RuntimeError("commit_group returned the wrong number of outcomes")
            for pending in group:
                self._resolve(pending, mismatch)
            return
        if any(not isinstance(outcome, Exception) for outcome in outcomes):
            self.stats.transactions += 1
        for pending, outcome in zip(group, outcomes, strict=True):
            self._resolve(pending, outcome)

    async def _commit_each(self, group: list[_Pending[ItemT, ResultT]]) -> None:
        for pending in group:
            try:
                result = await self._commit_one(pending.item)
            except Exception as error:  # handed to this item's caller
                self._resolve(pending, error)
            else:
                self.stats.transactions += 1
                self._resolve(pending, result)

    def _resolve(self, pending: _Pending[ItemT, ResultT], outcome: ResultT | Exception) -> None:
        if isinstance(outcome, Exception):
            self.stats.refused += 1
            if not pending.future.done():
                pending.future.set_exception(outcome)
            return
        self.stats.deliveries += 1
        if not pending.future.done():
            pending.future.set_result(outcome)

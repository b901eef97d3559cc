"""In-process fan-out of mailbox events (IMAP IDLE, webmail push, within one process).

Several fronts sharing one PostgreSQL will fan out through LISTEN/NOTIFY; that
implementation plugs into the same :class:`messaging.ports.Notifier` port.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator

from messaging.types import Address

__all__ = ["InProcessNotifier"]


class InProcessNotifier:
    """Publish to every subscriber of an address; slow subscribers lose old events, not new."""

    def __init__(self, queue_size: int = 256) -> None:
        self._queue_size = queue_size
        self._subscribers: dict[Address, set[asyncio.Queue[str]]] = defaultdict(set)

    def publish(self, address: Address, event: str) -> None:
        for queue in tuple(self._subscribers.get(address, ())):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)

    async def subscribe(self, address: Address) -> AsyncIterator[str]:
        queue: asyncio.Queue[str] = asyncio.Queue(self._queue_size)
        self._subscribers[address].add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers[address].discard(queue)
            if not self._subscribers[address]:
                del self._subscribers[address]

    def subscribers(self, address: Address) -> int:
        return len(self._subscribers.get(address, ()))

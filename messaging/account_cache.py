"""A short-lived, in-process cache of account records for the delivery service's checks.

Reading every recipient's account (and its keys) from the database for every submission
costs more than sealing a small message. The service's checks are an early refusal only:
the store checks again, inside the delivery transaction, that every account exists and is
open, so a stale entry can at worst let a doomed delivery reach the store, which refuses
it. Entries live ``ttl`` seconds; account public keys never change for a record.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from messaging.ports import MailboxStore
from messaging.types import AccountRecord, Address

__all__ = ["AccountCache"]


class AccountCache:
    def __init__(
        self,
        store: MailboxStore,
        *,
        ttl: float = 5.0,
        size: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._size = size
        self._monotonic = monotonic
        self._entries: OrderedDict[Address, tuple[float, AccountRecord | None]] = OrderedDict()

    async def get(self, address: Address) -> AccountRecord | None:
        now = self._monotonic()
        hit = self._entries.get(address)
        if hit is not None and now - hit[0] < self._ttl:
            self._entries.move_to_end(address)
            return hit[1]
        record = await self._store.get_account(address)
        # Unknown addresses are not remembered: an account created a moment ago must work.
        if record is not None:
            self._entries[address] = (now, record)
            self._entries.move_to_end(address)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return record

    async def get_many(self, addresses: Sequence[Address]) -> dict[Address, AccountRecord | None]:
        return {address: await self.get(address) for address in addresses}

    def forget(self, address: Address) -> None:
        self._entries.pop(address, None)

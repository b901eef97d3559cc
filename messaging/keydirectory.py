"""A key directory over the local accounts of the mailbox store.

It answers for local mailboxes only, from the public keys recorded at account creation.
The transparency-logged directory (``directory.keys``) replaces it in the wiring when the
directory is configured; both satisfy :class:`messaging.ports.KeyDirectory`.
"""

from __future__ import annotations

from dataclasses import dataclass

from messaging.account_cache import AccountCache
from messaging.ports import MailboxStore
from messaging.types import Address

__all__ = ["LocalKeyDirectory", "LocalKeys"]


@dataclass(frozen=True, slots=True)
class LocalKeys:
    address: Address
    encryption_key: bytes
    signing_key: bytes


class LocalKeyDirectory:
    """Keys of local accounts; a record's keys never change, so they are cached briefly."""

    def __init__(self, store: MailboxStore, *, cache_seconds: float = 5.0) -> None:
        self._store = store
        self._cache = AccountCache(store, ttl=cache_seconds)

    async def lookup(self, address: Address) -> LocalKeys | None:
        account = await self._cache.get(address)
        if account is None:
            return None
        return LocalKeys(account.address, account.encryption_key, account.signing_key)

    async def signing_keys(self, address: Address) -> list[bytes]:
        account = await self._cache.get(address)
        return [] if account is None else [account.signing_key]

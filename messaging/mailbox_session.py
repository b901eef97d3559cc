"""One unlocked account's view of its mailbox, for a protocol session (IMAP, RFC 3501/9051).

A gateway makes one :class:`MailboxSession` per authenticated connection with
:meth:`MailboxAccess.session` and talks to the mailbox only through it:

- **Metadata** (folders, counts, flags, MODSEQs, UIDs, changes, copies, moves, expunges)
  comes straight from :class:`~messaging.ports.MailboxStore`; none of these methods opens an
  envelope, so FLAGS/ENVELOPE-less fetches, SEARCH on flags or sizes, STATUS and
  CONDSTORE/QRESYNC resyncs never decrypt a body.
- **Content** (:meth:`MailboxSession.open`) is decrypted with the session's keys through
  :meth:`~messaging.service.DeliveryService.open_message` and kept in a per-session cache,
  bounded in bytes and evicted least recently used first. The cache is keyed by envelope
  id: every copy of a message (COPY, MOVE) shares one decrypted body, and a folder deleted
  and recreated under the same name can never serve another message's body for a UID.
  :meth:`MailboxSession.close` (logout, timeout) drops the cache and the keys' reference.
- **Provenance**: :class:`~messaging.service.OpenedMessage` says how the message entered Pli
  (``e2e`` or ``gateway`` with the peer) and whether its signature was made by the key the
  directory holds; the gateway renders that as a header of its own (a sender cannot forge
  it, because the gateway adds it and removes any copy found in the message).
- **Changes** from other sessions and other processes arrive on :meth:`MailboxSession.watch`
  (IDLE, NOOP), as folder names to re-read (``"*"``: any folder). Keep one watch for the
  whole session and ``await watch.ready()`` before reading the state it is compared with:
  then no change committed in between can be missed, even from another process.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import BinaryIO

import crypto
from messaging.errors import InvalidMessage, NotFound
from messaging.ports import ChangeWatch, MailboxStore
from messaging.service import DeliveryService, OpenedMessage
from messaging.types import (
    Address,
    Changes,
    FlagMode,
    FlagUpdate,
    FolderRecord,
    MessageRecord,
    PlacedMessage,
)

__all__ = ["DEFAULT_CACHE_BYTES", "MailboxAccess", "MailboxSession", "CacheStats"]

DEFAULT_CACHE_BYTES = 32 * 1024 * 1024


@dataclasses.dataclass(slots=True)
class CacheStats:
    """Counters of one session's plaintext cache (for tests and logs; no content)."""

    hits: int = 0
    misses: int = 0
    evictions: int = 0
    bytes: int = 0
    entries: int = 0


class MailboxAccess:
    """Makes sessions: what ``pli/wiring.py`` hands to the IMAP gateway."""

    def __init__(
        self,
        *,
        store: MailboxStore,
        delivery: DeliveryService,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        self._store = store
        self._delivery = delivery
        self._cache_bytes = cache_bytes

    @property
    def append_limit(self) -> int:
        """APPENDLIMIT (RFC 7889): the largest message APPEND accepts."""
        return self._delivery.append_limit

    def session(self, address: Address, keys: crypto.MailboxKeys) -> MailboxSession:
        """A session for ``address``, whose keys were unlocked by a successful login."""
        return MailboxSession(
            store=self._store,
            delivery=self._delivery,
            address=address,
            keys=keys,
            cache_bytes=self._cache_bytes,
        )


class MailboxSession:
    """The mailbox of one unlocked account, for one protocol session."""

    def __init__(
        self,
        *,
        store: MailboxStore,
        delivery: DeliveryService,
        address: Address,
        keys: crypto.MailboxKeys,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        self._store = store
        self._delivery = delivery
        self._address = address
        self._keys: crypto.MailboxKeys | None = keys
        self._cache_bytes = cache_bytes
        self._cache: OrderedDict[str, OpenedMessage] = OrderedDict()
        self._stats = CacheStats()

    @property
    def address(self) -> Address:
        return self._address

    @property
    def append_limit(self) -> int:
        return self._delivery.append_limit

    @property
    def cache_stats(self) -> CacheStats:
        return dataclasses.replace(self._stats)

    @property
    def closed(self) -> bool:
        return self._keys is None

    def close(self) -> None:
        """Forget the decrypted messages and the keys (logout, timeout). Idempotent."""
        self._cache.clear()
        self._stats.bytes = self._stats.entries = 0
        self._keys = None

    def _unlocked(self) -> crypto.MailboxKeys:
        if self._keys is None:
            raise RuntimeError("this mailbox session is closed")
        return self._keys

    # -- folders ------------------------------------------------------------------------

    async def folders(self) -> list[FolderRecord]:
        """Every folder, in creation order, with counts and ``subscribed`` (LIST, LSUB)."""
        return await self._store.list_folders(self._address)

    async def status(self, folder: str) -> FolderRecord:
        """SELECT / EXAMINE / STATUS numbers of one folder. Raises ``NotFound``."""
        return await self._store.folder_status(self._address, folder)

    async def create_folder(self, name: str) -> FolderRecord:
        return await self._store.create_folder(self._address, name)

    async def rename_folder(self, old: str, new: str) -> None:
        await self._store.rename_folder(self._address, old, new)

    async def delete_folder(self, name: str) -> None:
        await self._store.delete_folder(self._address, name)

    async def set_subscribed(self, name: str, subscribed: bool) -> None:
        await self._store.set_subscribed(self._address, name, subscribed)

    async def subscriptions(self) -> list[str]:
        return await self._store.list_subscriptions(self._address)

    # -- messages: metadata only --------------------------------------------------------

    async def records(self, folder: str) -> list[MessageRecord]:
        """Every message of ``folder`` in UID order (SELECT builds its UID map from it)."""
        return await self._store.list_messages(self._address, folder)

    async def fetch_records(self, folder: str, uids: Sequence[int]) -> list[MessageRecord]:
        return await self._store.fetch_records(self._address, folder, uids)

    async def update_flags(
        self,
        folder: str,
        uids: Sequence[int],
        mode: FlagMode,
        flags: frozenset[str],
        *,
        unchanged_since: int | None = None,
    ) -> FlagUpdate:
        return await self._store.update_flags(
            self._address, folder, uids, mode, flags, unchanged_since=unchanged_since
        )

    async def expunge(self, folder: str, uids: Sequence[int] | None = None) -> list[int]:
        return await self._store.expunge(self._address, folder, uids)

    async def copy(self, source: str, uids: Sequence[int], target: str) -> list[tuple[int, int]]:
        return await self._store.copy_messages(self._address, source, uids, target)

    async def move(self, source: str, uids: Sequence[int], target: str) -> list[tuple[int, int]]:
        return await self._store.move_messages(self._address, source, uids, target)

    async def changes_since(self, folder: str, modseq: int) -> Changes:
        return await self._store.changes_since(self._address, folder, modseq)

    def watch(self) -> ChangeWatch:
        """Changed folder names (``"*"``: any), from every session and process (IDLE)."""
        return self._store.watch(self._address)

    async def append(
        self,
        folder: str,
        message: bytes | BinaryIO,
        *,
        flags: frozenset[str] = frozenset(),
        internal_date: datetime | None = None,
        size: int | None = None,
    ) -> PlacedMessage:
        """APPEND: sealed for this account, durable on return (see ``DeliveryService``)."""
        return await self._delivery.append(
            self._address,
            self._unlocked(),
            folder,
            message,
            flags=flags,
            internal_date=internal_date,
            size=size,
        )

    # -- messages: content --------------------------------------------------------------

    async def open(self, record: MessageRecord) -> OpenedMessage:
        """The decrypted message of ``record`` with its provenance and signature status.

        Served from the session cache when this envelope was opened before; the returned
        ``record`` is the one given (flags and MODSEQ as the caller knows them). Raises
        ``NotFound`` when the message is gone, ``InvalidMessage`` when the stored envelope is
        not the record's.
        """
        keys = self._unlocked()
        cached = self._cache.get(record.envelope_id)
        if cached is not None:
            self._cache.move_to_end(record.envelope_id)
            self._stats.hits += 1
            return dataclasses.replace(cached, record=record)
        self._stats.misses += 1
        opened = await self._delivery.open_message(self._address, keys, record.folder, record.uid)
        if opened.record.envelope_id != record.envelope_id:
            raise InvalidMessage("the message under this UID is not the one listed")
        if self._keys is not None:  # not closed while the envelope was being opened
            self._remember(record.envelope_id, opened)
        return dataclasses.replace(opened, record=record)

    async def open_many(self, records: Sequence[MessageRecord]) -> list[OpenedMessage]:
        """:meth:`open` for each record, in order. Raises ``NotFound`` when one is gone."""
        opened = await self.open_batch(records)
        missing = next((r for r, o in zip(records, opened, strict=True) if o is None), None)
        if missing is not None:
            raise NotFound(f"message {missing.uid} of {missing.folder!r} is gone")
        return [o for o in opened if o is not None]

    async def open_batch(self, records: Sequence[MessageRecord]) -> list[OpenedMessage | None]:
        """:meth:`open` for many records at once (a FETCH of envelopes or bodies over a
        range): cached ones from the cache, the others with one store read per folder and
        the decryption in a few worker threads. In order; None for a message that is gone.
        Raises what :meth:`open` would for the first record that cannot be opened."""
        keys = self._unlocked()
        found: dict[tuple[str, int], OpenedMessage | Exception | None] = {}
        missing: dict[str, list[int]] = {}
        for record in records:
            cached = self._cache.get(record.envelope_id)
            if cached is not None:
                self._cache.move_to_end(record.envelope_id)
                self._stats.hits += 1
                found[(record.folder, record.uid)] = cached
            else:
                self._stats.misses += 1
                missing.setdefault(record.folder, []).append(record.uid)
        for folder, uids in missing.items():
            try:
                batch = await self._delivery.open_messages(self._address, keys, folder, uids)
            except NotFound:  # the folder itself is gone
                batch = {}
            for uid in uids:
                found[(folder, uid)] = batch.get(uid)
        result: list[OpenedMessage | None] = []
        for record in records:
            opened = found[(record.folder, record.uid)]
            if isinstance(opened, Exception):
                raise opened
            if opened is None:
                result.append(None)
                continue
            if opened.record.envelope_id != record.envelope_id:
                raise InvalidMessage("the message under this UID is not the one listed")
            if self._keys is not None and record.envelope_id not in self._cache:
                self._remember(record.envelope_id, opened)
            result.append(dataclasses.replace(opened, record=record))
        return result

    def _remember(self, envelope_id: str, opened: OpenedMessage) -> None:
        size = len(opened.raw)
        if size > self._cache_bytes:
            return  # larger than the whole cache: serve it, never keep it
        previous = self._cache.pop(envelope_id, None)
        if previous is not None:
            self._stats.bytes -= len(previous.raw)
        self._cache[envelope_id] = opened
        self._stats.bytes += size
        while self._stats.bytes > self._cache_bytes:
            _, evicted = self._cache.popitem(last=False)
            self._stats.bytes -= len(evicted.raw)
            self._stats.evictions += 1
        self._stats.entries = len(self._cache)

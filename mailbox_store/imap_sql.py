"""IMAP mailbox state on SQL: folders, flags, expunges, copies, moves, changes and watching.

Mixed into :class:`~mailbox_store.sql.SqlMailboxStore`; implements the IMAP half of
:class:`messaging.ports.MailboxStore` (RFC 3501/9051 folders and flags, RFC 4315 UIDPLUS,
RFC 6851 MOVE, RFC 7162 CONDSTORE/QRESYNC).

Implementation notes (the invariants, beside those of :mod:`mailbox_store.sql`):

- **One transaction per call**, committed before the call returns. A write first locks
  the folder rows it changes (``SELECT … FOR UPDATE`` on PostgreSQL, in folder id order like
  deliveries, so no deadlock; SQLite's ``BEGIN IMMEDIATE`` already serialises writers),
  then reads, then writes: no lost update between two processes.
- **MODSEQ.** A call that changes a folder takes the next MODSEQ of that folder once
  (``highestmodseq + 1``) and gives it to every message it touches and to every tombstone
  it writes. A STORE that changes nothing takes none.
- **Tombstones.** Expunged UIDs (EXPUNGE, UID EXPUNGE, MOVE, renaming INBOX) are kept with
  their MODSEQ in ``expunged_messages`` for QRESYNC's VANISHED; they go with their folder.
- **Key slots.** When the account's last copy of an envelope is expunged or deleted, its
  key slot is deleted with it: the account can no longer open that envelope.
- **Large folders.** UID lists of any length cost one query: short lists become ``IN``,
  long ones a ``BETWEEN`` on the (folder, uid) index filtered here.
- **Watching.** Each write reports the folders it changed to the store's
  :class:`~mailbox_store.changes.SqlChangeFeed`: ``pg_notify`` inside the transaction on
  PostgreSQL, an in-process publish after the commit on SQLite.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import (
    Select,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mailbox_store import engine as engines
from mailbox_store.changes import ANY, SqlChangeFeed, Subscription
from mailbox_store.imap_tables import SubscriptionRow, TombstoneRow, UidValidityFloorRow
from mailbox_store.invariants import (
    address_from_key,
    address_key,
    apply_flags,
    canonical_folder_name,
    check_folder_name,
    flags_from_text,
    flags_to_text,
    is_deleted,
    is_inferior,
    is_seen,
    next_uidvalidity,
    storable_flags,
)
from mailbox_store.tables import AccountRow, EnvelopeRow, FolderRow, KeySlotRow, MessageRow
from messaging.errors import AlreadyExists, NotFound, RuleViolation, Unavailable
from messaging.types import (
    Address,
    BlobRef,
    Changes,
    Delivery,
    FlagMode,
    FlagUpdate,
    FolderRecord,
    FolderRole,
    MessageKind,
    MessageRecord,
    Placement,
    Provenance,
)

if TYPE_CHECKING:
    from messaging.ports import Clock

__all__ = ["SqlImapState", "named_targets", "placement_target"]

_IN_LIST_MAX = 500
"""Up to this many UIDs are asked with ``IN``; more with a range scan filtered here."""
_MAX_UID = 0xFFFF_FFFF
_MAX_MODSEQ = 0x7FFF_FFFF_FFFF_FFFF
"""UIDs are 32-bit, MODSEQs 63-bit (RFC 7162 §7): a client's larger number matches nothing
rather than overflowing a BIGINT."""
_CHUNK = 5_000
"""Bound parameters per statement (SQLite and asyncpg both cap them near 32,767)."""

_RECORD_COLUMNS = (
    MessageRow.id,
    MessageRow.uid,
    MessageRow.modseq,
    MessageRow.flags,
    MessageRow.internal_date,
    MessageRow.envelope_id,
    EnvelopeRow.thread_id,
    EnvelopeRow.kind,
    EnvelopeRow.sender,
    EnvelopeRow.provenance,
    EnvelopeRow.date,
    EnvelopeRow.plaintext_size,
    EnvelopeRow.blob_digest,
    EnvelopeRow.blob_size,
)


class _Folder(NamedTuple):
    id: int
    account_id: int
    name: str
    role: str | None
    uidvalidity: int
    uidnext: int
    highestmodseq: int


def placement_target(placement: Placement) -> str:
    """The key :func:`named_targets` and role lookups share: a role, or ``name:<folder>``."""
    if isinstance(placement.folder, FolderRole):
        return placement.folder.value
    return "name:" + canonical_folder_name(placement.folder)


async def named_targets(
    connection: AsyncConnection, deliveries: Sequence[Delivery]
) -> dict[tuple[str, str | None], tuple[int, str]]:
    """Folders named by placements (APPEND): ``(account key, target) → (id, name)``."""
    wanted = {
        (address_key(p.account), canonical_folder_name(p.folder))
        for d in deliveries
        for p in d.placements
        if not isinstance(p.folder, FolderRole)
    }
    if not wanted:
        return {}
    rows = await connection.execute(
        select(AccountRow.address, FolderRow.name, FolderRow.id)
        .join(FolderRow, FolderRow.account_id == AccountRow.id)
        .where(
            AccountRow.address.in_({key for key, _ in wanted}),
            FolderRow.name.in_({name for _, name in wanted}),
        )
    )
    return {(key, "name:" + name): (folder_id, name) for key, name, folder_id in rows}


def _records_query(folder_id: int) -> Select[*tuple[Any, ...]]:
    return (
        select(*_RECORD_COLUMNS)
        .select_from(MessageRow)
        .join(EnvelopeRow, EnvelopeRow.envelope_id == MessageRow.envelope_id)
        .where(MessageRow.folder_id == folder_id)
        .order_by(MessageRow.uid)
    )


class _Records:
    """Turns rows of :data:`_RECORD_COLUMNS` into records for one folder.

    A folder of 10,000 messages has a handful of senders and flag sets: each is parsed once
    per call, and rows are unpacked positionally, which keeps a large FETCH cheap.
    """

    def __init__(self, folder: str) -> None:
        self._folder = folder
        self._flags: dict[str, frozenset[str]] = {}
        self._senders: dict[str, Address] = {}

    def __call__(
        self,
        row: Row[*tuple[Any, ...]],
        new_flags: frozenset[str] | None = None,
        new_modseq: int = 0,
    ) -> MessageRecord:
        """The record of ``row``; with ``new_flags``, as a STORE just left it."""
        (
            _id,
            uid,
            modseq,
            flags,
            internal_date,
            envelope_id,
            thread_id,
            kind,
            sender,
            provenance,
            date,
            plaintext_size,
            digest,
            size,
        ) = row
        parsed = self._flags.get(flags)
        if parsed is None:
            parsed = self._flags[flags] = flags_from_text(flags)
        who = self._senders.get(sender)
        if who is None:
            who = self._senders[sender] = address_from_key(sender)
        if new_flags is not None:
            parsed, modseq = new_flags, new_modseq
        return MessageRecord(
            self._folder,
            uid,
            modseq,
            parsed,
            internal_date,
            envelope_id,
            thread_id,
            _KINDS[kind],
            who,
            _PROVENANCES[provenance],
            date,
            plaintext_size,
            BlobRef(digest, size),
        )


_KINDS = {kind.value: kind for kind in MessageKind}
_PROVENANCES = {provenance.value: provenance for provenance in Provenance}


def _uid_filter(uids: Sequence[int]) -> tuple[Any, set[int] | None]:
    """A WHERE clause selecting ``uids``, and the set to filter rows with (range scans)."""
    wanted = sorted({uid for uid in uids if 0 < uid <= _MAX_UID})
    if len(wanted) <= _IN_LIST_MAX:
        return MessageRow.uid.in_(wanted), None
    return MessageRow.uid.between(wanted[0], wanted[-1]), set(wanted)


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


class SqlImapState:
    """The IMAP state methods of :class:`~mailbox_store.sql.SqlMailboxStore`."""

    # Provided by SqlMailboxStore.
    _engine: AsyncEngine
    _writer: AsyncEngine
    _clock: Clock
    _closed: bool
    _feed: SqlChangeFeed

    # -- plumbing -----------------------------------------------------------------------

    @asynccontextmanager
    async def _state_reading(self) -> AsyncIterator[AsyncConnection]:
        if self._closed:
            raise Unavailable("the mailbox store is closed")
        async with engines.translate_errors(), self._engine.connect() as connection:
            yield connection

    @asynccontextmanager
    async def _state_writing(self) -> AsyncIterator[AsyncConnection]:
        if self._closed:
            raise Unavailable("the mailbox store is closed")
        async with engines.translate_errors(), self._writer.begin() as connection:
            yield connection

    @staticmethod
    async def _folders(
        connection: AsyncConnection, address: Address, names: Iterable[str], *, lock: bool
    ) -> dict[str, _Folder]:
        """The named folders of ``address`` by canonical name; locked in id order."""
        wanted = {canonical_folder_name(name) for name in names}
        query = (
            select(
                FolderRow.id,
                FolderRow.account_id,
                FolderRow.name,
                FolderRow.role,
                FolderRow.uidvalidity,
                FolderRow.uidnext,
                FolderRow.highestmodseq,
            )
            .join(AccountRow, AccountRow.id == FolderRow.account_id)
            .where(AccountRow.address == address_key(address), FolderRow.name.in_(wanted))
            .order_by(FolderRow.id)
        )
        if lock:
            query = query.with_for_update(of=FolderRow)
        rows = (await connection.execute(query)).all()
        found = {row.name: _Folder(*row) for row in rows}
        for name in wanted:
            if name not in found:
                raise NotFound(f"{address} has no folder {name!r}")
        return found

    async def _folder(
        self, connection: AsyncConnection, address: Address, name: str, *, lock: bool = False
    ) -> _Folder:
        found = await self._folders(connection, address, [name], lock=lock)
        return found[canonical_folder_name(name)]

    @staticmethod
    async def _next_modseq(connection: AsyncConnection, folder_id: int, uids: int = 0) -> int:
        """Take the folder's next MODSEQ (and ``uids`` UIDs); return that MODSEQ."""
        return (
            await connection.execute(
                update(FolderRow)
                .where(FolderRow.id == folder_id)
                .values(highestmodseq=FolderRow.highestmodseq + 1, uidnext=FolderRow.uidnext + uids)
                .returning(FolderRow.highestmodseq)
            )
        ).scalar_one()

    async def _commit_changes(
        self, connection: AsyncConnection, changes: list[tuple[str, str]]
    ) -> None:
        await self._feed.notify_in(connection, changes)

    def watch(self, address: Address) -> Subscription:
        if self._closed:
            raise Unavailable("the mailbox store is closed")
        return self._feed.watch(address_key(address))

    # -- folders ------------------------------------------------------------------------

    async def folder_status(self, address: Address, folder: str) -> FolderRecord:
        name = canonical_folder_name(folder)
        unseen = func.coalesce(func.sum(case((MessageRow.seen.is_(False), 1), else_=0)), 0)
        subscribed = (
            exists()
            .where(
                SubscriptionRow.account_id == FolderRow.account_id,
                SubscriptionRow.name == FolderRow.name,
            )
            .correlate(FolderRow)
        )
        query = (
            select(
                FolderRow.role,
                FolderRow.uidvalidity,
                FolderRow.uidnext,
                FolderRow.highestmodseq,
                func.count(MessageRow.id),
                unseen,
                subscribed,
            )
            .select_from(FolderRow)
            .join(AccountRow, AccountRow.id == FolderRow.account_id)
            .outerjoin(MessageRow, MessageRow.folder_id == FolderRow.id)
            .where(AccountRow.address == address_key(address), FolderRow.name == name)
            .group_by(
                FolderRow.id,
                FolderRow.account_id,
                FolderRow.name,
                FolderRow.role,
                FolderRow.uidvalidity,
                FolderRow.uidnext,
                FolderRow.highestmodseq,
            )
        )
        async with self._state_reading() as connection:
            row = (await connection.execute(query)).first()
        if row is None:
            raise NotFound(f"{address} has no folder {folder!r}")
        role, uidvalidity, uidnext, highestmodseq, count, unseen_count, is_subscribed = row
        return FolderRecord(
            name=name,
            role=None if role is None else FolderRole(role),
            uidvalidity=uidvalidity,
            uidnext=uidnext,
            highestmodseq=highestmodseq,
            messages=int(count),
            unseen=int(unseen_count),
            subscribed=bool(is_subscribed),
        )

    async def _account_id_of(self, connection: AsyncConnection, address: Address) -> int:
        found = (
            await connection.execute(
                select(AccountRow.id).where(AccountRow.address == address_key(address))
            )
        ).scalar_one_or_none()
        if found is None:
            raise NotFound(f"no mailbox {address}")
        return int(found)

    async def _new_folder(self, connection: AsyncConnection, account_id: int, name: str) -> int:
        """Insert an empty folder with a fresh UIDVALIDITY; return its id."""
        floor = (
            await connection.execute(
                select(
                    func.max(FolderRow.uidvalidity),
                    select(UidValidityFloorRow.uidvalidity)
                    .where(UidValidityFloorRow.account_id == account_id)
                    .scalar_subquery(),
                ).where(FolderRow.account_id == account_id)
            )
        ).one()
        uidvalidity = next_uidvalidity(self._clock.now(), max(int(v or 0) for v in floor))
        dialect_insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
        upsert = dialect_insert(UidValidityFloorRow).values(
            account_id=account_id, uidvalidity=uidvalidity
        )
        await connection.execute(
            upsert.on_conflict_do_update(
                index_elements=[UidValidityFloorRow.account_id],
                set_={
                    "uidvalidity": case(
                        (
                            upsert.excluded.uidvalidity > UidValidityFloorRow.uidvalidity,
                            upsert.excluded.uidvalidity,
                        ),
                        else_=UidValidityFloorRow.uidvalidity,
                    )
                },
            )
        )
        return int(
            (
                await connection.execute(
                    insert(FolderRow).returning(FolderRow.id),
                    {
                        "account_id": account_id,
                        "name": name,
                        "role": None,
                        "uidvalidity": uidvalidity,
                        "uidnext": 1,
                        "highestmodseq": 0,
                    },
                )
            ).scalar_one()
        )

    async def create_folder(self, address: Address, name: str) -> FolderRecord:
        check_folder_name(name)
        name = canonical_folder_name(name)
        try:
            async with self._state_writing() as connection:
                account_id = await self._account_id_of(connection, address)
                taken = (
                    await connection.execute(
                        select(FolderRow.id).where(
                            FolderRow.account_id == account_id, FolderRow.name == name
                        )
                    )
                ).first()
                if taken is not None:
                    raise AlreadyExists(f"{address} already has a folder {name!r}")
                await self._new_folder(connection, account_id, name)
                await self._commit_changes(connection, [(address_key(address), ANY)])
        except IntegrityError as error:  # created by another process meanwhile
            raise AlreadyExists(f"{address} already has a folder {name!r}") from error
        self._feed.committed([(address_key(address), ANY)])
        return await self.folder_status(address, name)

    async def rename_folder(self, address: Address, old: str, new: str) -> None:
        check_folder_name(new)
        old, new = canonical_folder_name(old), canonical_folder_name(new)
        if new == old or is_inferior(new, old):
            raise RuleViolation("folder-hierarchy", f"cannot rename {old!r} to {new!r}")
        key = address_key(address)
        try:
            async with self._state_writing() as connection:
                account_id = await self._account_id_of(connection, address)
                rows = (
                    await connection.execute(
                        select(FolderRow.id, FolderRow.name)
                        .where(FolderRow.account_id == account_id)
                        .order_by(FolderRow.id)
                        .with_for_update()
                    )
                ).all()
                names = {name: folder_id for folder_id, name in rows}
                if old not in names:
                    raise NotFound(f"{address} has no folder {old!r}")
                if old == "INBOX":
                    # RFC 3501 §6.3.5: a new folder gets INBOX's messages; INBOX stays.
                    if new in names:
                        raise AlreadyExists(f"{address} already has a folder {new!r}")
                    target = await self._new_folder(connection, account_id, new)
                    await self._move_all(connection, names[old], target)
                else:
                    moving = {
                        name: new + name[len(old) :]
                        for name in names
                        if name == old or is_inferior(name, old)
                    }
                    clash = sorted(set(moving.values()) & set(names))
                    if clash:
                        raise AlreadyExists(f"{address} already has a folder {clash[0]!r}")
                    for before, after in moving.items():
                        check_folder_name(after)
                        await connection.execute(
                            update(FolderRow)
                            .where(FolderRow.id == names[before])
                            .values(name=after)
                        )
                    await self._rename_subscriptions(connection, account_id, moving)
                await self._commit_changes(connection, [(key, ANY)])
        except IntegrityError as error:
            raise AlreadyExists(f"{address} already has a folder {new!r}") from error
        self._feed.committed([(key, ANY)])

    @staticmethod
    async def _rename_subscriptions(
        connection: AsyncConnection, account_id: int, moving: dict[str, str]
    ) -> None:
        subscribed = set(
            (
                await connection.execute(
                    select(SubscriptionRow.name).where(
                        SubscriptionRow.account_id == account_id,
                        SubscriptionRow.name.in_(set(moving) | set(moving.values())),
                    )
                )
            ).scalars()
        )
        renamed = [name for name in moving if name in subscribed]
        if not renamed:
            return
        await connection.execute(
            delete(SubscriptionRow).where(
                SubscriptionRow.account_id == account_id, SubscriptionRow.name.in_(renamed)
            )
        )
        added = [
            {"account_id": account_id, "name": moving[name]}
            for name in renamed
            if moving[name] not in subscribed or moving[name] in renamed
        ]
        if added:
            await connection.execute(insert(SubscriptionRow), added)

    async def _move_all(self, connection: AsyncConnection, source: int, target: int) -> None:
        rows = (
            await connection.execute(
                select(MessageRow.id, MessageRow.uid)
                .where(MessageRow.folder_id == source)
                .order_by(MessageRow.uid)
            )
        ).all()
        if rows:
            await self._relocate(connection, source, target, [(i, u) for i, u in rows])

    async def _relocate(
        self,
        connection: AsyncConnection,
        source: int,
        target: int,
        rows: list[tuple[int, int]],
    ) -> list[tuple[int, int]]:
        """Move messages (``(id, uid)``, UID order) to ``target`` under new UIDs, leaving
        tombstones in ``source``; returns ``(old uid, new uid)`` pairs."""
        source_modseq = await self._next_modseq(connection, source)
        target_modseq = await self._next_modseq(connection, target, len(rows))
        uidnext = (
            await connection.execute(select(FolderRow.uidnext).where(FolderRow.id == target))
        ).scalar_one()
        first = uidnext - len(rows)
        pairs = [(uid, first + index) for index, (_, uid) in enumerate(rows)]
        await connection.execute(
            update(MessageRow)
            .where(MessageRow.id == bindparam("b_id"))
            .values(folder_id=target, uid=bindparam("b_uid"), modseq=target_modseq),
            [
                {"b_id": row_id, "b_uid": new}
                for (row_id, _), (_, new) in zip(rows, pairs, strict=True)
            ],
        )
        await connection.execute(
            insert(TombstoneRow),
            [{"folder_id": source, "uid": uid, "modseq": source_modseq} for _, uid in rows],
        )
        return pairs

    async def delete_folder(self, address: Address, name: str) -> None:
        key = address_key(address)
        async with self._state_writing() as connection:
            folder = await self._folder(connection, address, name, lock=True)
            if folder.role is not None:
                raise RuleViolation(
                    "folder-role", f"{folder.name!r} is the {folder.role} folder: it stays"
                )
            envelopes = list(
                (
                    await connection.execute(
                        select(MessageRow.envelope_id)
                        .where(MessageRow.folder_id == folder.id)
                        .distinct()
                    )
                ).scalars()
            )
            await connection.execute(delete(MessageRow).where(MessageRow.folder_id == folder.id))
            await connection.execute(
                delete(TombstoneRow).where(TombstoneRow.folder_id == folder.id)
            )
            await connection.execute(delete(FolderRow).where(FolderRow.id == folder.id))
            await self._drop_orphan_slots(connection, folder.account_id, envelopes)
            await self._commit_changes(connection, [(key, ANY)])
        self._feed.committed([(key, ANY)])

    @staticmethod
    async def _drop_orphan_slots(
        connection: AsyncConnection, account_id: int, envelopes: Sequence[str]
    ) -> None:
        """Delete the account's key slots of ``envelopes`` it no longer has a copy of."""
        still_held = (
            exists()
            .where(
                MessageRow.envelope_id == KeySlotRow.envelope_id,
                FolderRow.id == MessageRow.folder_id,
                FolderRow.account_id == account_id,
            )
            .correlate(KeySlotRow)
        )
        for chunk in _chunks(sorted(set(envelopes))):
            await connection.execute(
                delete(KeySlotRow).where(
                    KeySlotRow.account_id == account_id,
                    KeySlotRow.envelope_id.in_(chunk),
                    ~still_held,
                )
            )

    async def set_subscribed(self, address: Address, name: str, subscribed: bool) -> None:
        name = canonical_folder_name(name)
        async with self._state_writing() as connection:
            if subscribed:
                folder = await self._folder(connection, address, name)
                dialect_insert = (
                    pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
                )
                await connection.execute(
                    dialect_insert(SubscriptionRow)
                    .values(account_id=folder.account_id, name=name)
                    .on_conflict_do_nothing()
                )
            else:
                account_id = await self._account_id_of(connection, address)
                await connection.execute(
                    delete(SubscriptionRow).where(
                        SubscriptionRow.account_id == account_id, SubscriptionRow.name == name
                    )
                )

    async def list_subscriptions(self, address: Address) -> list[str]:
        async with self._state_reading() as connection:
            names = (
                await connection.execute(
                    select(SubscriptionRow.name)
                    .join(AccountRow, AccountRow.id == SubscriptionRow.account_id)
                    .where(AccountRow.address == address_key(address))
                    .order_by(SubscriptionRow.name)
                )
            ).scalars()
            return list(names)

    # -- messages -----------------------------------------------------------------------

    async def _folder_records(self, address: Address, folder: str) -> list[MessageRecord]:
        """Every message of a folder in UID order (``list_messages``, SELECT's UID map)."""
        async with self._state_reading() as connection:
            box = await self._folder(connection, address, folder)
            rows = (await connection.execute(_records_query(box.id))).all()
        return list(map(_Records(box.name), rows))

    async def fetch_records(
        self, address: Address, folder: str, uids: Sequence[int]
    ) -> list[MessageRecord]:
        where, keep = _uid_filter(uids)
        async with self._state_reading() as connection:
            box = await self._folder(connection, address, folder)
            if not uids:
                return []
            rows = (await connection.execute(_records_query(box.id).where(where))).all()
        record = _Records(box.name)
        return [record(row) for row in rows if keep is None or row.uid in keep]

    async def update_flags(
        self,
        address: Address,
        folder: str,
        uids: Sequence[int],
        mode: FlagMode,
        flags: frozenset[str],
        *,
        unchanged_since: int | None = None,
    ) -> FlagUpdate:
        wanted_flags = storable_flags(flags)
        mode = FlagMode(mode)
        if unchanged_since is not None:
            unchanged_since = min(max(unchanged_since, 0), _MAX_MODSEQ)
        where, keep = _uid_filter(uids)
        key = address_key(address)
        async with self._state_writing() as connection:
            box = await self._folder(connection, address, folder, lock=True)
            rows = [
                row
                for row in (await connection.execute(_records_query(box.id).where(where))).all()
                if keep is None or row.uid in keep
            ]
            failed: list[int] = []
            kept: list[tuple[Row[Any], frozenset[str] | None]] = []
            outcomes: dict[str, frozenset[str] | None] = {}  # stored text → flags after
            for row in rows:
                if unchanged_since is not None and row.modseq > unchanged_since:
                    failed.append(row.uid)
                    continue
                if row.flags not in outcomes:
                    current = flags_from_text(row.flags)
                    after = apply_flags(current, mode.value, wanted_flags)
                    outcomes[row.flags] = None if after == current else after
                kept.append((row, outcomes[row.flags]))
            changed = [(row, after) for row, after in kept if after is not None]
            modseq = 0
            if changed:
                modseq = await self._next_modseq(connection, box.id)
                # A STORE leaves few distinct flag sets: one UPDATE … WHERE id IN per set.
                by_flags: dict[frozenset[str], list[int]] = {}
                for row, after in changed:
                    if after is not None:
                        by_flags.setdefault(after, []).append(row.id)
                for after, ids in by_flags.items():
                    for chunk in _chunks(ids):
                        await connection.execute(
                            update(MessageRow)
                            .where(MessageRow.id.in_(chunk))
                            .values(flags=flags_to_text(after), seen=is_seen(after), modseq=modseq)
                        )
                await self._commit_changes(connection, [(key, box.name)])
        if changed:
            self._feed.committed([(key, box.name)])
        record = _Records(box.name)
        updated = [record(row, after, modseq) for row, after in kept]
        return FlagUpdate(updated=updated, failed=failed)

    async def expunge(
        self, address: Address, folder: str, uids: Sequence[int] | None = None
    ) -> list[int]:
        key = address_key(address)
        async with self._state_writing() as connection:
            box = await self._folder(connection, address, folder, lock=True)
            query = select(
                MessageRow.id, MessageRow.uid, MessageRow.flags, MessageRow.envelope_id
            ).where(
                MessageRow.folder_id == box.id,
                func.lower(MessageRow.flags).contains("\\deleted", autoescape=True),
            )
            keep: set[int] | None = None
            if uids is not None:
                where, keep = _uid_filter(uids)
                query = query.where(where)
            rows = [
                row
                for row in (await connection.execute(query.order_by(MessageRow.uid))).all()
                if is_deleted(flags_from_text(row.flags)) and (keep is None or row.uid in keep)
            ]
            if not rows:
                return []
            modseq = await self._next_modseq(connection, box.id)
            for chunk in _chunks(rows):
                await connection.execute(
                    delete(MessageRow).where(MessageRow.id.in_([row.id for row in chunk]))
                )
            await connection.execute(
                insert(TombstoneRow),
                [{"folder_id": box.id, "uid": row.uid, "modseq": modseq} for row in rows],
            )
            await self._drop_orphan_slots(
                connection, box.account_id, [row.envelope_id for row in rows]
            )
            await self._commit_changes(connection, [(key, box.name)])
        self._feed.committed([(key, box.name)])
        return [row.uid for row in rows]

    async def copy_messages(
        self, address: Address, source: str, uids: Sequence[int], target: str
    ) -> list[tuple[int, int]]:
        return await self._transfer(address, source, uids, target, move=False)

    async def move_messages(
        self, address: Address, source: str, uids: Sequence[int], target: str
    ) -> list[tuple[int, int]]:
        return await self._transfer(address, source, uids, target, move=True)

    async def _transfer(
        self, address: Address, source: str, uids: Sequence[int], target: str, *, move: bool
    ) -> list[tuple[int, int]]:
        key = address_key(address)
        where, keep = _uid_filter(uids)
        async with self._state_writing() as connection:
            boxes = await self._folders(connection, address, [source, target], lock=True)
            src = boxes[canonical_folder_name(source)]
            dst = boxes[canonical_folder_name(target)]
            rows = [
                row
                for row in (
                    await connection.execute(
                        select(
                            MessageRow.id,
                            MessageRow.uid,
                            MessageRow.flags,
                            MessageRow.seen,
                            MessageRow.internal_date,
                            MessageRow.envelope_id,
                        )
                        .where(MessageRow.folder_id == src.id, where)
                        .order_by(MessageRow.uid)
                    )
                ).all()
                if keep is None or row.uid in keep
            ]
            if not rows:
                return []
            if move:
                pairs = await self._relocate(
                    connection, src.id, dst.id, [(row.id, row.uid) for row in rows]
                )
                changes = [(key, src.name), (key, dst.name)]
            else:
                modseq = await self._next_modseq(connection, dst.id, len(rows))
                first = (
                    await connection.execute(
                        select(FolderRow.uidnext).where(FolderRow.id == dst.id)
                    )
                ).scalar_one() - len(rows)
                pairs = [(row.uid, first + index) for index, row in enumerate(rows)]
                await connection.execute(
                    insert(MessageRow),
                    [
                        {
                            "folder_id": dst.id,
                            "uid": new,
                            "modseq": modseq,
                            "flags": row.flags,
                            "seen": row.seen,
                            "internal_date": row.internal_date,
                            "envelope_id": row.envelope_id,
                        }
                        for row, (_, new) in zip(rows, pairs, strict=True)
                    ],
                )
                changes = [(key, dst.name)]
            await self._commit_changes(connection, changes)
        self._feed.committed(changes)
        return pairs

    async def changes_since(self, address: Address, folder: str, modseq: int) -> Changes:
        modseq = min(max(modseq, 0), _MAX_MODSEQ)
        async with self._state_reading() as connection:
            box = await self._folder(connection, address, folder)
            rows = (
                await connection.execute(_records_query(box.id).where(MessageRow.modseq > modseq))
            ).all()
            vanished = (
                await connection.execute(
                    select(TombstoneRow.uid)
                    .where(TombstoneRow.folder_id == box.id, TombstoneRow.modseq > modseq)
                    .order_by(TombstoneRow.uid)
                )
            ).scalars()
            return Changes(
                records=list(map(_Records(box.name), rows)),
                vanished=list(vanished),
                highestmodseq=box.highestmodseq,
                uidvalidity=box.uidvalidity,
            )

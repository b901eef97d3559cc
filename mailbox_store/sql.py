"""``SqlMailboxStore``: the :class:`~messaging.ports.MailboxStore` over SQLAlchemy 2 async.

SQLite (WAL, ``synchronous=FULL``) is the embedded default, PostgreSQL through asyncpg the
production engine; :meth:`SqlMailboxStore.open` migrates the schema to head first.

Implementation notes (the invariants):

- **Durability.** Every write is one transaction; a coroutine returns only after its
  COMMIT, and a COMMIT is durable (see :mod:`mailbox_store.engine`). Deliveries go through
  the :class:`~mailbox_store.group_commit.GroupCommitter`: concurrent deliveries share one
  transaction and one flush, each caller still returns only after that commit.
- **Atomicity.** A delivery writes its envelope, its recipients, one message per
  placement, one key slot per (envelope, account) and its trace lines in the same
  transaction. A placement for an unknown account refuses the delivery
  (``UnknownMailbox``) before any of its rows is written; a closed account refuses it too
  (``MailboxClosed``). An envelope id already stored is refused (``InvalidMessage``).
- **UIDs and MODSEQs** (RFC 3501 §2.3.1.1, RFC 7162 §3.1). A transaction reserves ``k``
  UIDs of a folder with one ``UPDATE folders SET uidnext = uidnext + k, highestmodseq =
  highestmodseq + k … RETURNING``. The row lock that UPDATE takes is held until COMMIT, so
  on PostgreSQL shared by several processes two transactions never get the same UID, and
  the one holding the smaller UIDs commits first: a reader never sees UID n+1 before UID
  n. Folders are locked in id order, so concurrent transactions cannot deadlock. Each
  appended message and each flag change takes the next MODSEQ of its folder.
- **Errors.** Anything that means "the database cannot be used now" (unreachable,
  locked past ``busy_timeout``, shutting down, out of space) becomes ``Unavailable``.
- **Secrets of revoked credentials.** A revoked or replaced credential keeps its row for
  the audit trail (id, kind, label, times) but its salt, authentication hash and sealed
  key bundle are erased: an old passphrase must not open a copy of the database.
- The event loop never blocks: statements run on async drivers, migration files are
  loaded in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, and_, case, exists, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mailbox_store import engine as engines
from mailbox_store.batch_sql import SqlBatchReads
from mailbox_store.blobs import FileBlobStore
from mailbox_store.changes import SqlChangeFeed
from mailbox_store.group_commit import CommitStats, GroupCommitter
from mailbox_store.imap_sql import SqlImapState, named_targets, placement_target
from mailbox_store.imap_tables import SubscriptionRow
from mailbox_store.invariants import (
    DEFAULT_FOLDERS,
    SystemClock,
    address_from_key,
    address_key,
    canonical_folder_name,
    check_aware,
    check_credentials,
    check_delivery,
    check_flags,
    flags_from_text,
    flags_to_text,
    is_seen,
    uidvalidity_at,
)
from mailbox_store.migrate import upgrade
from mailbox_store.outbound_sql import (
    SqlOutboundQueue,
    delivered_before,
    insert_outbound,
    received_id_rows,
)
from mailbox_store.outbound_tables import ReceivedIdRow
from mailbox_store.patient_sql import SqlPatientStore, write_effects
from mailbox_store.tables import (
    AccountRow,
    CredentialRow,
    EnvelopeRecipientRow,
    EnvelopeRow,
    FolderRow,
    InlineBlobRow,
    KeySlotRow,
    MessageRow,
    TraceRow,
)
from mailbox_store.tiered import TieredBlobStore
from messaging.errors import (
    AccountExists,
    InvalidMessage,
    MailboxClosed,
    NotFound,
    Unavailable,
    UnknownMailbox,
)
from messaging.ports import Clock
from messaging.types import (
    AccountRecord,
    Address,
    BlobRef,
    Credential,
    CredentialKind,
    Delivery,
    FolderRecord,
    FolderRole,
    MailboxKind,
    MessageKind,
    MessageRecord,
    PlacedMessage,
    Placement,
    Provenance,
    StoredMessage,
    TraceEntry,
)

if TYPE_CHECKING:  # imported when asked for: it imports this package's tables
    from mailbox_store.api_state import SqlApiState

__all__ = ["SqlMailboxStore"]

_Outcome = list[PlacedMessage] | Exception

_MESSAGE_COLUMNS = (
    FolderRow.name,
    MessageRow.uid,
    MessageRow.modseq,
    MessageRow.flags,
    MessageRow.internal_date,
    EnvelopeRow.envelope_id,
    EnvelopeRow.thread_id,
    EnvelopeRow.kind,
    EnvelopeRow.sender,
    EnvelopeRow.provenance,
    EnvelopeRow.date,
    EnvelopeRow.plaintext_size,
    EnvelopeRow.blob_digest,
    EnvelopeRow.blob_size,
)


def _messages_of(address: Address) -> Select[*tuple[Any, ...]]:
    """Messages of one account with their routing fields (key slot joined)."""
    return (
        select(*_MESSAGE_COLUMNS, KeySlotRow.slot)
        .select_from(MessageRow)
        .join(FolderRow, FolderRow.id == MessageRow.folder_id)
        .join(AccountRow, AccountRow.id == FolderRow.account_id)
        .join(EnvelopeRow, EnvelopeRow.envelope_id == MessageRow.envelope_id)
        .join(
            KeySlotRow,
            and_(
                KeySlotRow.envelope_id == MessageRow.envelope_id,
                KeySlotRow.account_id == AccountRow.id,
            ),
        )
        .where(AccountRow.address == address_key(address))
    )


def _message_record(row: Row[*tuple[Any, ...]]) -> MessageRecord:
    return MessageRecord(
        folder=row.name,
        uid=row.uid,
        modseq=row.modseq,
        flags=flags_from_text(row.flags),
        internal_date=row.internal_date,
        envelope_id=row.envelope_id,
        thread_id=row.thread_id,
        kind=MessageKind(row.kind),
        sender=address_from_key(row.sender),
        provenance=Provenance(row.provenance),
        date=row.date,
        plaintext_size=row.plaintext_size,
        blob=BlobRef(row.blob_digest, row.blob_size),
    )


def _account_record(row: Row[*tuple[Any, ...]]) -> AccountRecord:
    return AccountRecord(
        address=address_from_key(row.address),
        kind=MailboxKind(row.kind),
        display_name=row.display_name,
        encryption_key=row.encryption_key,
        signing_key=row.signing_key,
        created_at=row.created_at,
        closed_at=row.closed_at,
    )


def _credential_record(row: Row[*tuple[Any, ...]]) -> Credential:
    return Credential(
        id=row.id,
        kind=CredentialKind(row.kind),
        label=row.label,
        salt=row.salt,
        opslimit=row.opslimit,
        memlimit=row.memlimit,
        auth_hash=row.auth_hash,
        sealed_bundle=row.sealed_bundle,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
    )


def _credential_values(account_id: int, credential: Credential) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "id": credential.id,
        "kind": credential.kind.value,
        "label": credential.label,
        "salt": credential.salt,
        "opslimit": credential.opslimit,
        "memlimit": credential.memlimit,
        "auth_hash": credential.auth_hash,
        "sealed_bundle": credential.sealed_bundle,
        "created_at": credential.created_at,
        "last_used_at": credential.last_used_at,
        "revoked_at": None,
    }


def _revocation(at: datetime) -> dict[str, Any]:
    """What revoking a credential writes: the time, and the secret material erased."""
    return {"revoked_at": at, "salt": b"", "auth_hash": b"", "sealed_bundle": b""}


class SqlMailboxStore(SqlBatchReads, SqlImapState):
    """The mailbox store on SQLite or PostgreSQL. Make one with :meth:`open`."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Clock,
        group_commit_max: int,
        blob_dir: Path | None = None,
        inline_blob_max: int = 64 * 1024,
        watch_poll_interval: float = 0.25,
    ) -> None:
        self._engine = engine
        self._feed = SqlChangeFeed(engine, poll_interval=watch_poll_interval)
        self._blobs = (
            None
            if blob_dir is None
            else TieredBlobStore(
                FileBlobStore(blob_dir),
                inline_max=inline_blob_max,
                fetch=self._fetch_inline,
                loop=asyncio.get_running_loop(),
            )
        )
        dialect_insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
        # Equal bytes have equal digests: a second copy is simply not needed.
        self._insert_inline = dialect_insert(InlineBlobRow).on_conflict_do_nothing()
        self._writer = engine.execution_options(**engines.WRITE)
        self._clock = clock
        self._closed = False
        self._committer: GroupCommitter[Delivery, list[PlacedMessage]] = GroupCommitter(
            self._commit_group, self._commit_one, max_group=group_commit_max
        )
        self._patients = SqlPatientStore(self._reading, self._writing)
        self.outbound = SqlOutboundQueue(engine)
        """The outbound queue, on this database; :meth:`deliver` writes into it too."""

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        group_commit_max: int = 64,
        pool_size: int = 10,
        clock: Clock | None = None,
        blob_dir: Path | None = None,
        inline_blob_max: int = 64 * 1024,
        watch_poll_interval: float = 0.25,
    ) -> SqlMailboxStore:
        """Connect to ``url``, migrate the schema to head, and return the store.

        ``url`` is ``sqlite+aiosqlite:///path/pli.db`` or ``postgresql+asyncpg://…``.
        With ``blob_dir``, :attr:`blobs` is the store's blob store: blobs of at most
        ``inline_blob_max`` bytes are committed in the database with their delivery,
        larger ones are files under ``blob_dir`` (see :mod:`mailbox_store.tiered`).
        Raises ``Unavailable`` when the database cannot be reached. On SQLite,
        :meth:`watch` reads the watched folders every ``watch_poll_interval`` seconds.
        """
        engine = engines.create_engine(url, pool_size=pool_size)
        try:
            async with engines.translate_errors():
                await upgrade(engine)
        except BaseException:
            await engine.dispose()
            raise
        return cls(
            engine,
            clock=clock or SystemClock(),
            group_commit_max=group_commit_max,
            blob_dir=blob_dir,
            inline_blob_max=inline_blob_max,
            watch_poll_interval=watch_poll_interval,
        )

    @property
    def blobs(self) -> TieredBlobStore:
        """The blob store that goes with this store (needs ``blob_dir`` at open)."""
        if self._blobs is None:
            raise RuntimeError("this store was opened without a blob directory")
        return self._blobs

    async def _fetch_inline(self, digest: str) -> bytes | None:
        async with self._reading() as connection:
            found = await connection.execute(
                select(InlineBlobRow.data).where(InlineBlobRow.digest == digest)
            )
            return found.scalar_one_or_none()

    def _inline_rows(self, deliveries: Iterable[Delivery]) -> list[dict[str, Any]]:
        if self._blobs is None:
            return []
        rows = []
        for delivery in deliveries:
            data = self._blobs.pending(delivery.blob)
            if data is not None:
                rows.append({"digest": delivery.blob.digest, "data": data})
        return rows

    def api_state(self) -> SqlApiState:
        """The application API's state, in this store's database (``api_state.py``)."""
        from mailbox_store.api_state import SqlApiState

        # One per store: its writes are batched (one group commit), closed with the store.
        found: SqlApiState | None = getattr(self, "_api_state", None)
        if found is None:
            found = self._api_state = SqlApiState(self._engine)
        return found

    @property
    def patients(self) -> SqlPatientStore:
        """The patient side of this store (:class:`~messaging.patient_ports.PatientStore`)."""
        return self._patients

    @property
    def stats(self) -> CommitStats:
        """Group-commit counters: delivery transactions, deliveries, fallbacks…"""
        return self._committer.stats

    async def close(self) -> None:
        """Stop accepting work, finish the deliveries queued or in flight, then disconnect."""
        if self._closed:
            return
        self._closed = True
        try:
            api_state: SqlApiState | None = getattr(self, "_api_state", None)
            if api_state is not None:
                await api_state.close()
            await self._committer.close()
            await self._feed.close()
        finally:
            await self._engine.dispose()

    # -- transactions -------------------------------------------------------------------

    def _ensure_open(self) -> None:
        if self._closed:
            raise Unavailable("the mailbox store is closed")

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncConnection]:
        self._ensure_open()
        async with engines.translate_errors(), self._engine.connect() as connection:
            yield connection

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on exit."""
        async with engines.translate_errors(), self._writer.begin() as connection:
            yield connection

    @staticmethod
    async def _account_id(connection: AsyncConnection, address: Address) -> int | None:
        result = await connection.execute(
            select(AccountRow.id).where(AccountRow.address == address_key(address))
        )
        return result.scalar_one_or_none()

    # -- accounts and credentials -------------------------------------------------------

    async def create_account(
        self, account: AccountRecord, credentials: Sequence[Credential]
    ) -> None:
        check_aware(account.created_at, account.closed_at)
        check_credentials(credentials)
        self._ensure_open()
        uidvalidity = uidvalidity_at(self._clock.now())
        try:
            async with self._writing() as connection:
                result = await connection.execute(
                    insert(AccountRow).returning(AccountRow.id),
                    {
                        "address": address_key(account.address),
                        "kind": account.kind.value,
                        "display_name": account.display_name,
                        "encryption_key": account.encryption_key,
                        "signing_key": account.signing_key,
                        "created_at": account.created_at,
                        "closed_at": account.closed_at,
                    },
                )
                account_id = result.scalar_one()
                await connection.execute(
                    insert(FolderRow),
                    [
                        {
                            "account_id": account_id,
                            "name": name,
                            "role": role.value,
                            "uidvalidity": uidvalidity,
                            "uidnext": 1,
                            "highestmodseq": 0,
                        }
                        for name, role in DEFAULT_FOLDERS
                    ],
                )
                await connection.execute(  # default folders are subscribed (LSUB clients)
                    insert(SubscriptionRow),
                    [{"account_id": account_id, "name": name} for name, _ in DEFAULT_FOLDERS],
                )
                if credentials:
                    await connection.execute(
                        insert(CredentialRow),
                        [_credential_values(account_id, c) for c in credentials],
                    )
        except IntegrityError as error:
            raise AccountExists(f"{account.address} is taken") from error

    async def get_account(self, address: Address) -> AccountRecord | None:
        async with self._reading() as connection:
            result = await connection.execute(
                select(AccountRow.__table__).where(AccountRow.address == address_key(address))
            )
            row = result.one_or_none()
        return None if row is None else _account_record(row)

    async def list_accounts(self, kind: MailboxKind | None = None) -> list[AccountRecord]:
        query = select(AccountRow.__table__).order_by(AccountRow.address)
        if kind is not None:
            query = query.where(AccountRow.kind == kind.value)
        async with self._reading() as connection:
            rows = (await connection.execute(query)).all()
        return [_account_record(row) for row in rows]

    async def list_credentials(self, address: Address) -> list[Credential]:
        query = (
            select(CredentialRow.__table__)
            .join(AccountRow, AccountRow.id == CredentialRow.account_id)
            .where(AccountRow.address == address_key(address), CredentialRow.revoked_at.is_(None))
            .order_by(CredentialRow.created_at, CredentialRow.row_id)
        )
        async with self._reading() as connection:
            rows = (await connection.execute(query)).all()
        return [_credential_record(row) for row in rows]

    async def add_credential(self, address: Address, credential: Credential) -> None:
        await self.replace_credentials(address, (), (credential,))

    async def revoke_credential(self, address: Address, credential_id: str) -> None:
        self._ensure_open()
        now = self._clock.now()
        async with self._writing() as connection:
            account_id = await self._account_id(connection, address)
            if account_id is None or not await self._revoke(
                connection, account_id, [credential_id], now
            ):
                raise NotFound(f"{address} has no live credential {credential_id!r}")

    @staticmethod
    async def _revoke(
        connection: AsyncConnection, account_id: int, ids: Sequence[str], at: datetime
    ) -> bool:
        """Revoke every credential in ``ids``; False (and nothing kept) if one is not live."""
        wanted = set(ids)
        if not wanted:
            return True
        result = await connection.execute(
            update(CredentialRow)
            .where(
                CredentialRow.account_id == account_id,
                CredentialRow.id.in_(wanted),
                CredentialRow.revoked_at.is_(None),
            )
            .values(_revocation(at))
        )
        return result.rowcount == len(wanted)

    async def replace_credentials(
        self, address: Address, remove_ids: Sequence[str], add: Sequence[Credential]
    ) -> None:
        check_credentials(add)
        self._ensure_open()
        now = self._clock.now()
        try:
            async with self._writing() as connection:
                account_id = await self._account_id(connection, address)
                if account_id is None:
                    raise UnknownMailbox(f"no mailbox {address}")
                if not await self._revoke(connection, account_id, remove_ids, now):
                    # Raising rolls back the revocations already made: all or nothing.
                    raise NotFound(f"{address} lacks a live credential among {list(remove_ids)}")
                if add:
                    await connection.execute(
                        insert(CredentialRow), [_credential_values(account_id, c) for c in add]
                    )
        except IntegrityError as error:
            raise ValueError(f"{address} already has a credential with one of these ids") from error

    async def touch_credential(self, address: Address, credential_id: str, at: datetime) -> None:
        check_aware(at)
        self._ensure_open()
        async with self._writing() as connection:
            account_id = await self._account_id(connection, address)
            result = await connection.execute(
                update(CredentialRow)
                .where(
                    CredentialRow.account_id == account_id,
                    CredentialRow.id == credential_id,
                    CredentialRow.revoked_at.is_(None),
                )
                .values(last_used_at=at)
            )
            if account_id is None or result.rowcount != 1:
                raise NotFound(f"{address} has no live credential {credential_id!r}")

    # -- folders and messages -----------------------------------------------------------

    async def list_folders(self, address: Address) -> list[FolderRecord]:
        unseen = func.coalesce(func.sum(case((MessageRow.seen.is_(False), 1), else_=0)), 0)
        query = (
            select(
                FolderRow.name,
                FolderRow.role,
                FolderRow.uidvalidity,
                FolderRow.uidnext,
                FolderRow.highestmodseq,
                func.count(MessageRow.id),
                unseen,
                exists()
                .where(
                    SubscriptionRow.account_id == FolderRow.account_id,
                    SubscriptionRow.name == FolderRow.name,
                )
                .correlate(FolderRow),
            )
            .select_from(FolderRow)
            .join(AccountRow, AccountRow.id == FolderRow.account_id)
            .outerjoin(MessageRow, MessageRow.folder_id == FolderRow.id)
            .where(AccountRow.address == address_key(address))
            .group_by(
                FolderRow.id,
                FolderRow.name,
                FolderRow.role,
                FolderRow.uidvalidity,
                FolderRow.uidnext,
                FolderRow.highestmodseq,
                FolderRow.account_id,
            )
            .order_by(FolderRow.id)
        )
        async with self._reading() as connection:
            rows = (await connection.execute(query)).all()
        return [
            FolderRecord(
                name=name,
                role=None if role is None else FolderRole(role),
                uidvalidity=uidvalidity,
                uidnext=uidnext,
                highestmodseq=highestmodseq,
                messages=int(count),
                unseen=int(unseen_count),
                subscribed=bool(subscribed),
            )
            for (
                name,
                role,
                uidvalidity,
                uidnext,
                highestmodseq,
                count,
                unseen_count,
                subscribed,
            ) in rows
        ]

    async def list_messages(self, address: Address, folder: str) -> list[MessageRecord]:
        return await self._folder_records(address, folder)  # imap_sql: one fast query

    async def get_message(self, address: Address, folder: str, uid: int) -> StoredMessage:
        query = _messages_of(address).where(
            FolderRow.name == canonical_folder_name(folder), MessageRow.uid == uid
        )
        async with self._reading() as connection:
            row = (await connection.execute(query)).first()
        if row is None:
            raise NotFound(f"{address} has no message {uid} in {folder!r}")
        return StoredMessage(_message_record(row), row.slot)

    async def find_message(self, address: Address, envelope_id: str) -> StoredMessage:
        """The account's copy of the envelope; with several (sender to self), the first
        folder in creation order (INBOX before Sent), then the lowest UID."""
        query = (
            _messages_of(address)
            .where(MessageRow.envelope_id == envelope_id)
            .order_by(FolderRow.id, MessageRow.uid)
            .limit(1)
        )
        async with self._reading() as connection:
            row = (await connection.execute(query)).first()
        if row is None:
            raise NotFound(f"{address} has no copy of envelope {envelope_id!r}")
        return StoredMessage(_message_record(row), row.slot)

    async def set_flags(
        self, address: Address, folder: str, uid: int, flags: frozenset[str]
    ) -> MessageRecord:
        check_flags(flags)
        self._ensure_open()
        async with self._writing() as connection:
            found = (
                await connection.execute(
                    select(MessageRow.id, MessageRow.folder_id)
                    .join(FolderRow, FolderRow.id == MessageRow.folder_id)
                    .join(AccountRow, AccountRow.id == FolderRow.account_id)
                    .where(
                        AccountRow.address == address_key(address),
                        FolderRow.name == canonical_folder_name(folder),
                        MessageRow.uid == uid,
                    )
                )
            ).first()
            if found is None:
                raise NotFound(f"{address} has no message {uid} in {folder!r}")
            message_id, folder_id = found
            # Folder row first, as deliveries do: one lock order, no deadlock.
            modseq = (
                await connection.execute(
                    update(FolderRow)
                    .where(FolderRow.id == folder_id)
                    .values(highestmodseq=FolderRow.highestmodseq + 1)
                    .returning(FolderRow.highestmodseq)
                )
            ).scalar_one()
            await connection.execute(
                update(MessageRow)
                .where(MessageRow.id == message_id)
                .values(flags=flags_to_text(flags), seen=is_seen(flags), modseq=modseq)
            )
            row = (
                await connection.execute(_messages_of(address).where(MessageRow.id == message_id))
            ).one()
            await self._feed.notify_in(connection, [(address_key(address), row.name)])
        self._feed.committed([(address_key(address), row.name)])
        return _message_record(row)

    # -- deliveries ---------------------------------------------------------------------

    async def deliver(self, delivery: Delivery) -> list[PlacedMessage]:
        try:
            check_delivery(delivery)
            self._ensure_open()
            placed = await self._committer.submit(delivery)
            self._feed.committed((address_key(p.account), p.folder) for p in placed)
            return placed
        finally:
            if self._blobs is not None:
                self._blobs.release(delivery.blob)

    async def _commit_group(self, deliveries: Sequence[Delivery]) -> list[_Outcome]:
        async with self._writing() as connection:
            return await self._write_deliveries(connection, deliveries)

    async def _commit_one(self, delivery: Delivery) -> list[PlacedMessage]:
        try:
            async with self._writing() as connection:
                [outcome] = await self._write_deliveries(connection, [delivery])
        except IntegrityError as error:
            raise InvalidMessage(
                f"envelope {delivery.envelope_id!r} conflicts with stored data (delivered already?)"
            ) from error
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def _write_deliveries(
        self, connection: AsyncConnection, deliveries: Sequence[Delivery]
    ) -> list[_Outcome]:
        """Write ``deliveries`` in the current transaction; one outcome per delivery.

        A delivery with a placement for an unknown or closed account gets its error as its
        outcome and writes nothing; the others are written.
        """
        now = self._clock.now()
        keys = {address_key(p.account) for d in deliveries for p in d.placements}
        rows = (
            await connection.execute(
                select(
                    AccountRow.address,
                    AccountRow.id,
                    AccountRow.closed_at,
                    FolderRow.role,
                    FolderRow.id,
                    FolderRow.name,
                )
                .join(FolderRow, FolderRow.account_id == AccountRow.id)
                .where(AccountRow.address.in_(keys), FolderRow.role.is_not(None))
            )
        ).all()
        closed = {key for key, _, closed_at, *_ in rows if closed_at is not None}
        accounts = {key: account_id for key, account_id, *_ in rows}
        folders: dict[tuple[str, str | None], tuple[int, str]] = {
            (key, role): (folder_id, name) for key, _, _, role, folder_id, name in rows
        }
        folders.update(await named_targets(connection, deliveries))  # APPEND: by folder name

        outcomes: list[_Outcome] = []
        # (delivery, [(account key, account id, folder id, folder name, placement)])
        accepted: list[tuple[int, Delivery, list[tuple[str, int, int, str, Placement]]]] = []
        for index, delivery in enumerate(deliveries):
            targets: list[tuple[str, int, int, str, Placement]] = []
            refusal: Exception | None = None
            for placement in delivery.placements:
                key = address_key(placement.account)
                target = folders.get((key, placement_target(placement)))
                if key not in accounts:
                    refusal = UnknownMailbox(f"no mailbox {placement.account}")
                elif key in closed:
                    refusal = MailboxClosed(f"mailbox {placement.account} is closed")
                elif target is None:
                    refusal = NotFound(f"{placement.account} has no {placement.folder} folder")
                else:
                    targets.append((key, accounts[key], target[0], target[1], placement))
                    continue
                break
            outcomes.append(refusal if refusal is not None else [])
            if refusal is None:
                accepted.append((index, delivery, targets))
        if not accepted:
            return outcomes

        # Reserve UIDs and MODSEQs: one UPDATE per folder, in folder id order.
        wanted = Counter(
            folder_id for _, _, targets in accepted for _, _, folder_id, _, _ in targets
        )
        next_uid: dict[int, int] = {}
        next_modseq: dict[int, int] = {}
        for folder_id in sorted(wanted):
            count = wanted[folder_id]
            uidnext, highestmodseq = (
                await connection.execute(
                    update(FolderRow)
                    .where(FolderRow.id == folder_id)
                    .values(
                        uidnext=FolderRow.uidnext + count,
                        highestmodseq=FolderRow.highestmodseq + count,
                    )
                    .returning(FolderRow.uidnext, FolderRow.highestmodseq)
                )
            ).one()
            next_uid[folder_id] = uidnext - count
            next_modseq[folder_id] = highestmodseq - count + 1

        envelopes: list[dict[str, Any]] = []
        recipients: list[dict[str, Any]] = []
        messages: list[dict[str, Any]] = []
        slots: list[dict[str, Any]] = []
        traces: list[dict[str, Any]] = []
        for index, delivery, targets in accepted:
            envelopes.append(
                {
                    "envelope_id": delivery.envelope_id,
                    "thread_id": delivery.thread_id,
                    "kind": delivery.kind.value,
                    "sender": address_key(delivery.sender),
                    "provenance": delivery.provenance.value,
                    "date": delivery.date,
                    "plaintext_size": delivery.plaintext_size,
                    "blob_digest": delivery.blob.digest,
                    "blob_size": delivery.blob.size,
                    "created_at": now,
                }
            )
            recipients.extend(
                {"envelope_id": delivery.envelope_id, "position": position, "address": key}
                for position, key in enumerate(map(address_key, delivery.recipients))
            )
            placed: list[PlacedMessage] = []
            slotted: set[int] = set()
            for key, account_id, folder_id, folder_name, placement in targets:
                uid, modseq = next_uid[folder_id], next_modseq[folder_id]
                next_uid[folder_id], next_modseq[folder_id] = uid + 1, modseq + 1
                messages.append(
                    {
                        "folder_id": folder_id,
                        "uid": uid,
                        "modseq": modseq,
                        "flags": flags_to_text(placement.flags),
                        "seen": is_seen(placement.flags),
                        "internal_date": placement.internal_date or now,
                        "envelope_id": delivery.envelope_id,
                    }
                )
                if account_id not in slotted:  # one slot per account, the first given
                    slotted.add(account_id)
                    slots.append(
                        {
                            "envelope_id": delivery.envelope_id,
                            "account_id": account_id,
                            "slot": placement.slot,
                        }
                    )
                placed.append(PlacedMessage(address_from_key(key), folder_name, uid, modseq))
            traces.extend(
                {
                    "at": entry.at,
                    "actor": entry.actor,
                    "action": entry.action,
                    "subject": entry.subject,
                    "details": dict(entry.details),
                }
                for entry in delivery.trace
            )
            outcomes[index] = placed

        await connection.execute(insert(EnvelopeRow), envelopes)
        inline = self._inline_rows(delivery for _, delivery, _ in accepted)
        if inline:
            await connection.execute(self._insert_inline, inline)
        if recipients:
            await connection.execute(insert(EnvelopeRecipientRow), recipients)
        await connection.execute(insert(MessageRow), messages)
        await connection.execute(insert(KeySlotRow), slots)
        if traces:
            await connection.execute(insert(TraceRow), traces)
        effects = [d.patient for _, d, _ in accepted if d.patient is not None]
        if effects:  # threads, consent, history: committed with the messages
            await write_effects(connection, effects)
        await insert_outbound(connection, [m for _, d, _ in accepted for m in d.outbound])
        received = [row for _, d, _ in accepted for row in received_id_rows(d, now)]
        if received:
            await connection.execute(insert(ReceivedIdRow), received)
        await self._feed.notify_in(
            connection,
            (
                (address_key(p.account), p.folder)
                for outcome in outcomes
                if not isinstance(outcome, Exception)
                for p in outcome
            ),
        )
        return outcomes

    # -- trace --------------------------------------------------------------------------

    async def record_trace(self, entry: TraceEntry) -> None:
        check_aware(entry.at)
        self._ensure_open()
        async with self._writing() as connection:
            await connection.execute(
                insert(TraceRow),
                {
                    "at": entry.at,
                    "actor": entry.actor,
                    "action": entry.action,
                    "subject": entry.subject,
                    "details": dict(entry.details),
                },
            )

    async def delivered_before(
        self, message_id: str, recipients: Sequence[Address]
    ) -> set[Address]:
        async with self._reading() as connection:
            return await delivered_before(connection, message_id, recipients)

    async def list_trace(self, subject: str | None = None, limit: int = 100) -> list[TraceEntry]:
        query = (
            select(TraceRow.__table__)
            .order_by(TraceRow.at.desc(), TraceRow.id.desc())
            .limit(max(limit, 0))
        )
        if subject is not None:
            query = query.where(TraceRow.subject == subject)
        async with self._reading() as connection:
            rows = (await connection.execute(query)).all()
        return [
            TraceEntry(
                actor=row.actor,
                action=row.action,
                subject=row.subject,
                at=row.at,
                details=dict(row.details),
            )
            for row in rows
        ]

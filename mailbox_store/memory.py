"""``InMemoryMailboxStore``: the reference implementation of :class:`~messaging.ports.MailboxStore`.

Plain dictionaries, nothing durable: it exists so that every other package can test against
the port without a database, and it passes the same contract tests as the SQL store
(``tests/mailbox_store/test_contract.py``), so what it does is what the port means:
default folders and their roles, UIDVALIDITY, strictly increasing UIDs, one MODSEQ per
change, one key slot per (envelope, account), ``UnknownMailbox`` leaving nothing behind.

Atomicity comes from asyncio: a method checks everything first, then mutates without
awaiting, so no other coroutine ever sees half a write.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from mailbox_store.changes import ChangeHub
from mailbox_store.imap_memory import MemoryImapState
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
    is_seen,
    to_utc,
    uidvalidity_at,
)
from mailbox_store.outbound_memory import InMemoryOutboundQueue
from mailbox_store.patient_memory import InMemoryPatientStore
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
    Credential,
    Delivery,
    FolderRecord,
    FolderRole,
    MailboxKind,
    MessageRecord,
    PlacedMessage,
    StoredMessage,
    TraceEntry,
)

__all__ = ["InMemoryMailboxStore"]


@dataclass(slots=True)
class _Message:
    uid: int
    modseq: int
    flags: frozenset[str]
    internal_date: datetime
    envelope_id: str


@dataclass(slots=True)
class _Folder:
    name: str
    role: FolderRole | None
    uidvalidity: int
    uidnext: int = 1
    highestmodseq: int = 0
    messages: dict[int, _Message] = field(default_factory=dict)
    tombstones: dict[int, int] = field(default_factory=dict)
    """Expunged UID → MODSEQ of its expunge (QRESYNC)."""


@dataclass(slots=True)
class _Credential:
    credential: Credential
    revoked_at: datetime | None = None


@dataclass(slots=True)
class _Account:
    record: AccountRecord
    credentials: list[_Credential]
    folders: dict[str, _Folder]
    slots: dict[str, bytes] = field(default_factory=dict)
    subscriptions: set[str] = field(default_factory=set)
    uidvalidity_floor: int = 0


class InMemoryMailboxStore(MemoryImapState):
    """The mailbox store in memory; for tests and for trying Pli out."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()
        self._accounts: dict[str, _Account] = {}
        self._envelopes: dict[str, Delivery] = {}
        self._trace: list[tuple[int, TraceEntry]] = []
        self._sequence = itertools.count()
        self._closed = False
        self._patients = InMemoryPatientStore(self)
        self.outbound = InMemoryOutboundQueue()
        """The outbound queue whose messages :meth:`deliver` commits with a delivery."""
        self._received_ids: set[tuple[str, str]] = set()
        """(recipient, Message-ID) pairs already delivered, for :meth:`delivered_before`."""
        self._changes = ChangeHub()

    @property
    def patients(self) -> InMemoryPatientStore:
        """The patient side of this store (:class:`~messaging.patient_ports.PatientStore`)."""
        return self._patients

    async def close(self) -> None:
        self._closed = True
        self._changes.close()

    def _ensure_open(self) -> None:
        if self._closed:
            raise Unavailable("the mailbox store is closed")

    def _account(self, address: Address) -> _Account | None:
        self._ensure_open()
        return self._accounts.get(address_key(address))

    # -- accounts and credentials -------------------------------------------------------

    async def create_account(
        self, account: AccountRecord, credentials: Sequence[Credential]
    ) -> None:
        check_aware(account.created_at, account.closed_at)
        check_credentials(credentials)
        key = address_key(account.address)
        if self._account(account.address) is not None:
            raise AccountExists(f"{account.address} is taken")
        uidvalidity = uidvalidity_at(self._clock.now())
        self._accounts[key] = _Account(
            record=replace(
                account,
                address=address_from_key(key),
                created_at=to_utc(account.created_at),
                closed_at=_utc(account.closed_at),
            ),
            credentials=[_Credential(_utc_credential(c)) for c in credentials],
            folders={name: _Folder(name, role, uidvalidity) for name, role in DEFAULT_FOLDERS},
            subscriptions={name for name, _ in DEFAULT_FOLDERS},
        )

    async def get_account(self, address: Address) -> AccountRecord | None:
        found = self._account(address)
        return None if found is None else found.record

    async def list_accounts(self, kind: MailboxKind | None = None) -> list[AccountRecord]:
        self._ensure_open()
        return [
            self._accounts[key].record
            for key in sorted(self._accounts)
            if kind is None or self._accounts[key].record.kind == kind
        ]

    async def list_credentials(self, address: Address) -> list[Credential]:
        found = self._account(address)
        if found is None:
            return []
        live = [entry.credential for entry in found.credentials if entry.revoked_at is None]
        return sorted(live, key=lambda credential: credential.created_at)  # stable: oldest first

    async def add_credential(self, address: Address, credential: Credential) -> None:
        await self.replace_credentials(address, (), (credential,))

    @staticmethod
    def _live(account: _Account, ids: Sequence[str]) -> list[int] | None:
        wanted = set(ids)
        found = [
            index
            for index, entry in enumerate(account.credentials)
            if entry.revoked_at is None and entry.credential.id in wanted
        ]
        return found if len(found) == len(wanted) else None

    def _revoke(self, account: _Account, indexes: list[int]) -> None:
        now = self._clock.now()
        for index in indexes:
            entry = account.credentials[index]
            wiped = replace(entry.credential, salt=b"", auth_hash=b"", sealed_bundle=b"")
            account.credentials[index] = _Credential(wiped, revoked_at=now)

    async def revoke_credential(self, address: Address, credential_id: str) -> None:
        found = self._account(address)
        indexes = None if found is None else self._live(found, [credential_id])
        if found is None or indexes is None:
            raise NotFound(f"{address} has no live credential {credential_id!r}")
        self._revoke(found, indexes)

    async def replace_credentials(
        self, address: Address, remove_ids: Sequence[str], add: Sequence[Credential]
    ) -> None:
        check_credentials(add)
        found = self._account(address)
        if found is None:
            raise UnknownMailbox(f"no mailbox {address}")
        indexes = self._live(found, remove_ids)
        if indexes is None:
            raise NotFound(f"{address} lacks a live credential among {list(remove_ids)}")
        taken = {entry.credential.id for entry in found.credentials}
        if any(credential.id in taken for credential in add):
            raise ValueError(f"{address} already has a credential with one of these ids")
        self._revoke(found, indexes)
        found.credentials.extend(_Credential(_utc_credential(c)) for c in add)

    async def touch_credential(self, address: Address, credential_id: str, at: datetime) -> None:
        check_aware(at)
        found = self._account(address)
        indexes = None if found is None else self._live(found, [credential_id])
        if found is None or indexes is None:
            raise NotFound(f"{address} has no live credential {credential_id!r}")
        [index] = indexes
        entry = found.credentials[index]
        found.credentials[index] = _Credential(replace(entry.credential, last_used_at=to_utc(at)))

    # -- folders and messages -----------------------------------------------------------

    async def list_folders(self, address: Address) -> list[FolderRecord]:
        found = self._account(address)
        if found is None:
            return []
        return [
            FolderRecord(
                name=folder.name,
                role=folder.role,
                uidvalidity=folder.uidvalidity,
                uidnext=folder.uidnext,
                highestmodseq=folder.highestmodseq,
                messages=len(folder.messages),
                unseen=sum(1 for m in folder.messages.values() if not is_seen(m.flags)),
                subscribed=folder.name in found.subscriptions,
            )
            for folder in found.folders.values()
        ]

    def _folder(self, address: Address, folder: str) -> tuple[_Account, _Folder]:
        found = self._account(address)
        box = None if found is None else found.folders.get(canonical_folder_name(folder))
        if found is None or box is None:
            raise NotFound(f"{address} has no folder {folder!r}")
        return found, box

    @staticmethod
    def _new_folder(name: str, uidvalidity: int) -> _Folder:
        return _Folder(name, None, uidvalidity)

    @staticmethod
    def _new_message(
        uid: int, modseq: int, flags: frozenset[str], internal_date: datetime, envelope_id: str
    ) -> _Message:
        return _Message(uid, modseq, flags, internal_date, envelope_id)

    def _record(self, folder: _Folder, message: _Message) -> MessageRecord:
        delivery = self._envelopes[message.envelope_id]
        return MessageRecord(
            folder=folder.name,
            uid=message.uid,
            modseq=message.modseq,
            flags=message.flags,
            internal_date=message.internal_date,
            envelope_id=delivery.envelope_id,
            thread_id=delivery.thread_id,
            kind=delivery.kind,
            sender=address_from_key(address_key(delivery.sender)),
            provenance=delivery.provenance,
            date=delivery.date,
            plaintext_size=delivery.plaintext_size,
            blob=delivery.blob,
        )

    async def list_messages(self, address: Address, folder: str) -> list[MessageRecord]:
        _, box = self._folder(address, folder)
        return [self._record(box, box.messages[uid]) for uid in sorted(box.messages)]

    async def get_message(self, address: Address, folder: str, uid: int) -> StoredMessage:
        try:
            account, box = self._folder(address, folder)
            message = box.messages[uid]
        except (NotFound, KeyError):
            raise NotFound(f"{address} has no message {uid} in {folder!r}") from None
        return StoredMessage(self._record(box, message), account.slots[message.envelope_id])

    async def get_messages(
        self, address: Address, folder: str, uids: Sequence[int]
    ) -> list[StoredMessage]:
        account, box = self._folder(address, folder)
        found = []
        for uid in sorted(set(uids)):
            message = box.messages.get(uid)
            if message is not None:
                slot = account.slots[message.envelope_id]
                found.append(StoredMessage(self._record(box, message), slot))
        return found

    async def find_message(self, address: Address, envelope_id: str) -> StoredMessage:
        """The first copy in folder creation order (INBOX before Sent), then lowest UID."""
        found = self._account(address)
        if found is not None and envelope_id in found.slots:
            for box in found.folders.values():
                for uid in sorted(box.messages):
                    message = box.messages[uid]
                    if message.envelope_id == envelope_id:
                        return StoredMessage(self._record(box, message), found.slots[envelope_id])
        raise NotFound(f"{address} has no copy of envelope {envelope_id!r}")

    async def set_flags(
        self, address: Address, folder: str, uid: int, flags: frozenset[str]
    ) -> MessageRecord:
        check_flags(flags)
        try:
            _, box = self._folder(address, folder)
            message = box.messages[uid]
        except (NotFound, KeyError):
            raise NotFound(f"{address} has no message {uid} in {folder!r}") from None
        box.highestmodseq += 1
        message.flags = frozenset(flags)
        message.modseq = box.highestmodseq
        self._changes.publish(address_key(address), box.name)
        return self._record(box, message)

    # -- deliveries ---------------------------------------------------------------------

    async def deliver(self, delivery: Delivery) -> list[PlacedMessage]:
        check_delivery(delivery)
        self._ensure_open()
        targets: list[tuple[_Account, _Folder]] = []
        for placement in delivery.placements:
            found = self._accounts.get(address_key(placement.account))
            if found is None:
                raise UnknownMailbox(f"no mailbox {placement.account}")
            if found.record.closed_at is not None:
                raise MailboxClosed(f"mailbox {placement.account} is closed")
            box = self._placement_folder(found, placement.folder)
            if box is None:
                raise NotFound(f"{placement.account} has no {placement.folder} folder")
            targets.append((found, box))
        if delivery.envelope_id in self._envelopes:
            raise InvalidMessage(
                f"envelope {delivery.envelope_id!r} conflicts with stored data (delivered already?)"
            )
        commit_patient_side = self._patients.stage(
            [delivery.patient] if delivery.patient is not None else []
        )
        self.outbound.check_new(delivery.outbound)
        received = {
            (address_key(p.account), delivery.message_id)
            for p in delivery.placements
            if delivery.message_id and p.folder is FolderRole.INBOX
        }
        if received & self._received_ids:
            raise InvalidMessage(f"{delivery.message_id} was delivered already")
        # Everything checked: from here on, nothing can fail half-way.
        now = self._clock.now()
        self._envelopes[delivery.envelope_id] = replace(delivery, date=to_utc(delivery.date))
        placed: list[PlacedMessage] = []
        for (account, box), placement in zip(targets, delivery.placements, strict=True):
            uid = box.uidnext
            box.uidnext += 1
            box.highestmodseq += 1
            box.messages[uid] = _Message(
                uid,
                box.highestmodseq,
                frozenset(placement.flags),
                _utc(placement.internal_date) or now,
                delivery.envelope_id,
            )
            account.slots.setdefault(delivery.envelope_id, placement.slot)
            placed.append(PlacedMessage(account.record.address, box.name, uid, box.highestmodseq))
        for entry in delivery.trace:
            self._trace.append((next(self._sequence), _copy_entry(entry)))
        commit_patient_side()
        self.outbound.add(delivery.outbound)
        self._received_ids |= received
        for item in placed:
            self._changes.publish(address_key(item.account), item.folder)
        return placed

    async def delivered_before(
        self, message_id: str, recipients: Sequence[Address]
    ) -> set[Address]:
        self._ensure_open()
        return {r for r in recipients if (address_key(r), message_id) in self._received_ids}

    # -- trace --------------------------------------------------------------------------

    async def record_trace(self, entry: TraceEntry) -> None:
        check_aware(entry.at)
        self._ensure_open()
        self._trace.append((next(self._sequence), _copy_entry(entry)))

    async def list_trace(self, subject: str | None = None, limit: int = 100) -> list[TraceEntry]:
        self._ensure_open()
        chosen = [
            (entry.at, sequence, entry)
            for sequence, entry in self._trace
            if subject is None or entry.subject == subject
        ]
        chosen.sort(key=lambda item: (item[0], item[1]), reverse=True)
        return [_copy_entry(entry) for _, _, entry in chosen[: max(limit, 0)]]


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else to_utc(value)


def _copy_entry(entry: TraceEntry) -> TraceEntry:
    return replace(entry, at=to_utc(entry.at), details=dict(entry.details))


def _utc_credential(credential: Credential) -> Credential:
    return replace(
        credential,
        created_at=to_utc(credential.created_at),
        last_used_at=_utc(credential.last_used_at),
    )

"""``SqlPatientStore``: the :class:`~messaging.patient_ports.PatientStore` on the SQL store.

It shares the engine and the transactions of :class:`~mailbox_store.sql.SqlMailboxStore`
(reach it as ``store.patients``), and :func:`write_effects` is what a delivery transaction
calls to commit its :class:`~messaging.patient_ports.PatientEffects` with its messages.

Implementation notes (invariants):

- **One chain per patient, never forked.** Appending locks the patient's ``accounts`` row
  (``SELECT … FOR UPDATE``; SQLite's ``BEGIN IMMEDIATE`` already makes writers take turns),
  reads the head, and writes the next entries in the same transaction as the change they
  record. ``(patient, seq)`` is the key, so a writer that skipped the lock would fail, not
  fork. An entry's time is never earlier than its head's: concurrent deliveries committed
  in one group may carry times a few microseconds out of order, and the chain records the
  later of the two rather than refusing the delivery.
- History rows are read back as they are stored, tampering included: verifying is
  :func:`messaging.access_history.verify_chain`'s job, never this module's.
- Purging deletes an account's rows and the envelopes no other account holds, in one
  transaction, child rows first; blobs of those envelopes are returned for the caller to
  remove (inline ones are deleted here with their envelopes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, insert, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbox_store.imap_tables import SubscriptionRow, TombstoneRow, UidValidityFloorRow
from mailbox_store.invariants import address_from_key, address_key, check_aware
from mailbox_store.patient_tables import (
    AccessHistoryRow,
    ConsentRecordRow,
    PatientBlockRow,
    PatientMaskRow,
    PatientProfileRow,
    PatientThreadMessageRow,
    PatientThreadRow,
    SharedSlotRow,
)
from mailbox_store.tables import (
    AccountRow,
    CredentialRow,
    EnvelopeRecipientRow,
    EnvelopeRow,
    FolderRow,
    InlineBlobRow,
    KeySlotRow,
    MessageRow,
)
from messaging.access_history import Action, HistoryEntry, append
from messaging.errors import NotFound
from messaging.patient_ports import (
    ConsentRecord,
    ConsentRecordKind,
    HistoryDraft,
    PatientEffects,
    PatientProfile,
    SharedSlotRecord,
    ThreadUpdate,
)
from messaging.patient_rules import ThreadFacts
from messaging.types import AccountRecord, Address, BlobRef, MailboxKind

__all__ = ["SqlPatientStore", "write_effects", "append_history"]

Transaction = Callable[[], AbstractAsyncContextManager[AsyncConnection]]


def _entry(row: Row[Any]) -> HistoryEntry:
    details = row.details if isinstance(row.details, dict) else {}
    return HistoryEntry(
        patient=address_from_key(row.patient),
        seq=row.seq,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        at=row.at,
        details=tuple(sorted((str(k), str(v)) for k, v in details.items())),
        previous=row.previous,
        hash=row.hash,
    )


async def _lock_patient(connection: AsyncConnection, patient: str) -> None:
    query = select(AccountRow.id).where(AccountRow.address == patient)
    if connection.dialect.name == "postgresql":
        # NO KEY UPDATE, not UPDATE: a delivery in this very transaction may already hold
        # the KEY SHARE lock its key-slot insert took on this row (the foreign key), and so
        # may a concurrent one; FOR UPDATE would make two such transactions wait on each
        # other. NO KEY UPDATE still makes history writers of one patient take turns.
        query = query.with_for_update(key_share=True)  # renders FOR NO KEY UPDATE
    await connection.execute(query)


async def append_history(
    connection: AsyncConnection, drafts: Sequence[HistoryDraft]
) -> list[HistoryEntry]:
    """Chain and insert ``drafts`` in the current transaction (see the module notes)."""
    if not drafts:
        return []
    by_patient: dict[str, list[HistoryDraft]] = {}
    for draft in drafts:
        check_aware(draft.at)
        by_patient.setdefault(address_key(draft.patient), []).append(draft)
    written: list[HistoryEntry] = []
    for patient in sorted(by_patient):  # one lock order: no deadlock between two writers
        await _lock_patient(connection, patient)
        row = (
            await connection.execute(
                select(AccessHistoryRow.__table__)
                .where(AccessHistoryRow.patient == patient)
                .order_by(AccessHistoryRow.seq.desc())
                .limit(1)
            )
        ).first()
        head = None if row is None else _entry(row)
        rows: list[dict[str, Any]] = []
        for draft in by_patient[patient]:
            at = draft.at if head is None or draft.at >= head.at else head.at
            head = append(
                head,
                patient=address_from_key(patient),
                actor=draft.actor,
                action=Action(draft.action),
                subject=draft.subject,
                at=at,
                details=draft.details,
            )
            written.append(head)
            rows.append(
                {
                    "patient": patient,
                    "seq": head.seq,
                    "actor": head.actor,
                    "action": head.action,
                    "subject": head.subject,
                    "at": head.at,
                    "details": dict(head.details),
                    "previous": head.previous,
                    "hash": head.hash,
                }
            )
        await connection.execute(insert(AccessHistoryRow), rows)
    return written


def _insert(connection: AsyncConnection, table: Any) -> Any:  # noqa: ANN401 - a dialect insert
    dialect_insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    return dialect_insert(table)


async def _write_threads(connection: AsyncConnection, updates: Iterable[ThreadUpdate]) -> None:
    """Create the threads not known yet, close those asked, remember message keys.

    Rows are written with one statement per table for the whole group (deliveries commit in
    groups of dozens); closures are rare and updated one by one.
    """
    threads: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    closures: list[tuple[str, str, str, datetime]] = []
    for update_ in updates:
        check_aware(update_.at)
        patient, professional = address_key(update_.patient), address_key(update_.professional)
        threads.append(
            {
                "patient": patient,
                "thread_id": update_.thread_id,
                "professional": professional,
                "opened_by": address_key(update_.opened_by),
                "opened_at": update_.at,
                "reply_to": None if update_.reply_to is None else address_key(update_.reply_to),
                "closed_at": update_.at if update_.closes else None,
            }
        )
        if update_.closes:
            closures.append((patient, update_.thread_id, professional, update_.at))
        if update_.message_key is not None:
            messages.append(
                {
                    "patient": patient,
                    "message_key": update_.message_key,
                    "thread_id": update_.thread_id,
                }
            )
    if threads:
        await connection.execute(
            _insert(connection, PatientThreadRow).on_conflict_do_nothing(), threads
        )
    for patient, thread_id, professional, at in closures:
        await connection.execute(
            update(PatientThreadRow)
            .where(
                PatientThreadRow.patient == patient,
                PatientThreadRow.thread_id == thread_id,
                PatientThreadRow.professional == professional,
                PatientThreadRow.closed_at.is_(None),
            )
            .values(closed_at=at)
        )
    if messages:
        await connection.execute(
            _insert(connection, PatientThreadMessageRow).on_conflict_do_nothing(), messages
        )


def _consent_values(record: ConsentRecord) -> dict[str, Any]:
    check_aware(record.at)
    return {
        "patient": address_key(record.patient),
        "request_id": record.request_id,
        "kind": record.kind.value,
        "professional": address_key(record.professional),
        "body": record.body,
        "at": record.at,
    }


async def _delete_slots(connection: AsyncConnection, slots: Sequence[tuple[str, Address]]) -> int:
    if not slots:
        return 0
    keys = [(document, address_key(professional)) for document, professional in slots]
    result = await connection.execute(
        delete(SharedSlotRow).where(
            tuple_(SharedSlotRow.document_id, SharedSlotRow.professional).in_(keys)
        )
    )
    return int(result.rowcount or 0)


async def write_effects(connection: AsyncConnection, effects: Sequence[PatientEffects]) -> None:
    """Commit the patient-side effects of deliveries in the delivery's transaction."""
    await _write_threads(connection, (t for e in effects for t in e.threads))
    consents = [_consent_values(c) for e in effects for c in e.consents]
    if consents:
        await connection.execute(insert(ConsentRecordRow), consents)
    await _delete_slots(connection, [s for e in effects for s in e.unshare])
    await append_history(connection, [h for e in effects for h in e.history])


async def _profile(connection: AsyncConnection, patient: Address) -> PatientProfile:
    row = (
        await connection.execute(
            select(PatientProfileRow.__table__).where(
                PatientProfileRow.patient == address_key(patient)
            )
        )
    ).first()
    if row is None:
        return PatientProfile(patient)
    return PatientProfile(
        address=patient,
        treating_doctor=None
        if row.treating_doctor is None
        else address_from_key(row.treating_doctor),
        minor=row.minor,
        contact_email=row.contact_email,
        contact_phone=row.contact_phone,
        lang=row.lang,
        opposed_at=row.opposed_at,
    )


async def _blocks(connection: AsyncConnection, patient: Address) -> frozenset[Address]:
    rows = (
        await connection.execute(
            select(PatientBlockRow.professional).where(
                PatientBlockRow.patient == address_key(patient)
            )
        )
    ).scalars()
    return frozenset(address_from_key(r) for r in rows)


class SqlPatientStore:
    """The patient side of a :class:`~mailbox_store.sql.SqlMailboxStore`."""

    def __init__(self, reading: Transaction, writing: Transaction) -> None:
        self._reading = reading
        self._writing = writing

    # -- profile ------------------------------------------------------------------------

    async def get_profile(self, patient: Address) -> PatientProfile:
        async with self._reading() as connection:
            return await _profile(connection, patient)

    async def profile_and_blocks(
        self, patient: Address
    ) -> tuple[PatientProfile, frozenset[Address]]:
        async with self._reading() as connection:
            return await _profile(connection, patient), await _blocks(connection, patient)

    async def put_profile(
        self, profile: PatientProfile, history: Sequence[HistoryDraft] = ()
    ) -> None:
        check_aware(profile.opposed_at)
        values = {
            "treating_doctor": None
            if profile.treating_doctor is None
            else address_key(profile.treating_doctor),
            "minor": profile.minor,
            "contact_email": profile.contact_email,
            "contact_phone": profile.contact_phone,
            "lang": profile.lang,
            "opposed_at": profile.opposed_at,
        }
        async with self._writing() as connection:
            statement = _insert(connection, PatientProfileRow).values(
                patient=address_key(profile.address), **values
            )
            await connection.execute(
                statement.on_conflict_do_update(index_elements=["patient"], set_=values)
            )
            await append_history(connection, history)

    # -- blocks and masks ---------------------------------------------------------------

    async def set_block(
        self,
        patient: Address,
        professional: Address,
        blocked: bool,
        at: datetime,
        history: Sequence[HistoryDraft] = (),
    ) -> None:
        check_aware(at)
        key = (address_key(patient), address_key(professional))
        async with self._writing() as connection:
            if blocked:
                await connection.execute(
                    _insert(connection, PatientBlockRow)
                    .values(patient=key[0], professional=key[1], blocked_at=at)
                    .on_conflict_do_nothing()
                )
            else:
                await connection.execute(
                    delete(PatientBlockRow).where(
                        PatientBlockRow.patient == key[0], PatientBlockRow.professional == key[1]
                    )
                )
            await append_history(connection, history)

    async def blocks(self, patient: Address) -> frozenset[Address]:
        async with self._reading() as connection:
            return await _blocks(connection, patient)

    async def set_mask(
        self,
        patient: Address,
        document_id: str,
        professionals: Sequence[Address],
        masked: bool,
        at: datetime,
        history: Sequence[HistoryDraft] = (),
    ) -> None:
        check_aware(at)
        owner = address_key(patient)
        keys = sorted({address_key(p) for p in professionals})
        async with self._writing() as connection:
            if masked:
                for professional in keys:
                    await connection.execute(
                        _insert(connection, PatientMaskRow)
                        .values(
                            patient=owner,
                            document_id=document_id,
                            professional=professional,
                            masked_at=at,
                        )
                        .on_conflict_do_nothing()
                    )
                await _delete_slots(connection, [(document_id, address_from_key(p)) for p in keys])
            else:
                await connection.execute(
                    delete(PatientMaskRow).where(
                        PatientMaskRow.patient == owner,
                        PatientMaskRow.document_id == document_id,
                        PatientMaskRow.professional.in_(keys),
                    )
                )
            await append_history(connection, history)

    async def masks(self, patient: Address) -> dict[str, frozenset[Address]]:
        async with self._reading() as connection:
            rows = (
                await connection.execute(
                    select(PatientMaskRow.document_id, PatientMaskRow.professional).where(
                        PatientMaskRow.patient == address_key(patient)
                    )
                )
            ).all()
        found: dict[str, set[Address]] = {}
        for document_id, professional in rows:
            found.setdefault(document_id, set()).add(address_from_key(professional))
        return {document: frozenset(who) for document, who in found.items()}

    # -- threads ------------------------------------------------------------------------

    async def threads(self, patient: Address) -> list[ThreadFacts]:
        async with self._reading() as connection:
            rows = (
                await connection.execute(
                    select(PatientThreadRow.__table__)
                    .where(PatientThreadRow.patient == address_key(patient))
                    .order_by(PatientThreadRow.opened_at, PatientThreadRow.thread_id)
                )
            ).all()
        return [
            ThreadFacts(
                thread_id=row.thread_id,
                patient=patient,
                professional=address_from_key(row.professional),
                opened_by=address_from_key(row.opened_by),
                opened_at=row.opened_at,
                reply_to=None if row.reply_to is None else address_from_key(row.reply_to),
                closed_at=row.closed_at,
            )
            for row in rows
        ]

    async def thread_of(self, patient: Address, message_keys: Sequence[str]) -> str | None:
        if not message_keys:
            return None
        async with self._reading() as connection:
            rows = (
                await connection.execute(
                    select(
                        PatientThreadMessageRow.message_key, PatientThreadMessageRow.thread_id
                    ).where(
                        PatientThreadMessageRow.patient == address_key(patient),
                        PatientThreadMessageRow.message_key.in_(list(message_keys)),
                    )
                )
            ).all()
        found = dict(rows)
        for key in message_keys:
            if key in found:
                return str(found[key])
        return None

    # -- consent and shared slots -------------------------------------------------------

    async def consent_records(self, patient: Address) -> list[ConsentRecord]:
        async with self._reading() as connection:
            rows = (
                await connection.execute(
                    select(ConsentRecordRow.__table__)
                    .where(ConsentRecordRow.patient == address_key(patient))
                    .order_by(ConsentRecordRow.id)
                )
            ).all()
        return [
            ConsentRecord(
                patient=patient,
                request_id=row.request_id,
                kind=ConsentRecordKind(row.kind),
                professional=address_from_key(row.professional),
                body=row.body,
                at=row.at,
            )
            for row in rows
        ]

    async def add_shared_slots(
        self, slots: Sequence[SharedSlotRecord], history: Sequence[HistoryDraft] = ()
    ) -> None:
        async with self._writing() as connection:
            await _delete_slots(connection, [(s.document_id, s.professional) for s in slots])
            if slots:
                await connection.execute(
                    insert(SharedSlotRow),
                    [
                        {
                            "document_id": s.document_id,
                            "professional": address_key(s.professional),
                            "patient": address_key(s.patient),
                            "grant_id": s.grant_id,
                            "categories": " ".join(sorted(s.categories)),
                            "slot": s.slot,
                            "shared_at": s.at,
                        }
                        for s in slots
                    ],
                )
            await append_history(connection, history)

    @staticmethod
    def _slot(row: Row[Any]) -> SharedSlotRecord:
        return SharedSlotRecord(
            patient=address_from_key(row.patient),
            document_id=row.document_id,
            professional=address_from_key(row.professional),
            grant_id=row.grant_id,
            slot=row.slot,
            at=row.shared_at,
            categories=frozenset(row.categories.split()),
        )

    async def shared_slots(
        self, patient: Address, professional: Address | None = None
    ) -> list[SharedSlotRecord]:
        query = select(SharedSlotRow.__table__).where(SharedSlotRow.patient == address_key(patient))
        if professional is not None:
            query = query.where(SharedSlotRow.professional == address_key(professional))
        async with self._reading() as connection:
            rows = (
                await connection.execute(
                    query.order_by(SharedSlotRow.shared_at, SharedSlotRow.document_id)
                )
            ).all()
        return [self._slot(row) for row in rows]

    async def shared_slot(self, document_id: str, professional: Address) -> SharedSlotRecord | None:
        async with self._reading() as connection:
            row = (
                await connection.execute(
                    select(SharedSlotRow.__table__).where(
                        SharedSlotRow.document_id == document_id,
                        SharedSlotRow.professional == address_key(professional),
                    )
                )
            ).first()
        return None if row is None else self._slot(row)

    async def delete_shared_slots(
        self,
        slots: Sequence[tuple[str, Address]],
        history: Sequence[HistoryDraft] = (),
    ) -> int:
        async with self._writing() as connection:
            count = await _delete_slots(connection, slots)
            await append_history(connection, history)
        return count

    # -- history ------------------------------------------------------------------------

    async def append_history(self, drafts: Sequence[HistoryDraft]) -> list[HistoryEntry]:
        async with self._writing() as connection:
            return await append_history(connection, drafts)

    async def history(self, patient: Address) -> list[HistoryEntry]:
        async with self._reading() as connection:
            rows = (
                await connection.execute(
                    select(AccessHistoryRow.__table__)
                    .where(AccessHistoryRow.patient == address_key(patient))
                    .order_by(AccessHistoryRow.seq)
                )
            ).all()
        return [_entry(row) for row in rows]

    # -- account lifecycle --------------------------------------------------------------

    async def close_account(
        self, address: Address, at: datetime, *, opposed: bool = False
    ) -> AccountRecord:
        check_aware(at)
        key = address_key(address)
        async with self._writing() as connection:
            row = (
                await connection.execute(
                    update(AccountRow)
                    .where(AccountRow.address == key, AccountRow.closed_at.is_(None))
                    .values(closed_at=at)
                    .returning(*AccountRow.__table__.columns)
                )
            ).first()
            if row is None:
                found = (
                    await connection.execute(
                        select(*AccountRow.__table__.columns).where(AccountRow.address == key)
                    )
                ).first()
                if found is None:
                    raise NotFound(f"no account {address}")
                row = found
            if opposed:
                values = {"opposed_at": at}
                await connection.execute(
                    _insert(connection, PatientProfileRow)
                    .values(patient=key, minor=False, lang="fr", **values)
                    .on_conflict_do_update(index_elements=["patient"], set_=values)
                )
        return AccountRecord(
            address=address_from_key(row.address),
            kind=MailboxKind(row.kind),
            display_name=row.display_name,
            encryption_key=row.encryption_key,
            signing_key=row.signing_key,
            created_at=row.created_at,
            closed_at=row.closed_at,
        )

    async def purge_account(self, address: Address) -> list[BlobRef]:
        key = address_key(address)
        async with self._writing() as connection:
            account = (
                await connection.execute(
                    select(AccountRow.id, AccountRow.closed_at).where(AccountRow.address == key)
                )
            ).first()
            if account is None:
                raise NotFound(f"no account {address}")
            account_id, closed_at = account
            if closed_at is None:
                raise ValueError(f"{address} is open: only a closed account is purged")
            folder_ids = select(FolderRow.id).where(FolderRow.account_id == account_id)
            envelopes = list(
                (
                    await connection.execute(
                        select(MessageRow.envelope_id)
                        .where(MessageRow.folder_id.in_(folder_ids))
                        .distinct()
                    )
                ).scalars()
            )
            await connection.execute(delete(KeySlotRow).where(KeySlotRow.account_id == account_id))
            await connection.execute(delete(MessageRow).where(MessageRow.folder_id.in_(folder_ids)))
            # The IMAP state of the account's folders goes with them (imap_tables.py).
            await connection.execute(
                delete(TombstoneRow).where(TombstoneRow.folder_id.in_(folder_ids))
            )
            for imap_table in (SubscriptionRow, UidValidityFloorRow):
                await connection.execute(
                    delete(imap_table).where(imap_table.account_id == account_id)
                )
            await connection.execute(delete(FolderRow).where(FolderRow.account_id == account_id))
            await connection.execute(
                delete(CredentialRow).where(CredentialRow.account_id == account_id)
            )
            orphans = list(
                (
                    await connection.execute(
                        select(EnvelopeRow.envelope_id).where(
                            EnvelopeRow.envelope_id.in_(envelopes),
                            ~exists().where(MessageRow.envelope_id == EnvelopeRow.envelope_id),
                        )
                    )
                ).scalars()
            )
            blobs = [
                BlobRef(digest, size)
                for digest, size in (
                    await connection.execute(
                        select(EnvelopeRow.blob_digest, EnvelopeRow.blob_size)
                        .where(EnvelopeRow.envelope_id.in_(orphans))
                        .distinct()
                    )
                ).all()
            ]
            await connection.execute(
                delete(SharedSlotRow).where(
                    or_(
                        SharedSlotRow.document_id.in_(orphans),
                        SharedSlotRow.patient == key,
                        SharedSlotRow.professional == key,
                    )
                )
            )
            await connection.execute(delete(KeySlotRow).where(KeySlotRow.envelope_id.in_(orphans)))
            await connection.execute(
                delete(EnvelopeRecipientRow).where(EnvelopeRecipientRow.envelope_id.in_(orphans))
            )
            await connection.execute(
                delete(EnvelopeRow).where(EnvelopeRow.envelope_id.in_(orphans))
            )
            # A blob still named by another envelope (equal bytes) stays.
            still_used = set(
                (
                    await connection.execute(
                        select(EnvelopeRow.blob_digest).where(
                            EnvelopeRow.blob_digest.in_([b.digest for b in blobs])
                        )
                    )
                ).scalars()
            )
            blobs = [b for b in blobs if b.digest not in still_used]
            await connection.execute(
                delete(InlineBlobRow).where(InlineBlobRow.digest.in_([b.digest for b in blobs]))
            )
            for table in (
                PatientProfileRow,
                PatientThreadRow,
                PatientThreadMessageRow,
                PatientBlockRow,
                PatientMaskRow,
                ConsentRecordRow,
                AccessHistoryRow,
            ):
                await connection.execute(delete(table).where(table.patient == key))
            await connection.execute(delete(AccountRow).where(AccountRow.id == account_id))
        return blobs

"""``InMemoryPatientStore``: the reference :class:`~messaging.patient_ports.PatientStore`.

The patient side of an :class:`~mailbox_store.memory.InMemoryMailboxStore` (reach it as
``store.patients``); it passes the same contract tests as the SQL one. As in the mailbox
store, atomicity comes from asyncio: every write computes everything first (the new
history entries included, which is where a bad entry is refused), then mutates without
awaiting, and :meth:`InMemoryPatientStore.stage` lets a delivery do the same with its
:class:`~messaging.patient_ports.PatientEffects`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from mailbox_store.invariants import address_from_key, address_key, check_aware, to_utc
from messaging.access_history import Action, HistoryEntry, append
from messaging.errors import InvalidMessage, NotFound
from messaging.patient_ports import (
    ConsentRecord,
    HistoryDraft,
    PatientEffects,
    PatientProfile,
    SharedSlotRecord,
    ThreadUpdate,
)
from messaging.patient_rules import ThreadFacts
from messaging.types import AccountRecord, Address, BlobRef

if TYPE_CHECKING:
    from mailbox_store.memory import InMemoryMailboxStore

__all__ = ["InMemoryPatientStore"]


def _key(address: Address) -> Address:
    return address_from_key(address_key(address))


@dataclass(slots=True)
class _State:
    profiles: dict[Address, PatientProfile] = field(default_factory=dict)
    threads: dict[tuple[Address, str, Address], ThreadFacts] = field(default_factory=dict)
    thread_messages: dict[tuple[Address, str], str] = field(default_factory=dict)
    blocks: dict[Address, dict[Address, datetime]] = field(default_factory=dict)
    masks: dict[tuple[Address, str, Address], datetime] = field(default_factory=dict)
    consents: list[ConsentRecord] = field(default_factory=list)
    slots: dict[tuple[str, Address], SharedSlotRecord] = field(default_factory=dict)
    history: dict[Address, list[HistoryEntry]] = field(default_factory=dict)


class InMemoryPatientStore:
    """The patient side of an in-memory mailbox store."""

    def __init__(self, store: InMemoryMailboxStore) -> None:
        self._store = store
        self._state = _State()

    # -- staging: compute first, mutate without awaiting --------------------------------

    def _chain(self, drafts: Sequence[HistoryDraft]) -> list[HistoryEntry]:
        heads: dict[Address, HistoryEntry | None] = {}
        written: list[HistoryEntry] = []
        for draft in drafts:
            check_aware(draft.at)
            patient = _key(draft.patient)
            if patient not in heads:
                chain = self._state.history.get(patient, [])
                heads[patient] = chain[-1] if chain else None
            head = heads[patient]
            at = to_utc(draft.at)
            if head is not None and at < head.at:
                at = head.at
            entry = append(
                head,
                patient=patient,
                actor=draft.actor,
                action=Action(draft.action),
                subject=draft.subject,
                at=at,
                details=draft.details,
            )
            heads[patient] = entry
            written.append(entry)
        return written

    def _commit_history(self, entries: Sequence[HistoryEntry]) -> None:
        for entry in entries:
            self._state.history.setdefault(entry.patient, []).append(entry)

    def _apply_thread(self, update: ThreadUpdate) -> None:
        patient, professional = _key(update.patient), _key(update.professional)
        at = to_utc(update.at)
        key = (patient, update.thread_id, professional)
        thread = self._state.threads.get(key)
        if thread is None:
            thread = ThreadFacts(
                thread_id=update.thread_id,
                patient=patient,
                professional=professional,
                opened_by=_key(update.opened_by),
                opened_at=at,
                reply_to=None if update.reply_to is None else _key(update.reply_to),
                closed_at=at if update.closes else None,
            )
        elif update.closes and thread.closed_at is None:
            thread = replace(thread, closed_at=at)
        self._state.threads[key] = thread
        if update.message_key is not None:
            self._state.thread_messages.setdefault((patient, update.message_key), update.thread_id)

    def stage(self, effects: Sequence[PatientEffects]) -> Callable[[], None]:
        """Check ``effects`` and return what commits them (it cannot fail)."""
        seen = {(c.patient, c.request_id, c.kind) for c in self._state.consents}
        consents: list[ConsentRecord] = []
        for record in (c for e in effects for c in e.consents):
            check_aware(record.at)
            record = replace(record, patient=_key(record.patient), at=to_utc(record.at))
            identity = (record.patient, record.request_id, record.kind)
            if identity in seen:
                raise InvalidMessage(
                    f"consent {record.kind} {record.request_id} is recorded already",
                    "consent-duplicate",
                )
            seen.add(identity)
            consents.append(record)
        for update in (t for e in effects for t in e.threads):
            check_aware(update.at)
        entries = self._chain([h for e in effects for h in e.history])
        unshare = [(d, _key(p)) for e in effects for d, p in e.unshare]

        def commit() -> None:
            for update in (t for e in effects for t in e.threads):
                self._apply_thread(update)
            self._state.consents.extend(consents)
            for slot in unshare:
                self._state.slots.pop(slot, None)
            self._commit_history(entries)

        return commit

    # -- profile ------------------------------------------------------------------------

    async def get_profile(self, patient: Address) -> PatientProfile:
        self._store._ensure_open()
        return self._state.profiles.get(_key(patient), PatientProfile(_key(patient)))

    async def put_profile(
        self, profile: PatientProfile, history: Sequence[HistoryDraft] = ()
    ) -> None:
        self._store._ensure_open()
        check_aware(profile.opposed_at)
        entries = self._chain(history)
        stored = replace(
            profile,
            address=_key(profile.address),
            treating_doctor=None
            if profile.treating_doctor is None
            else _key(profile.treating_doctor),
            opposed_at=None if profile.opposed_at is None else to_utc(profile.opposed_at),
        )
        self._state.profiles[stored.address] = stored
        self._commit_history(entries)

    # -- blocks and masks ---------------------------------------------------------------

    async def set_block(
        self,
        patient: Address,
        professional: Address,
        blocked: bool,
        at: datetime,
        history: Sequence[HistoryDraft] = (),
    ) -> None:
        self._store._ensure_open()
        check_aware(at)
        entries = self._chain(history)
        blocks = self._state.blocks.setdefault(_key(patient), {})
        if blocked:
            blocks.setdefault(_key(professional), to_utc(at))
        else:
            blocks.pop(_key(professional), None)
        self._commit_history(entries)

    async def blocks(self, patient: Address) -> frozenset[Address]:
        self._store._ensure_open()
        return frozenset(self._state.blocks.get(_key(patient), {}))

    async def profile_and_blocks(
        self, patient: Address
    ) -> tuple[PatientProfile, frozenset[Address]]:
        return await self.get_profile(patient), await self.blocks(patient)

    async def set_mask(
        self,
        patient: Address,
        document_id: str,
        professionals: Sequence[Address],
        masked: bool,
        at: datetime,
        history: Sequence[HistoryDraft] = (),
    ) -> None:
        self._store._ensure_open()
        check_aware(at)
        entries = self._chain(history)
        owner = _key(patient)
        for professional in {_key(p) for p in professionals}:
            if masked:
                self._state.masks.setdefault((owner, document_id, professional), to_utc(at))
                self._state.slots.pop((document_id, professional), None)
            else:
                self._state.masks.pop((owner, document_id, professional), None)
        self._commit_history(entries)

    async def masks(self, patient: Address) -> dict[str, frozenset[Address]]:
        self._store._ensure_open()
        found: dict[str, set[Address]] = {}
        for owner, document_id, professional in self._state.masks:
            if owner == _key(patient):
                found.setdefault(document_id, set()).add(professional)
        return {document: frozenset(who) for document, who in found.items()}

    # -- threads ------------------------------------------------------------------------

    async def threads(self, patient: Address) -> list[ThreadFacts]:
        self._store._ensure_open()
        found = [t for (p, _, _), t in self._state.threads.items() if p == _key(patient)]
        return sorted(found, key=lambda t: (t.opened_at, t.thread_id))

    async def thread_of(self, patient: Address, message_keys: Sequence[str]) -> str | None:
        self._store._ensure_open()
        for key in message_keys:
            found = self._state.thread_messages.get((_key(patient), key))
            if found is not None:
                return found
        return None

    # -- consent and shared slots -------------------------------------------------------

    async def consent_records(self, patient: Address) -> list[ConsentRecord]:
        self._store._ensure_open()
        return [c for c in self._state.consents if c.patient == _key(patient)]

    async def add_shared_slots(
        self, slots: Sequence[SharedSlotRecord], history: Sequence[HistoryDraft] = ()
    ) -> None:
        self._store._ensure_open()
        for slot in slots:
            check_aware(slot.at)
            if slot.document_id not in self._store._envelopes:
                raise NotFound(f"no envelope {slot.document_id}")
        entries = self._chain(history)
        for slot in slots:
            stored = replace(
                slot,
                patient=_key(slot.patient),
                professional=_key(slot.professional),
                at=to_utc(slot.at),
            )
            self._state.slots[(slot.document_id, stored.professional)] = stored
        self._commit_history(entries)

    async def shared_slots(
        self, patient: Address, professional: Address | None = None
    ) -> list[SharedSlotRecord]:
        self._store._ensure_open()
        found = [
            s
            for s in self._state.slots.values()
            if s.patient == _key(patient)
            and (professional is None or s.professional == _key(professional))
        ]
        return sorted(found, key=lambda s: (s.at, s.document_id))

    async def shared_slot(self, document_id: str, professional: Address) -> SharedSlotRecord | None:
        self._store._ensure_open()
        return self._state.slots.get((document_id, _key(professional)))

    async def delete_shared_slots(
        self,
        slots: Sequence[tuple[str, Address]],
        history: Sequence[HistoryDraft] = (),
    ) -> int:
        self._store._ensure_open()
        entries = self._chain(history)
        count = 0
        for document_id, professional in slots:
            if self._state.slots.pop((document_id, _key(professional)), None) is not None:
                count += 1
        self._commit_history(entries)
        return count

    # -- history ------------------------------------------------------------------------

    async def append_history(self, drafts: Sequence[HistoryDraft]) -> list[HistoryEntry]:
        self._store._ensure_open()
        entries = self._chain(drafts)
        self._commit_history(entries)
        return entries

    async def history(self, patient: Address) -> list[HistoryEntry]:
        self._store._ensure_open()
        return list(self._state.history.get(_key(patient), []))

    def tamper(self, patient: Address, index: int, entry: HistoryEntry | None) -> None:
        """Replace (or, with None, delete) a stored entry: for tests of verification."""
        chain = self._state.history[_key(patient)]
        if entry is None:
            del chain[index]
        else:
            chain[index] = entry

    # -- account lifecycle --------------------------------------------------------------

    async def close_account(
        self, address: Address, at: datetime, *, opposed: bool = False
    ) -> AccountRecord:
        check_aware(at)
        account = self._store._account(address)
        if account is None:
            raise NotFound(f"no account {address}")
        if account.record.closed_at is None:
            account.record = replace(account.record, closed_at=to_utc(at))
        if opposed:
            profile = self._state.profiles.get(_key(address), PatientProfile(_key(address)))
            self._state.profiles[_key(address)] = replace(profile, opposed_at=to_utc(at))
        return account.record

    async def purge_account(self, address: Address) -> list[BlobRef]:
        account = self._store._account(address)
        if account is None:
            raise NotFound(f"no account {address}")
        if account.record.closed_at is None:
            raise ValueError(f"{address} is open: only a closed account is purged")
        key = _key(address)
        del self._store._accounts[address_key(address)]
        held = {
            m.envelope_id
            for other in self._store._accounts.values()
            for box in other.folders.values()
            for m in box.messages.values()
        }
        orphans = [e for e in account.slots if e not in held]
        blobs: dict[str, BlobRef] = {}
        for envelope_id in orphans:
            delivery = self._store._envelopes.pop(envelope_id, None)
            if delivery is not None:
                blobs[delivery.blob.digest] = delivery.blob
        still_used = {d.blob.digest for d in self._store._envelopes.values()}
        state = self._state
        state.profiles.pop(key, None)
        state.threads = {k: v for k, v in state.threads.items() if k[0] != key}
        state.thread_messages = {k: v for k, v in state.thread_messages.items() if k[0] != key}
        state.blocks.pop(key, None)
        state.masks = {k: v for k, v in state.masks.items() if k[0] != key}
        state.consents = [c for c in state.consents if c.patient != key]
        state.slots = {
            k: s
            for k, s in state.slots.items()
            if s.patient != key and s.professional != key and s.document_id not in orphans
        }
        state.history.pop(key, None)
        return [b for d, b in blobs.items() if d not in still_used]

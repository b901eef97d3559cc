"""The patient side of the store: threads, blocks, masks, consent, shared slots, history.

:class:`PatientStore` is the port the patient rules and :mod:`messaging.patients` need;
``mailbox_store`` implements it (SQL and in memory, one contract). The values here are
plain frozen dataclasses; none of them carries message content — thread ids, envelope
ids, addresses, codes, the canonical JSON of consent messages (a scope and a purpose the
patient is shown, kept because the registry must be rebuilt from signed data), and opaque
key slots.

Same-transaction promise: a delivery carries its :class:`PatientEffects`
(:attr:`messaging.types.Delivery.patient`), which :meth:`MailboxStore.deliver` commits
with its messages — threads opened or closed, consent messages recorded, shared slots
deleted, access-history entries appended. Every other write of this port that takes
``history`` appends those entries in the same transaction as the change it records.
Entries are chained by the store inside the transaction (:func:`messaging.access_history.append`
on the patient's current head, under a per-patient lock), so two concurrent writers can
never fork a chain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from messaging.access_history import HistoryEntry
from messaging.patient_rules import ThreadFacts
from messaging.types import AccountRecord, Address, BlobRef

__all__ = [
    "ConsentRecord",
    "ConsentRecordKind",
    "HistoryDraft",
    "PatientEffects",
    "PatientProfile",
    "PatientStore",
    "SharedSlotRecord",
    "ThreadUpdate",
]


@dataclass(frozen=True, slots=True)
class HistoryDraft:
    """An access-history entry to append; the store numbers, links and hashes it."""

    patient: Address
    actor: str
    action: str
    subject: str
    at: datetime
    details: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ThreadUpdate:
    """A thread between ``patient`` and ``professional`` seen by a delivery.

    The store creates the thread when it does not exist yet (``opened_by`` and ``at`` are
    then its opener and opening time), then closes it at ``at`` when ``closes`` and it is
    still open. ``message_key`` (a hash of the message's ``Message-ID``) lets a later reply
    that only names the message in ``In-Reply-To`` find the thread.
    """

    patient: Address
    thread_id: str
    professional: Address
    opened_by: Address
    at: datetime
    reply_to: Address | None = None
    closes: bool = False
    message_key: str | None = None


class ConsentRecordKind(StrEnum):
    REQUEST = "request"
    RESPONSE = "response"
    REVOCATION = "revocation"


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """One consent message of a patient, as the canonical JSON of its structured part.

    The registry is rebuilt from these and verifies every signature again, so an edited
    row is refused when read back, never trusted.
    """

    patient: Address
    request_id: str
    kind: ConsentRecordKind
    professional: Address
    body: bytes
    at: datetime


@dataclass(frozen=True, slots=True)
class SharedSlotRecord:
    """A key slot the patient's side made for a professional under a grant.

    ``categories`` are the document's type codes as the patient's client read them when
    sharing (what a category-scoped grant is about), never its content.
    """

    patient: Address
    document_id: str
    professional: Address
    grant_id: str
    slot: bytes
    at: datetime
    categories: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class PatientEffects:
    """What a delivery changes on the patient side, committed with its messages."""

    thread_id: str | None = None
    """The thread the message belongs to, when the rules resolved it (a reply)."""
    threads: tuple[ThreadUpdate, ...] = ()
    consents: tuple[ConsentRecord, ...] = ()
    unshare: tuple[tuple[str, Address], ...] = ()
    """Shared slots to delete, as ``(document id, professional)``."""
    history: tuple[HistoryDraft, ...] = ()
    notify: tuple[Address, ...] = ()
    """Patients to send a content-free notice to once the delivery is committed."""
    receipt_to: Address | None = None

    @property
    def empty(self) -> bool:
        return not (self.threads or self.consents or self.unshare or self.history)


@dataclass(frozen=True, slots=True)
class PatientProfile:
    """What a patient declared or the operator knows, beyond the account itself.

    ``contact_email`` / ``contact_phone`` are where content-free notices go; ``lang`` the
    language of reasons and notices; ``opposed_at`` the time of an objection within the
    opposition window (the account is then closed at that time).
    """

    address: Address
    treating_doctor: Address | None = None
    minor: bool = False
    contact_email: str | None = None
    contact_phone: str | None = None
    lang: str = "fr"
    opposed_at: datetime | None = None


class PatientStore(Protocol):
    """The patient-side state of the mailbox store. Every write is one transaction."""

    async def get_profile(self, patient: Address) -> PatientProfile:
        """The profile (defaults when none was written)."""
        ...

    async def put_profile(
        self, profile: PatientProfile, history: Sequence[HistoryDraft] = ()
    ) -> None: ...

    async def set_block(
        self,
        patient: Address,
        professional: Address,
        blocked: bool,
        at: datetime,
        history: Sequence[HistoryDraft] = (),
    ) -> None: ...

    async def blocks(self, patient: Address) -> frozenset[Address]: ...

    async def profile_and_blocks(
        self, patient: Address
    ) -> tuple[PatientProfile, frozenset[Address]]:
        """Both in one read: what the rules need for every message to or from a patient."""
        ...

    async def set_mask(
        self,
        patient: Address,
        document_id: str,
        professionals: Sequence[Address],
        masked: bool,
        at: datetime,
        history: Sequence[HistoryDraft] = (),
    ) -> None:
        """Mask (or unmask) a document from professionals; masking also deletes the slots
        shared with them for that document."""
        ...

    async def masks(self, patient: Address) -> dict[str, frozenset[Address]]:
        """Document id → professionals it is masked from."""
        ...

    async def threads(self, patient: Address) -> list[ThreadFacts]:
        """Every thread of the patient, oldest first."""
        ...

    async def thread_of(self, patient: Address, message_keys: Sequence[str]) -> str | None:
        """The thread of the first message (by ``message_key``) found, or None."""
        ...

    async def consent_records(self, patient: Address) -> list[ConsentRecord]:
        """Consent messages in the order recorded."""
        ...

    async def add_shared_slots(
        self, slots: Sequence[SharedSlotRecord], history: Sequence[HistoryDraft] = ()
    ) -> None:
        """Store slots (a slot already stored for a (document, professional) is replaced)."""
        ...

    async def shared_slots(
        self, patient: Address, professional: Address | None = None
    ) -> list[SharedSlotRecord]: ...

    async def shared_slot(
        self, document_id: str, professional: Address
    ) -> SharedSlotRecord | None: ...

    async def delete_shared_slots(
        self,
        slots: Sequence[tuple[str, Address]],
        history: Sequence[HistoryDraft] = (),
    ) -> int:
        """Delete ``(document id, professional)`` slots; the number deleted."""
        ...

    async def append_history(self, drafts: Sequence[HistoryDraft]) -> list[HistoryEntry]:
        """Append entries (alone: an action with nothing else to write, such as a read)."""
        ...

    async def history(self, patient: Address) -> list[HistoryEntry]:
        """The patient's whole history, oldest first, as stored (tampering included)."""
        ...

    async def close_account(
        self, address: Address, at: datetime, *, opposed: bool = False
    ) -> AccountRecord:
        """Set ``closed_at`` (and ``opposed_at`` for an objection). Raises ``NotFound``."""
        ...

    async def purge_account(self, address: Address) -> list[BlobRef]:
        """Delete a closed account and everything only it holds: credentials, folders,
        messages, key slots, envelopes no other account holds, its patient-side rows and
        history; the blobs no envelope names any more (for the caller to remove). Raises
        ``NotFound`` for an unknown account, ``ValueError`` for an open one.
        """
        ...

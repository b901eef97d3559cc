"""The patient-side tables (migration ``store_0003``): imported by :mod:`mailbox_store.tables`.

Addresses are stored as the store's lower-case address keys, like ``accounts.address``;
none of these rows holds message content (see :mod:`messaging.patient_ports`).

Implementation notes:

- ``access_history`` is keyed by ``(patient, seq)``: a second writer that computed the
  same next number fails on the key instead of forking the chain. Writers also lock the
  patient's ``accounts`` row first (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite has one
  writer at a time), so that never happens in practice.
- ``shared_slots`` references ``envelopes``: a slot never outlives its document's envelope.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, LargeBinary
from sqlalchemy.orm import Mapped, mapped_column

from mailbox_store.tables import Base, BigId

__all__ = [
    "AccessHistoryRow",
    "ConsentRecordRow",
    "PatientBlockRow",
    "PatientMaskRow",
    "PatientProfileRow",
    "PatientThreadMessageRow",
    "PatientThreadRow",
    "SharedSlotRow",
]


class PatientProfileRow(Base):
    __tablename__ = "patient_profiles"

    patient: Mapped[str] = mapped_column(primary_key=True)
    treating_doctor: Mapped[str | None]
    minor: Mapped[bool] = mapped_column(Boolean)
    contact_email: Mapped[str | None]
    contact_phone: Mapped[str | None]
    lang: Mapped[str]
    opposed_at: Mapped[datetime | None]


class PatientThreadRow(Base):
    __tablename__ = "patient_threads"

    patient: Mapped[str] = mapped_column(primary_key=True)
    thread_id: Mapped[str] = mapped_column(primary_key=True)
    professional: Mapped[str] = mapped_column(primary_key=True)
    opened_by: Mapped[str]
    opened_at: Mapped[datetime]
    reply_to: Mapped[str | None]
    closed_at: Mapped[datetime | None]


class PatientThreadMessageRow(Base):
    """Which thread a message (by a hash of its ``Message-ID``) belongs to."""

    __tablename__ = "patient_thread_messages"

    patient: Mapped[str] = mapped_column(primary_key=True)
    message_key: Mapped[str] = mapped_column(primary_key=True)
    thread_id: Mapped[str]


class PatientBlockRow(Base):
    __tablename__ = "patient_blocks"

    patient: Mapped[str] = mapped_column(primary_key=True)
    professional: Mapped[str] = mapped_column(primary_key=True)
    blocked_at: Mapped[datetime]


class PatientMaskRow(Base):
    __tablename__ = "patient_masks"

    patient: Mapped[str] = mapped_column(primary_key=True)
    document_id: Mapped[str] = mapped_column(primary_key=True)
    professional: Mapped[str] = mapped_column(primary_key=True)
    masked_at: Mapped[datetime]


class ConsentRecordRow(Base):
    __tablename__ = "consent_records"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    patient: Mapped[str]
    request_id: Mapped[str]
    kind: Mapped[str]
    professional: Mapped[str]
    body: Mapped[bytes] = mapped_column(LargeBinary)
    at: Mapped[datetime]

    __table_args__ = (
        Index("ix_consent_records_patient_request", "patient", "request_id", "kind", unique=True),
    )


class SharedSlotRow(Base):
    __tablename__ = "shared_slots"

    document_id: Mapped[str] = mapped_column(ForeignKey("envelopes.envelope_id"), primary_key=True)
    professional: Mapped[str] = mapped_column(primary_key=True)
    patient: Mapped[str] = mapped_column(index=True)
    grant_id: Mapped[str]
    categories: Mapped[str]
    slot: Mapped[bytes]
    shared_at: Mapped[datetime]


class AccessHistoryRow(Base):
    __tablename__ = "access_history"

    patient: Mapped[str] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    actor: Mapped[str]
    action: Mapped[str]
    subject: Mapped[str]
    at: Mapped[datetime]
    details: Mapped[dict[str, str]] = mapped_column(JSON)
    previous: Mapped[bytes]
    hash: Mapped[bytes]

"""The store's tables: private SQLAlchemy 2 declarative models, used as Core tables.

Nothing outside ``mailbox_store`` sees these classes; the store turns rows into the values
of :mod:`messaging.types`. The migration in ``migrations/versions`` creates exactly this
schema (a test compares them with Alembic's autogenerate).

Implementation notes:

- Times are :class:`UtcDateTime`: timezone-aware UTC in and out. PostgreSQL stores
  ``timestamptz``; SQLite has no zone, so UTC is stored naive and the zone put back on read.
- UIDs, UIDVALIDITY and MODSEQ are ``BIGINT``: they are unsigned 32-bit (UIDs) and 63-bit
  (MODSEQ, RFC 7162) numbers, which ``INTEGER`` cannot hold on PostgreSQL.
- Flags are one sorted, space-separated text per message, plus a ``seen`` column kept in
  step with it by the one code path that writes flags. A set of flags is always read and
  replaced whole, together with the message's MODSEQ, so one row keeps ``set_flags`` a
  single-row write and listings need no join; ``seen`` serves the only flag predicate the
  port needs (UNSEEN counts) with an index.
- Enumerations (mailbox kind, message kind, role…) are plain text, not database enums, so
  adding a value never needs a migration on PostgreSQL.
- Constraint names follow one naming convention, so later migrations (and SQLite batch
  migrations) can name what they alter.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Base",
    "UtcDateTime",
    "AccountRow",
    "CredentialRow",
    "FolderRow",
    "EnvelopeRow",
    "EnvelopeRecipientRow",
    "MessageRow",
    "KeySlotRow",
    "TraceRow",
]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BigId = BigInteger().with_variant(Integer(), "sqlite")
"""A 64-bit surrogate key; SQLite only auto-increments ``INTEGER PRIMARY KEY``."""


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every engine; naive input is refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the store keeps aware UTC times")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(
        self,
        value: datetime | None,
        dialect: Dialect,  # noqa: ARG002 - same on every engine
    ) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {
        datetime: UtcDateTime(),
        bytes: LargeBinary(),
        str: Text(),
    }


class AccountRow(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    address: Mapped[str] = mapped_column(unique=True)
    kind: Mapped[str]
    display_name: Mapped[str]
    encryption_key: Mapped[bytes]
    signing_key: Mapped[bytes]
    created_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint("address = lower(address)", name="address_lower"),
        Index("ix_accounts_kind_address", "kind", "address"),
    )


class CredentialRow(Base):
    __tablename__ = "credentials"

    row_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    id: Mapped[str]
    kind: Mapped[str]
    label: Mapped[str]
    salt: Mapped[bytes]
    opslimit: Mapped[int] = mapped_column(BigInteger)
    memlimit: Mapped[int] = mapped_column(BigInteger)
    auth_hash: Mapped[bytes]
    sealed_bundle: Mapped[bytes]
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    __table_args__ = (UniqueConstraint("account_id", "id"),)


class FolderRow(Base):
    __tablename__ = "folders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    name: Mapped[str]
    role: Mapped[str | None]
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uidnext: Mapped[int] = mapped_column(BigInteger)
    highestmodseq: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        UniqueConstraint("account_id", "name"),
        UniqueConstraint("account_id", "role"),
        CheckConstraint("uidvalidity BETWEEN 1 AND 4294967295", name="uidvalidity_range"),
        CheckConstraint("uidnext >= 1", name="uidnext_positive"),
        CheckConstraint("highestmodseq >= 0", name="highestmodseq_positive"),
    )


class EnvelopeRow(Base):
    __tablename__ = "envelopes"

    envelope_id: Mapped[str] = mapped_column(primary_key=True)
    thread_id: Mapped[str] = mapped_column(index=True)
    kind: Mapped[str]
    sender: Mapped[str]
    provenance: Mapped[str]
    date: Mapped[datetime]
    plaintext_size: Mapped[int] = mapped_column(BigInteger)
    blob_digest: Mapped[str] = mapped_column(index=True)
    blob_size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint("plaintext_size >= 0", name="plaintext_size_positive"),
        CheckConstraint("blob_size >= 0", name="blob_size_positive"),
    )


class EnvelopeRecipientRow(Base):
    """The recipients named in the envelope's routing header, in header order."""

    __tablename__ = "envelope_recipients"

    envelope_id: Mapped[str] = mapped_column(ForeignKey("envelopes.envelope_id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str]


class MessageRow(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    folder_id: Mapped[int] = mapped_column(ForeignKey("folders.id"))
    uid: Mapped[int] = mapped_column(BigInteger)
    modseq: Mapped[int] = mapped_column(BigInteger)
    flags: Mapped[str]
    seen: Mapped[bool] = mapped_column(Boolean)
    internal_date: Mapped[datetime]
    envelope_id: Mapped[str] = mapped_column(ForeignKey("envelopes.envelope_id"), index=True)

    __table_args__ = (
        UniqueConstraint("folder_id", "uid"),
        Index("ix_messages_folder_id_seen", "folder_id", "seen"),
        CheckConstraint("uid >= 1", name="uid_positive"),
        CheckConstraint("modseq >= 1", name="modseq_positive"),
    )


class KeySlotRow(Base):
    """The content key of an envelope sealed for one account: opaque bytes to the store."""

    __tablename__ = "key_slots"

    envelope_id: Mapped[str] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slot: Mapped[bytes]

    __table_args__ = (
        ForeignKeyConstraint(["envelope_id"], ["envelopes.envelope_id"]),
        ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        Index("ix_key_slots_account_id", "account_id"),
    )


class InlineBlobRow(Base):
    """A small encrypted blob, kept in the database and committed with its delivery."""

    __tablename__ = "inline_blobs"

    digest: Mapped[str] = mapped_column(primary_key=True)
    data: Mapped[bytes]


class TraceRow(Base):
    __tablename__ = "trace"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    actor: Mapped[str]
    action: Mapped[str]
    subject: Mapped[str]
    details: Mapped[dict[str, str]] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_trace_at_id", "at", "id"),
        Index("ix_trace_subject_at_id", "subject", "at", "id"),
    )


# The patient-side tables live in their own module; importing it here registers them on
# ``Base.metadata``, so the "migrations equal models" check sees them.
from mailbox_store import patient_tables as patient_tables  # noqa: E402

# The outbound queue's tables live in their own module; importing it registers them here.
from mailbox_store.outbound_tables import (  # noqa: E402
    OutboundMessageRow,
    OutboundRecipientRow,
    ReceivedIdRow,
)

__all__ += ["OutboundMessageRow", "OutboundRecipientRow", "ReceivedIdRow"]
# The IMAP state's tables (subscriptions, tombstones, UIDVALIDITY floors) live in their own
# module; importing it here puts them in ``Base.metadata``.
# The application API's tables share this metadata (imported last: they subclass Base).
from mailbox_store import api_tables as _api_tables  # noqa: E402, F401
from mailbox_store import imap_tables as imap_tables  # noqa: E402

# The webmail's tables share this metadata too (store_0007_webmail).
from mailbox_store import webmail_tables as _webmail_tables  # noqa: E402, F401

"""Tables of the IMAP mailbox state (RFC 3501 subscriptions, RFC 7162 QRESYNC tombstones).

Imported by :mod:`mailbox_store.tables`, so they belong to the same metadata and the
"migration equals models" test covers them; created by revision ``store_0004``.

- ``folder_subscriptions``: subscribed names per account. Keyed by name, not by folder: a
  subscription outlives the folder it names (RFC 3501 §6.3.6, RFC 9051 ``\\NonExistent``).
- ``expunged_messages``: one tombstone per expunged UID with the MODSEQ of its expunge, so
  ``changes_since`` answers QRESYNC's VANISHED (RFC 7162 §3.2.10); deleted with the folder.
- ``uidvalidity_floors``: the greatest UIDVALIDITY an account ever gave a folder, so a
  folder created again under a deleted folder's name always gets a greater one, even
  within the same second (RFC 3501 §2.3.1.1).
- ``ix_messages_folder_id_modseq`` makes ``changes_since`` (CHANGEDSINCE) a range scan.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Index, Integer
from sqlalchemy.orm import Mapped, mapped_column

from mailbox_store.tables import Base, MessageRow

__all__ = ["SubscriptionRow", "TombstoneRow", "UidValidityFloorRow"]


class SubscriptionRow(Base):
    __tablename__ = "folder_subscriptions"

    account_id: Mapped[int] = mapped_column(Integer, ForeignKey("accounts.id"), primary_key=True)
    name: Mapped[str] = mapped_column(primary_key=True)


class TombstoneRow(Base):
    __tablename__ = "expunged_messages"

    folder_id: Mapped[int] = mapped_column(Integer, ForeignKey("folders.id"), primary_key=True)
    uid: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    modseq: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_expunged_messages_folder_id_modseq", "folder_id", "modseq"),)


class UidValidityFloorRow(Base):
    __tablename__ = "uidvalidity_floors"

    account_id: Mapped[int] = mapped_column(Integer, ForeignKey("accounts.id"), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)


Index("ix_messages_folder_id_modseq", MessageRow.folder_id, MessageRow.modseq)

"""Tables of the outbound queue (:mod:`messaging.outbound`), imported by ``tables.py``.

One row per queued message (its SMTP envelope and its copy sealed for the queue key: the
store sees ciphertext only) and one row per remote recipient with its relay state. Both are
deleted once every recipient is final, so nothing of a relayed message stays behind.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer
from sqlalchemy.orm import Mapped, mapped_column

from mailbox_store.tables import Base

__all__ = ["OutboundMessageRow", "OutboundRecipientRow", "ReceivedIdRow"]


class OutboundMessageRow(Base):
    __tablename__ = "outbound_messages"

    queue_id: Mapped[str] = mapped_column(primary_key=True)
    mail_from: Mapped[str | None]
    message_id: Mapped[str]
    envid: Mapped[str]
    ret: Mapped[str | None]
    size: Mapped[int] = mapped_column(BigInteger)
    sealed: Mapped[bytes]
    slot: Mapped[bytes]
    created_at: Mapped[datetime] = mapped_column(index=True)


class OutboundRecipientRow(Base):
    __tablename__ = "outbound_recipients"

    queue_id: Mapped[str] = mapped_column(
        ForeignKey("outbound_messages.queue_id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str]
    notify: Mapped[str]
    orcpt: Mapped[str]
    state: Mapped[str]
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt: Mapped[datetime]
    status: Mapped[str]
    diagnostic: Mapped[str]
    remote_mta: Mapped[str]
    delay_reported: Mapped[bool] = mapped_column(Boolean)

    __table_args__ = (Index("ix_outbound_recipients_state_next", "state", "next_attempt"),)


class ReceivedIdRow(Base):
    """A Message-ID an INBOX received (receiving-side deduplication, ``Delivery.message_id``)."""

    __tablename__ = "received_message_ids"

    recipient: Mapped[str] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(primary_key=True)
    envelope_id: Mapped[str]
    received_at: Mapped[datetime]

"""Tables of the webmail's server-side state (``messaging/webmail.py``), in the store's schema.

Imported by :mod:`mailbox_store.tables` so they share its metadata and naming convention;
the migration ``store_0007_webmail`` creates exactly them. No secret is stored in clear:
sign-in tickets, one-time codes and session tokens are keyed hashes. No message content.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, LargeBinary, Text
from sqlalchemy.orm import Mapped, mapped_column

from mailbox_store.tables import Base, UtcDateTime

__all__ = ["WebmailPendingRow", "WebmailSessionRow", "WebmailPreferencesRow"]


class WebmailPendingRow(Base):
    """A sign-in waiting for its one-time code."""

    __tablename__ = "webmail_pending"

    ticket_hash: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    address: Mapped[str] = mapped_column(Text)
    credential_id: Mapped[str] = mapped_column(Text)
    code_hash: Mapped[bytes] = mapped_column(LargeBinary)
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_webmail_pending_expires_at", "expires_at"),)


class WebmailSessionRow(Base):
    __tablename__ = "webmail_sessions"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    address: Mapped[str] = mapped_column(Text)
    credential_id: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_webmail_sessions_address", "address"),)


class WebmailPreferencesRow(Base):
    __tablename__ = "webmail_preferences"

    address: Mapped[str] = mapped_column(Text, primary_key=True)
    notify_email: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str] = mapped_column(Text)
    notify_phone: Mapped[str | None] = mapped_column(Text)
    """E.164; sign-in codes go here by SMS when set (store_0008)."""

"""Tables of the application API's state (``messaging/api_clients.py``), in the store's schema.

Imported by :mod:`mailbox_store.tables`, so they share its metadata and naming convention,
and the migration ``store_0006_api`` creates exactly them. None of them holds message
content: addresses, ids, statuses, hashes of requests, and webhook payloads that carry only
metadata.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary
from sqlalchemy.orm import Mapped, mapped_column

from mailbox_store.tables import Base

__all__ = [
    "ApiClientRow",
    "ApiIdempotencyRow",
    "ApiSendRow",
    "ApiWebhookRow",
    "ApiWebhookDeliveryRow",
]


class ApiClientRow(Base):
    __tablename__ = "api_clients"

    client_id: Mapped[str] = mapped_column(primary_key=True)
    address: Mapped[str]
    name: Mapped[str]
    scopes: Mapped[str]
    """Space-separated, sorted (RFC 6749 §3.3 spelling)."""
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    rate_per_minute: Mapped[int | None] = mapped_column(Integer)
    daily_quota: Mapped[int | None] = mapped_column(Integer)


class ApiIdempotencyRow(Base):
    __tablename__ = "api_idempotency"

    client_id: Mapped[str] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(primary_key=True)
    request_hash: Mapped[str]
    created_at: Mapped[datetime]
    status: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    headers: Mapped[str]

    __table_args__ = (Index("ix_api_idempotency_created_at", "created_at"),)


class ApiSendRow(Base):
    __tablename__ = "api_sends"

    envelope_id: Mapped[str] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(primary_key=True)
    client_id: Mapped[str]
    kind: Mapped[str]
    provenance: Mapped[str]
    status: Mapped[str]
    delivered_at: Mapped[datetime]
    read_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_api_sends_client_id_delivered_at", "client_id", "delivered_at"),
        Index("ix_api_sends_status_delivered_at", "status", "delivered_at"),
    )


class ApiWebhookRow(Base):
    __tablename__ = "api_webhooks"

    id: Mapped[str] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("api_clients.client_id"))
    url: Mapped[str]
    events: Mapped[str]
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_api_webhooks_client_id", "client_id"),)


class ApiWebhookDeliveryRow(Base):
    __tablename__ = "api_webhook_deliveries"

    id: Mapped[str] = mapped_column(primary_key=True)
    webhook_id: Mapped[str]
    client_id: Mapped[str]
    event: Mapped[str]
    payload: Mapped[str]
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer)
    state: Mapped[str]
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str]
    delivered_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_api_webhook_deliveries_state_next_attempt_at", "state", "next_attempt_at"),
        Index("ix_api_webhook_deliveries_client_id_created_at", "client_id", "created_at"),
    )

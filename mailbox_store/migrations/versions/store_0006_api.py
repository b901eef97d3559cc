"""The application API's state: clients, idempotency keys, sends, webhooks and their log.

Revision ID: store_0006
Revises: store_0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "store_0006"
down_revision: str | None = "store_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _text(name: str) -> sa.Column[str]:
    return sa.Column(name, sa.Text(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "api_clients",
        _text("client_id"),
        _text("address"),
        _text("name"),
        _text("scopes"),
        _time("created_at"),
        _time("revoked_at", nullable=True),
        sa.Column("rate_per_minute", sa.Integer(), nullable=True),
        sa.Column("daily_quota", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("client_id", name="pk_api_clients"),
    )
    op.create_table(
        "api_idempotency",
        _text("client_id"),
        _text("key"),
        _text("request_hash"),
        _time("created_at"),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        _text("headers"),
        sa.PrimaryKeyConstraint("client_id", "key", name="pk_api_idempotency"),
    )
    op.create_index("ix_api_idempotency_created_at", "api_idempotency", ["created_at"])
    op.create_table(
        "api_sends",
        _text("envelope_id"),
        _text("recipient"),
        _text("client_id"),
        _text("kind"),
        _text("provenance"),
        _text("status"),
        _time("delivered_at"),
        _time("read_at", nullable=True),
        sa.PrimaryKeyConstraint("envelope_id", "recipient", name="pk_api_sends"),
    )
    op.create_index(
        "ix_api_sends_client_id_delivered_at", "api_sends", ["client_id", "delivered_at"]
    )
    op.create_index("ix_api_sends_status_delivered_at", "api_sends", ["status", "delivered_at"])
    op.create_table(
        "api_webhooks",
        _text("id"),
        _text("client_id"),
        _text("url"),
        _text("events"),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_api_webhooks"),
        sa.ForeignKeyConstraint(
            ["client_id"], ["api_clients.client_id"], name="fk_api_webhooks_client_id_api_clients"
        ),
    )
    op.create_index("ix_api_webhooks_client_id", "api_webhooks", ["client_id"])
    op.create_table(
        "api_webhook_deliveries",
        _text("id"),
        _text("webhook_id"),
        _text("client_id"),
        _text("event"),
        _text("payload"),
        _time("created_at"),
        _time("next_attempt_at"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _text("state"),
        sa.Column("last_status", sa.Integer(), nullable=True),
        _text("last_error"),
        _time("delivered_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_webhook_deliveries"),
    )
    op.create_index(
        "ix_api_webhook_deliveries_state_next_attempt_at",
        "api_webhook_deliveries",
        ["state", "next_attempt_at"],
    )
    op.create_index(
        "ix_api_webhook_deliveries_client_id_created_at",
        "api_webhook_deliveries",
        ["client_id", "created_at"],
    )


def downgrade() -> None:
    op.drop_table("api_webhook_deliveries")
    op.drop_table("api_webhooks")
    op.drop_table("api_sends")
    op.drop_table("api_idempotency")
    op.drop_table("api_clients")

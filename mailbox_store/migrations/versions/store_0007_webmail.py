"""The webmail's state: sign-ins waiting for their one-time code, sessions, preferences.

Revision ID: store_0007
Revises: store_0006
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "store_0007"
# Chained after the API's store_0006, which shares this branch (the lead re-chains).
down_revision: str | None = "store_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webmail_pending",
        sa.Column("ticket_hash", sa.LargeBinary(), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("credential_id", sa.Text(), nullable=False),
        sa.Column("code_hash", sa.LargeBinary(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ticket_hash", name=op.f("pk_webmail_pending")),
    )
    op.create_index("ix_webmail_pending_expires_at", "webmail_pending", ["expires_at"])
    op.create_table(
        "webmail_sessions",
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("credential_id", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_webmail_sessions")),
    )
    op.create_index("ix_webmail_sessions_address", "webmail_sessions", ["address"])
    op.create_table(
        "webmail_preferences",
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("notify_email", sa.Text(), nullable=True),
        sa.Column("language", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_webmail_preferences")),
    )


def downgrade() -> None:
    op.drop_table("webmail_preferences")
    op.drop_index("ix_webmail_sessions_address", table_name="webmail_sessions")
    op.drop_table("webmail_sessions")
    op.drop_index("ix_webmail_pending_expires_at", table_name="webmail_pending")
    op.drop_table("webmail_pending")

"""The outbound queue: messages for peer operators, sealed for the queue key.

A frozen snapshot, like store_0001: it does not import ``mailbox_store.tables``.

Revision ID: store_0005
Revises: store_0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "store_0005"
down_revision: str | None = "store_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbound_messages",
        sa.Column("queue_id", sa.Text(), nullable=False),
        sa.Column("mail_from", sa.Text(), nullable=True),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("envid", sa.Text(), nullable=False),
        sa.Column("ret", sa.Text(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("slot", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("queue_id", name=op.f("pk_outbound_messages")),
    )
    op.create_index(op.f("ix_outbound_messages_created_at"), "outbound_messages", ["created_at"])
    op.create_table(
        "outbound_recipients",
        sa.Column("queue_id", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("notify", sa.Text(), nullable=False),
        sa.Column("orcpt", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("diagnostic", sa.Text(), nullable=False),
        sa.Column("remote_mta", sa.Text(), nullable=False),
        sa.Column("delay_reported", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["outbound_messages.queue_id"],
            name=op.f("fk_outbound_recipients_queue_id_outbound_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("queue_id", "position", name=op.f("pk_outbound_recipients")),
    )
    op.create_index(
        "ix_outbound_recipients_state_next",
        "outbound_recipients",
        ["state", "next_attempt"],
    )

    op.create_table(
        "received_message_ids",
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("envelope_id", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("recipient", "message_id", name=op.f("pk_received_message_ids")),
    )


def downgrade() -> None:
    op.drop_table("received_message_ids")
    op.drop_index("ix_outbound_recipients_state_next", table_name="outbound_recipients")
    op.drop_table("outbound_recipients")
    op.drop_index(op.f("ix_outbound_messages_created_at"), table_name="outbound_messages")
    op.drop_table("outbound_messages")

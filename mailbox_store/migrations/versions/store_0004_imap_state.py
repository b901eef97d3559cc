"""IMAP mailbox state: subscriptions, expunge tombstones (QRESYNC), UIDVALIDITY floors, and a
(folder, MODSEQ) index for CHANGEDSINCE.

Existing folders become subscribed (before this revision every folder was listed to every
client). UIDVALIDITY, UIDs and MODSEQs are not touched.

Revision ID: store_0004
Revises: store_0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "store_0004"
down_revision: str | None = "store_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "folder_subscriptions",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_folder_subscriptions_account_id_accounts"
        ),
        sa.PrimaryKeyConstraint("account_id", "name", name="pk_folder_subscriptions"),
    )
    op.create_table(
        "expunged_messages",
        sa.Column("folder_id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("modseq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["folder_id"], ["folders.id"], name="fk_expunged_messages_folder_id_folders"
        ),
        sa.PrimaryKeyConstraint("folder_id", "uid", name="pk_expunged_messages"),
    )
    op.create_index(
        "ix_expunged_messages_folder_id_modseq", "expunged_messages", ["folder_id", "modseq"]
    )
    op.create_table(
        "uidvalidity_floors",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_uidvalidity_floors_account_id_accounts"
        ),
        sa.PrimaryKeyConstraint("account_id", name="pk_uidvalidity_floors"),
    )
    op.create_index("ix_messages_folder_id_modseq", "messages", ["folder_id", "modseq"])
    op.execute(
        "INSERT INTO folder_subscriptions (account_id, name) SELECT account_id, name FROM folders"
    )


def downgrade() -> None:
    op.drop_index("ix_messages_folder_id_modseq", table_name="messages")
    op.drop_table("uidvalidity_floors")
    op.drop_index("ix_expunged_messages_folder_id_modseq", table_name="expunged_messages")
    op.drop_table("expunged_messages")
    op.drop_table("folder_subscriptions")

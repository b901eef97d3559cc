"""The mailbox store's first schema: accounts, credentials, folders, envelopes, messages,
key slots and the trace.

A frozen snapshot: it does not import ``mailbox_store.tables``, so later changes to the
models never change what this revision creates.

Revision ID: store_0001
Revises:
Create Date: 2025-01-01
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "store_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("encryption_key", sa.LargeBinary(), nullable=False),
        sa.Column("signing_key", sa.LargeBinary(), nullable=False),
        _time("created_at"),
        _time("closed_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_accounts"),
        sa.UniqueConstraint("address", name="uq_accounts_address"),
        sa.CheckConstraint("address = lower(address)", name="ck_accounts_address_lower"),
    )
    op.create_index("ix_accounts_kind_address", "accounts", ["kind", "address"])

    op.create_table(
        "credentials",
        sa.Column("row_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("salt", sa.LargeBinary(), nullable=False),
        sa.Column("opslimit", sa.BigInteger(), nullable=False),
        sa.Column("memlimit", sa.BigInteger(), nullable=False),
        sa.Column("auth_hash", sa.LargeBinary(), nullable=False),
        sa.Column("sealed_bundle", sa.LargeBinary(), nullable=False),
        _time("created_at"),
        _time("last_used_at", nullable=True),
        _time("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("row_id", name="pk_credentials"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_credentials_account_id_accounts"
        ),
        sa.UniqueConstraint("account_id", "id", name="uq_credentials_account_id_id"),
    )

    op.create_table(
        "folders",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=True),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("uidnext", sa.BigInteger(), nullable=False),
        sa.Column("highestmodseq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_folders"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_folders_account_id_accounts"
        ),
        sa.UniqueConstraint("account_id", "name", name="uq_folders_account_id_name"),
        sa.UniqueConstraint("account_id", "role", name="uq_folders_account_id_role"),
        sa.CheckConstraint(
            "uidvalidity BETWEEN 1 AND 4294967295", name="ck_folders_uidvalidity_range"
        ),
        sa.CheckConstraint("uidnext >= 1", name="ck_folders_uidnext_positive"),
        sa.CheckConstraint("highestmodseq >= 0", name="ck_folders_highestmodseq_positive"),
    )

    op.create_table(
        "envelopes",
        sa.Column("envelope_id", sa.Text(), nullable=False),
        sa.Column("thread_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("sender", sa.Text(), nullable=False),
        sa.Column("provenance", sa.Text(), nullable=False),
        _time("date"),
        sa.Column("plaintext_size", sa.BigInteger(), nullable=False),
        sa.Column("blob_digest", sa.Text(), nullable=False),
        sa.Column("blob_size", sa.BigInteger(), nullable=False),
        _time("created_at"),
        sa.PrimaryKeyConstraint("envelope_id", name="pk_envelopes"),
        sa.CheckConstraint("plaintext_size >= 0", name="ck_envelopes_plaintext_size_positive"),
        sa.CheckConstraint("blob_size >= 0", name="ck_envelopes_blob_size_positive"),
    )
    op.create_index("ix_envelopes_thread_id", "envelopes", ["thread_id"])
    op.create_index("ix_envelopes_blob_digest", "envelopes", ["blob_digest"])

    op.create_table(
        "envelope_recipients",
        sa.Column("envelope_id", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("envelope_id", "position", name="pk_envelope_recipients"),
        sa.ForeignKeyConstraint(
            ["envelope_id"],
            ["envelopes.envelope_id"],
            name="fk_envelope_recipients_envelope_id_envelopes",
        ),
    )

    op.create_table(
        "messages",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("folder_id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("modseq", sa.BigInteger(), nullable=False),
        sa.Column("flags", sa.Text(), nullable=False),
        sa.Column("seen", sa.Boolean(), nullable=False),
        _time("internal_date"),
        sa.Column("envelope_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
        sa.ForeignKeyConstraint(
            ["folder_id"], ["folders.id"], name="fk_messages_folder_id_folders"
        ),
        sa.ForeignKeyConstraint(
            ["envelope_id"], ["envelopes.envelope_id"], name="fk_messages_envelope_id_envelopes"
        ),
        sa.UniqueConstraint("folder_id", "uid", name="uq_messages_folder_id_uid"),
        sa.CheckConstraint("uid >= 1", name="ck_messages_uid_positive"),
        sa.CheckConstraint("modseq >= 1", name="ck_messages_modseq_positive"),
    )
    op.create_index("ix_messages_envelope_id", "messages", ["envelope_id"])
    op.create_index("ix_messages_folder_id_seen", "messages", ["folder_id", "seen"])

    op.create_table(
        "key_slots",
        sa.Column("envelope_id", sa.Text(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("slot", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("envelope_id", "account_id", name="pk_key_slots"),
        sa.ForeignKeyConstraint(
            ["envelope_id"], ["envelopes.envelope_id"], name="fk_key_slots_envelope_id_envelopes"
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_key_slots_account_id_accounts"
        ),
    )
    op.create_index("ix_key_slots_account_id", "key_slots", ["account_id"])

    op.create_table(
        "trace",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        _time("at"),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_trace"),
    )
    op.create_index("ix_trace_at_id", "trace", ["at", "id"])
    op.create_index("ix_trace_subject_at_id", "trace", ["subject", "at", "id"])


def downgrade() -> None:
    op.drop_table("trace")
    op.drop_table("key_slots")
    op.drop_table("messages")
    op.drop_table("envelope_recipients")
    op.drop_table("envelopes")
    op.drop_table("folders")
    op.drop_table("credentials")
    op.drop_table("accounts")

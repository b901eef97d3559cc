"""The patient side: profiles, threads, blocks, masks, consent, shared slots, access history.

A frozen snapshot, like ``store_0001``: it does not import the models.

Revision ID: store_0003
Revises: store_0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "store_0003"
down_revision: str | None = "store_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def UtcDateTime() -> sa.DateTime:  # noqa: N802 - reads like the model's column type
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "patient_profiles",
        sa.Column("patient", sa.Text(), nullable=False),
        sa.Column("treating_doctor", sa.Text(), nullable=True),
        sa.Column("minor", sa.Boolean(), nullable=False),
        sa.Column("contact_email", sa.Text(), nullable=True),
        sa.Column("contact_phone", sa.Text(), nullable=True),
        sa.Column("lang", sa.Text(), nullable=False),
        sa.Column("opposed_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("patient", name=op.f("pk_patient_profiles")),
    )
    op.create_table(
        "patient_threads",
        sa.Column("patient", sa.Text(), nullable=False),
        sa.Column("thread_id", sa.Text(), nullable=False),
        sa.Column("professional", sa.Text(), nullable=False),
        sa.Column("opened_by", sa.Text(), nullable=False),
        sa.Column("opened_at", UtcDateTime(), nullable=False),
        sa.Column("reply_to", sa.Text(), nullable=True),
        sa.Column("closed_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint(
            "patient", "thread_id", "professional", name=op.f("pk_patient_threads")
        ),
    )
    op.create_table(
        "patient_thread_messages",
        sa.Column("patient", sa.Text(), nullable=False),
        sa.Column("message_key", sa.Text(), nullable=False),
        sa.Column("thread_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("patient", "message_key", name=op.f("pk_patient_thread_messages")),
    )
    op.create_table(
        "patient_blocks",
        sa.Column("patient", sa.Text(), nullable=False),
        sa.Column("professional", sa.Text(), nullable=False),
        sa.Column("blocked_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("patient", "professional", name=op.f("pk_patient_blocks")),
    )
    op.create_table(
        "patient_masks",
        sa.Column("patient", sa.Text(), nullable=False),
        sa.Column("document_id", sa.Text(), nullable=False),
        sa.Column("professional", sa.Text(), nullable=False),
        sa.Column("masked_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "patient", "document_id", "professional", name=op.f("pk_patient_masks")
        ),
    )
    op.create_table(
        "consent_records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("patient", sa.Text(), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("professional", sa.Text(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_records")),
    )
    op.create_index(
        "ix_consent_records_patient_request",
        "consent_records",
        ["patient", "request_id", "kind"],
        unique=True,
    )
    op.create_table(
        "shared_slots",
        sa.Column("document_id", sa.Text(), nullable=False),
        sa.Column("professional", sa.Text(), nullable=False),
        sa.Column("patient", sa.Text(), nullable=False),
        sa.Column("grant_id", sa.Text(), nullable=False),
        sa.Column("categories", sa.Text(), nullable=False),
        sa.Column("slot", sa.LargeBinary(), nullable=False),
        sa.Column("shared_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["envelopes.envelope_id"],
            name=op.f("fk_shared_slots_document_id_envelopes"),
        ),
        sa.PrimaryKeyConstraint("document_id", "professional", name=op.f("pk_shared_slots")),
    )
    op.create_index(op.f("ix_shared_slots_patient"), "shared_slots", ["patient"], unique=False)
    op.create_table(
        "access_history",
        sa.Column("patient", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("previous", sa.LargeBinary(), nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("patient", "seq", name=op.f("pk_access_history")),
    )


def downgrade() -> None:
    op.drop_table("access_history")
    op.drop_index(op.f("ix_shared_slots_patient"), table_name="shared_slots")
    op.drop_table("shared_slots")
    op.drop_index("ix_consent_records_patient_request", table_name="consent_records")
    op.drop_table("consent_records")
    op.drop_table("patient_masks")
    op.drop_table("patient_blocks")
    op.drop_table("patient_thread_messages")
    op.drop_table("patient_threads")
    op.drop_table("patient_profiles")

"""Small envelopes live in the database, committed with their delivery.

Revision ID: store_0002
Revises: store_0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "store_0002"
down_revision: str | None = "store_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inline_blobs",
        sa.Column("digest", sa.Text(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_inline_blobs")),
    )


def downgrade() -> None:
    op.drop_table("inline_blobs")

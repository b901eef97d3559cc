"""Sign-in codes by SMS: the patient's phone beside the personal e-mail address.

Revision ID: store_0008
Revises: store_0007
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "store_0008"
down_revision: str | None = "store_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # batch mode: SQLite cannot ALTER a table in place for every change; alembic copies it.
    with op.batch_alter_table("webmail_preferences") as batch:
        batch.add_column(sa.Column("notify_phone", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webmail_preferences") as batch:
        batch.drop_column("notify_phone")

"""Key transparency log: state, leaves, perfect subtree nodes and signed tree heads.

Revision ID: dir_0002
Revises: dir_0001
Create Date: 2025-01-02

The tables of directory/transparency_tables.py (RFC 9162 §2.1 Merkle log). The state row of
the one log is created here with size 0, so the first append finds it like every other.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "dir_0002"
down_revision = "dir_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    state = op.create_table(
        "dir_keylog_state",
        sa.Column("id", sa.SmallInteger(), primary_key=True, autoincrement=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "dir_keylog_leaves",
        sa.Column("leaf_index", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("subject", sa.String(320), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )
    op.create_index("dir_keylog_leaves_subject", "dir_keylog_leaves", ["subject", "leaf_index"])
    op.create_table(
        "dir_keylog_nodes",
        sa.Column("node_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
    )
    op.create_table(
        "dir_keylog_heads",
        sa.Column("tree_size", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("log_id", sa.String(255), nullable=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("timestamp_ms", sa.BigInteger(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
    )
    op.bulk_insert(state, [{"id": 1, "tree_size": 0}])


def downgrade() -> None:
    for table in ("dir_keylog_heads", "dir_keylog_nodes", "dir_keylog_leaves", "dir_keylog_state"):
        op.drop_table(table)

"""SQL tables of the key transparency log (RFC 9162 §2.1 Merkle tree, signed tree heads).

Four tables on the directory's declarative base, created by migration ``dir_0002``:

- ``dir_keylog_state``: one row per log holding its size. Every append starts by
  incrementing it (``UPDATE … RETURNING``), which takes PostgreSQL's row lock or SQLite's
  write lock first, so concurrent appends are serialised and each gets its own index.
- ``dir_keylog_leaves``: the leaf data (canonical :class:`crypto.merkle.KeyLeaf` bytes) by
  index, with the subject (the address) indexed for lookups.
- ``dir_keylog_nodes``: every *perfect* subtree hash, ``(level, index)`` covering leaves
  ``[index * 2**level, (index + 1) * 2**level)``, under the one integer :func:`node_id`;
  level 0 holds the leaf hashes. About two rows per leaf; any proof or root then needs
  O(log n) of them, read with one primary-key ``IN`` (see :mod:`crypto.merkle`).
- ``dir_keylog_heads``: the signed tree head of every size, written in the append's
  transaction, so each size has exactly one head.

Rows are only ever inserted (and the state row incremented): the log is append-only.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, LargeBinary, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from directory.db import Base

__all__ = [
    "LOG_ROW_ID",
    "NODE_LEVEL_SHIFT",
    "node_id",
    "TransparencyState",
    "TransparencyLeaf",
    "TransparencyNode",
    "TransparencyHead",
]

LOG_ROW_ID = 1
"""The id of the one log's state row."""


class TransparencyState(Base):
    """The size of the log; the row every append locks first."""

    __tablename__ = "dir_keylog_state"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    tree_size: Mapped[int] = mapped_column(BigInteger, nullable=False)


class TransparencyLeaf(Base):
    """One leaf: its data and what it is about."""

    __tablename__ = "dir_keylog_leaves"

    leaf_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    subject: Mapped[str] = mapped_column(String(320), nullable=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)

    __table_args__ = (Index("dir_keylog_leaves_subject", "subject", "leaf_index"),)


NODE_LEVEL_SHIFT = 56
"""``node_id = level << 56 | index``: one integer key, so a proof's nodes are one ``IN``.

A row-value ``(level, index) IN (…)`` is planned as a table scan by SQLite, and an ``OR`` of
pairs costs more to build than to run; 2**56 leaves is far beyond any directory.
"""


def node_id(level: int, index: int) -> int:
    """The key of the perfect node ``(level, index)`` in ``dir_keylog_nodes``."""
    if not (0 <= level < 64 and 0 <= index < 1 << NODE_LEVEL_SHIFT):
        raise ValueError(f"node ({level}, {index}) is out of range")
    return level << NODE_LEVEL_SHIFT | index


class TransparencyNode(Base):
    """The hash of a perfect subtree (level 0: a leaf hash), keyed by :func:`node_id`."""

    __tablename__ = "dir_keylog_nodes"

    node_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)


class TransparencyHead(Base):
    """The signed tree head of one size."""

    __tablename__ = "dir_keylog_heads"

    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    log_id: Mapped[str] = mapped_column(String(255), nullable=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    timestamp_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    signature: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)

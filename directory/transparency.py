"""The directory's key transparency log: an append-only Merkle log with signed tree heads.

Implements the log side of RFC 9162 §2.1 (hashing, inclusion proofs §2.1.3, consistency
proofs §2.1.4; the Merkle arithmetic lives in :mod:`crypto.merkle`) with tree heads signed
by the operator's log key (after RFC 9162 §4.10, Ed25519 over a domain-separated encoding).

Implementation notes:

- **Storage.** A :class:`LogStorage` keeps leaf data, every perfect subtree hash (the
  *nodes*: level 0 are leaf hashes, about 2n rows in all) and one signed head per size.
  Perfect nodes never change once complete, so storing them is append-only too, and every
  proof or historical root needs O(log n) node reads (one query), never a scan of the
  leaves. Appending reads the O(log n) *frontier* nodes and writes the nodes the new leaf
  completes. :class:`InMemoryLogStorage` is the reference; :class:`SqlLogStorage` runs on
  SQLite and PostgreSQL and passes the same tests.
- **Serialised appends.** An append is one transaction that first increments the log's
  size row (``UPDATE … RETURNING``): on PostgreSQL that row lock, on SQLite the database
  write lock, makes concurrent appends (tasks or processes) queue, so each gets the next
  index; the leaf and node primary keys back that up, and a conflicting transaction is
  retried. The head of the new size is signed and stored in the same transaction, so no
  leaf exists without a head. Each size keeps one stored head; :meth:`TransparencyLog.
  refresh_head` replaces the current size's head with a fresher signature of the same root,
  so that clients may refuse old heads without a quiet log looking stale.
- **Read-modify-append.** The caller's ``build`` callback receives the subject's latest
  entry *inside* that transaction, so per-address numbering (rotation sequence numbers) is
  race-free without a lock of its own.
- Proof assembly (which nodes, how to fold them) is in :class:`TransparencyLog`, above the
  storages, so both storages give the same proofs by construction; the tests still compare.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from crypto.keys import SigningKey, SigningPublicKey
from crypto.merkle import (
    EMPTY_ROOT,
    Node,
    SignedTreeHead,
    consistency_ranges,
    extend,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    perfect_nodes,
    range_hash,
    sign_tree_head,
)
from directory.transparency_tables import (
    LOG_ROW_ID,
    TransparencyHead,
    TransparencyLeaf,
    TransparencyNode,
    TransparencyState,
    node_id,
)
from messaging.errors import NotFound, Unavailable
from messaging.ports import Clock
from messaging.transparency import ConsistencyProof, InclusionProof

__all__ = [
    "AppendResult",
    "LogEntry",
    "LeafBuilder",
    "HeadSigner",
    "LogStorage",
    "InMemoryLogStorage",
    "SqlLogStorage",
    "TransparencyLog",
    "root_from_frontier",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One leaf of the log: its index, what it is about, and its data."""

    index: int
    subject: str
    data: bytes


LeafBuilder = Callable[[LogEntry | None], bytes]
"""Builds the next leaf's data from the subject's latest entry (None for a first one)."""

HeadSigner = Callable[[int, bytes], SignedTreeHead]
"""Signs the head of the tree of ``(size, root)``."""


class LogStorage(Protocol):
    """Where a :class:`TransparencyLog` keeps leaves, perfect nodes and signed heads."""

    async def append(
        self, subject: str, build: LeafBuilder, sign: HeadSigner
    ) -> tuple[LogEntry, SignedTreeHead]:
        """Append ``build(latest entry of subject)`` as the next leaf, atomically.

        Stores the leaf, the perfect nodes it completes and ``sign(new size, new root)``.
        Concurrent appends are serialised; an exception from ``build`` or ``sign`` appends
        nothing.
        """
        ...

    async def append_many(
        self, items: Sequence[tuple[str, bytes]], sign: HeadSigner
    ) -> SignedTreeHead:
        """Append ``(subject, data)`` leaves in one transaction, with one head at the end."""
        ...

    async def resign(self, sign: HeadSigner) -> SignedTreeHead:
        """Sign the current tree again (a fresh timestamp) and store it as its size's head.

        Serialised with appends. The root is unchanged, so every client accepts the new
        head; it exists so that clients can refuse heads older than a maximum age.
        """
        ...

    async def size(self) -> int: ...

    async def head(self, tree_size: int | None = None) -> SignedTreeHead | None:
        """The stored head of ``tree_size`` leaves (the largest by default), or None."""
        ...

    async def nodes(self, wanted: Collection[Node]) -> dict[Node, bytes]:
        """The hashes of the wanted perfect nodes that exist."""
        ...

    async def entries(self, start: int, end: int) -> list[LogEntry]:
        """Entries with ``start <= index < end``, in order."""
        ...

    async def latest(self, subject: str, *, before: int | None = None) -> LogEntry | None:
        """The subject's entry of largest index (below ``before`` if given)."""
        ...

    async def history(self, subject: str) -> list[LogEntry]:
        """Every entry of the subject, oldest first."""
        ...

    async def close(self) -> None: ...


def _apply(
    size: int, frontier: list[bytes], data: bytes
) -> tuple[list[tuple[Node, bytes]], bytes, list[bytes]]:
    """Append one leaf to a tree given by its frontier; return nodes, root, new frontier."""
    created, root = extend(size, frontier, leaf_hash(data))
    merged = len(created) - 1
    new_frontier = frontier[: len(frontier) - merged] + [created[-1][1]]
    return created, root, new_frontier


def root_from_frontier(frontier: Sequence[bytes]) -> bytes:
    """The root of a tree from the hashes of its frontier (its perfect nodes, left first)."""
    if not frontier:
        return EMPTY_ROOT
    root = frontier[-1]
    for left in reversed(frontier[:-1]):
        root = node_hash(left, root)
    return root


class InMemoryLogStorage:
    """The reference storage: lists and dictionaries, lost when the process ends."""

    def __init__(self) -> None:
        self._entries: list[LogEntry] = []
        self._by_subject: dict[str, list[int]] = {}
        self._nodes: dict[Node, bytes] = {}
        self._heads: dict[int, SignedTreeHead] = {}

    def _frontier(self, size: int) -> list[bytes]:
        return [self._nodes[n] for n in perfect_nodes(0, size)] if size else []

    def _store(self, subject: str, data: bytes, created: list[tuple[Node, bytes]]) -> LogEntry:
        entry = LogEntry(len(self._entries), subject, data)
        self._entries.append(entry)
        self._by_subject.setdefault(subject, []).append(entry.index)
        self._nodes.update(created)
        return entry

    async def append(
        self, subject: str, build: LeafBuilder, sign: HeadSigner
    ) -> tuple[LogEntry, SignedTreeHead]:
        # No await between reading and writing: the event loop cannot interleave appends.
        size = len(self._entries)
        data = build(self._latest(subject, size))
        created, root, _ = _apply(size, self._frontier(size), data)
        head = sign(size + 1, root)
        entry = self._store(subject, data, created)
        self._heads[head.tree_size] = head
        return entry, head

    async def append_many(
        self, items: Sequence[tuple[str, bytes]], sign: HeadSigner
    ) -> SignedTreeHead:
        if not items:
            raise ValueError("nothing to append")
        size = len(self._entries)
        frontier = self._frontier(size)
        pending: list[tuple[str, bytes, list[tuple[Node, bytes]]]] = []
        root = b""
        for offset, (subject, data) in enumerate(items):
            created, root, frontier = _apply(size + offset, frontier, data)
            pending.append((subject, data, created))
        head = sign(size + len(pending), root)
        for subject, data, created in pending:
            self._store(subject, data, created)
        self._heads[head.tree_size] = head
        return head

    async def resign(self, sign: HeadSigner) -> SignedTreeHead:
        size = len(self._entries)
        head = sign(size, root_from_frontier(self._frontier(size)))
        self._heads[size] = head
        return head

    async def size(self) -> int:
        return len(self._entries)

    async def head(self, tree_size: int | None = None) -> SignedTreeHead | None:
        if tree_size is None:
            return self._heads[max(self._heads)] if self._heads else None
        return self._heads.get(tree_size)

    async def nodes(self, wanted: Collection[Node]) -> dict[Node, bytes]:
        return {n: self._nodes[n] for n in wanted if n in self._nodes}

    async def entries(self, start: int, end: int) -> list[LogEntry]:
        return self._entries[max(start, 0) : max(end, 0)]

    def _latest(self, subject: str, before: int) -> LogEntry | None:
        for index in reversed(self._by_subject.get(subject, [])):
            if index < before:
                return self._entries[index]
        return None

    async def latest(self, subject: str, *, before: int | None = None) -> LogEntry | None:
        return self._latest(subject, len(self._entries) if before is None else before)

    async def history(self, subject: str) -> list[LogEntry]:
        return [self._entries[i] for i in self._by_subject.get(subject, [])]

    async def close(self) -> None:
        return None


_INSERT_CHUNK = 5000


class SqlLogStorage:
    """The log in the directory's database (SQLite or PostgreSQL through SQLAlchemy).

    The engine belongs to the caller, who disposes of it. Tables come from migration
    ``dir_0002`` (or ``Base.metadata.create_all`` in tests).
    """

    def __init__(self, engine: AsyncEngine, *, retries: int = 8) -> None:
        self._engine = engine
        self._retries = retries

    async def _reserve(self, conn: AsyncConnection, count: int) -> int:
        """Take the log's lock, grow it by ``count`` leaves (0: only lock); return the old size."""
        result = await conn.execute(
            update(TransparencyState)
            .where(TransparencyState.id == LOG_ROW_ID)
            .values(tree_size=TransparencyState.tree_size + count)
            .returning(TransparencyState.tree_size)
        )
        new_size = result.scalar_one_or_none()
        if new_size is None:
            # First append ever: a racing first append makes this insert fail, and retry.
            await conn.execute(insert(TransparencyState).values(id=LOG_ROW_ID, tree_size=count))
            return 0
        return int(new_size) - count

    async def _nodes(self, conn: AsyncConnection, wanted: Collection[Node]) -> dict[Node, bytes]:
        if not wanted:
            return {}
        by_id = {node_id(n.level, n.index): n for n in wanted}
        result = await conn.execute(
            select(TransparencyNode.node_id, TransparencyNode.hash).where(
                TransparencyNode.node_id.in_(list(by_id))
            )
        )
        return {by_id[key]: value for key, value in result.all()}

    async def _frontier(self, conn: AsyncConnection, size: int) -> list[bytes]:
        if size == 0:
            return []
        wanted = perfect_nodes(0, size)
        found = await self._nodes(conn, wanted)
        if len(found) != len(wanted):
            raise Unavailable(f"the log's nodes for size {size} are incomplete")
        return [found[n] for n in wanted]

    async def _latest(
        self, conn: AsyncConnection, subject: str, before: int | None
    ) -> LogEntry | None:
        query = select(
            TransparencyLeaf.leaf_index, TransparencyLeaf.subject, TransparencyLeaf.data
        ).where(TransparencyLeaf.subject == subject)
        if before is not None:
            query = query.where(TransparencyLeaf.leaf_index < before)
        row = (
            await conn.execute(query.order_by(TransparencyLeaf.leaf_index.desc()).limit(1))
        ).first()
        return None if row is None else LogEntry(row[0], row[1], row[2])

    async def _write(
        self,
        conn: AsyncConnection,
        leaves: list[dict[str, object]],
        nodes: list[dict[str, object]],
        head: SignedTreeHead,
    ) -> None:
        for start in range(0, len(leaves), _INSERT_CHUNK):
            await conn.execute(insert(TransparencyLeaf), leaves[start : start + _INSERT_CHUNK])
        for start in range(0, len(nodes), _INSERT_CHUNK):
            await conn.execute(insert(TransparencyNode), nodes[start : start + _INSERT_CHUNK])
        await conn.execute(
            insert(TransparencyHead).values(
                tree_size=head.tree_size,
                log_id=head.log_id,
                root_hash=head.root_hash,
                timestamp_ms=head.timestamp_ms,
                signature=head.signature,
            )
        )

    async def append(
        self, subject: str, build: LeafBuilder, sign: HeadSigner
    ) -> tuple[LogEntry, SignedTreeHead]:
        for attempt in range(self._retries):
            try:
                async with self._engine.begin() as conn:
                    size = await self._reserve(conn, 1)
                    data = build(await self._latest(conn, subject, size))
                    created, root, _ = _apply(size, await self._frontier(conn, size), data)
                    head = sign(size + 1, root)
                    await self._write(
                        conn,
                        [{"leaf_index": size, "subject": subject, "data": data}],
                        _node_rows(created),
                        head,
                    )
                return LogEntry(size, subject, data), head
            except IntegrityError:
                if attempt == self._retries - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def append_many(
        self, items: Sequence[tuple[str, bytes]], sign: HeadSigner
    ) -> SignedTreeHead:
        if not items:
            raise ValueError("nothing to append")
        async with self._engine.begin() as conn:
            size = await self._reserve(conn, len(items))
            frontier = await self._frontier(conn, size)
            leaves: list[dict[str, object]] = []
            nodes: list[tuple[Node, bytes]] = []
            root = b""
            for offset, (subject, data) in enumerate(items):
                created, root, frontier = _apply(size + offset, frontier, data)
                leaves.append({"leaf_index": size + offset, "subject": subject, "data": data})
                nodes.extend(created)
            head = sign(size + len(items), root)
            await self._write(conn, leaves, _node_rows(nodes), head)
        return head

    async def resign(self, sign: HeadSigner) -> SignedTreeHead:
        for attempt in range(self._retries):
            try:
                async with self._engine.begin() as conn:
                    size = await self._reserve(conn, 0)
                    head = sign(size, root_from_frontier(await self._frontier(conn, size)))
                    values = {
                        "log_id": head.log_id,
                        "root_hash": head.root_hash,
                        "timestamp_ms": head.timestamp_ms,
                        "signature": head.signature,
                    }
                    updated = await conn.execute(
                        update(TransparencyHead)
                        .where(TransparencyHead.tree_size == size)
                        .values(**values)
                    )
                    if updated.rowcount == 0:
                        await conn.execute(
                            insert(TransparencyHead).values(tree_size=size, **values)
                        )
                return head
            except IntegrityError:
                if attempt == self._retries - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def size(self) -> int:
        async with self._engine.connect() as conn:
            value = await conn.scalar(
                select(TransparencyState.tree_size).where(TransparencyState.id == LOG_ROW_ID)
            )
        return 0 if value is None else int(value)

    async def head(self, tree_size: int | None = None) -> SignedTreeHead | None:
        query = select(TransparencyHead)
        if tree_size is None:
            query = query.order_by(TransparencyHead.tree_size.desc()).limit(1)
        else:
            query = query.where(TransparencyHead.tree_size == tree_size)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return SignedTreeHead(
            row.log_id, row.tree_size, row.root_hash, row.timestamp_ms, row.signature
        )

    async def nodes(self, wanted: Collection[Node]) -> dict[Node, bytes]:
        async with self._engine.connect() as conn:
            return await self._nodes(conn, wanted)

    async def entries(self, start: int, end: int) -> list[LogEntry]:
        query = (
            select(TransparencyLeaf.leaf_index, TransparencyLeaf.subject, TransparencyLeaf.data)
            .where(TransparencyLeaf.leaf_index >= start, TransparencyLeaf.leaf_index < end)
            .order_by(TransparencyLeaf.leaf_index)
        )
        async with self._engine.connect() as conn:
            return [LogEntry(i, s, d) for i, s, d in (await conn.execute(query)).all()]

    async def latest(self, subject: str, *, before: int | None = None) -> LogEntry | None:
        async with self._engine.connect() as conn:
            return await self._latest(conn, subject, before)

    async def history(self, subject: str) -> list[LogEntry]:
        query = (
            select(TransparencyLeaf.leaf_index, TransparencyLeaf.subject, TransparencyLeaf.data)
            .where(TransparencyLeaf.subject == subject)
            .order_by(TransparencyLeaf.leaf_index)
        )
        async with self._engine.connect() as conn:
            return [LogEntry(i, s, d) for i, s, d in (await conn.execute(query)).all()]

    async def close(self) -> None:
        """Nothing to release: the engine is the caller's."""
        return None


def _node_rows(nodes: Iterable[tuple[Node, bytes]]) -> list[dict[str, object]]:
    return [{"node_id": node_id(n.level, n.index), "hash": value} for n, value in nodes]


@dataclass(frozen=True, slots=True)
class AppendResult:
    """A leaf just appended and the signed head of the tree that ends with it."""

    entry: LogEntry
    head: SignedTreeHead


class TransparencyLog:
    """The operator's log: appends leaves, signs heads, serves proofs.

    ``log_id`` names the log in every head (clients check it); ``key`` is the operator's
    log signing key, whose public half clients pin.
    """

    def __init__(self, storage: LogStorage, key: SigningKey, *, log_id: str, clock: Clock) -> None:
        self._storage = storage
        self._key = key
        self._log_id = log_id
        self._clock = clock

    @property
    def log_id(self) -> str:
        return self._log_id

    @property
    def public_key(self) -> SigningPublicKey:
        return self._key.public

    def _sign(self, tree_size: int, root: bytes) -> SignedTreeHead:
        now_ms = (self._clock.now() - _EPOCH) // timedelta(milliseconds=1)
        return sign_tree_head(
            self._key,
            log_id=self._log_id,
            tree_size=tree_size,
            root_hash=root,
            timestamp_ms=now_ms,
        )

    async def append(self, subject: str, build: LeafBuilder) -> AppendResult:
        """Append the leaf ``build`` makes from the subject's latest entry; sign the head."""
        entry, head = await self._storage.append(subject, build, self._sign)
        return AppendResult(entry, head)

    async def append_many(self, items: Sequence[tuple[str, bytes]]) -> SignedTreeHead:
        """Append many prepared leaves at once (an initial load); one head at the end."""
        return await self._storage.append_many(items, self._sign)

    async def size(self) -> int:
        return await self._storage.size()

    async def refresh_head(self) -> SignedTreeHead:
        """Re-sign the current tree with the current time (run periodically: a quiet log's
        head would otherwise age past the clients' maximum age)."""
        return await self._storage.resign(self._sign)

    async def latest_head(self) -> SignedTreeHead:
        """The head of the largest size; for an empty log, a fresh head of the empty tree."""
        head = await self._storage.head()
        return self._sign(0, EMPTY_ROOT) if head is None else head

    async def head(self, tree_size: int) -> SignedTreeHead:
        """The head signed for ``tree_size`` leaves; :class:`NotFound` if none was."""
        head = await self._storage.head(tree_size)
        if head is None:
            raise NotFound(f"no tree head of size {tree_size}")
        return head

    async def _subtree_hashes(
        self, tree_size: int, *groups: list[tuple[int, int]]
    ) -> list[tuple[bytes, ...]]:
        """The hashes of the subtrees of each group, read in one query.

        The last leaf of ``tree_size`` is read too: it exists exactly when the log has that
        many leaves, so no separate size query is needed.
        """
        last = Node(0, tree_size - 1)
        wanted = {
            n for ranges in groups for start, end in ranges for n in perfect_nodes(start, end)
        }
        found = await self._storage.nodes(wanted | {last})
        if last not in found:
            raise NotFound(f"the log has fewer than {tree_size} leaves")
        if len(found) != len(wanted | {last}):
            raise Unavailable("the log's stored nodes are incomplete")
        return [tuple(range_hash(start, end, found) for start, end in ranges) for ranges in groups]

    async def proofs(
        self, index: int, tree_size: int, old_size: int | None = None
    ) -> tuple[InclusionProof, ConsistencyProof | None]:
        """The inclusion proof of leaf ``index`` and, if ``old_size`` is given, the consistency
        proof from ``old_size`` leaves, both in the tree of ``tree_size`` leaves."""
        if not 0 <= index < tree_size:
            raise NotFound(f"no leaf {index} in a tree of {tree_size} leaves")
        if old_size is not None and not 0 <= old_size <= tree_size:
            raise NotFound(f"no consistency proof from {old_size} to {tree_size} leaves")
        groups = [inclusion_ranges(index, tree_size)]
        if old_size is not None:
            groups.append(consistency_ranges(old_size, tree_size))
        hashes = await self._subtree_hashes(tree_size, *groups)
        inclusion = InclusionProof(index, tree_size, hashes[0])
        if old_size is None:
            return inclusion, None
        return inclusion, ConsistencyProof(old_size, tree_size, hashes[1])

    async def inclusion_proof(self, index: int, tree_size: int) -> InclusionProof:
        """The audit path of leaf ``index`` in the tree of ``tree_size`` leaves."""
        inclusion, _ = await self.proofs(index, tree_size)
        return inclusion

    async def consistency_proof(self, old_size: int, new_size: int) -> ConsistencyProof:
        """Proof that the tree of ``old_size`` leaves is a prefix of that of ``new_size``."""
        if not 0 <= old_size <= new_size:
            raise NotFound(f"no consistency proof from {old_size} to {new_size} leaves")
        if new_size == 0:
            return ConsistencyProof(0, 0, ())
        (path,) = await self._subtree_hashes(new_size, consistency_ranges(old_size, new_size))
        return ConsistencyProof(old_size, new_size, path)

    async def root(self, tree_size: int) -> bytes:
        """The root of the tree of ``tree_size`` leaves, computed from the stored nodes."""
        if tree_size < 0:
            raise NotFound(f"no tree of {tree_size} leaves")
        if tree_size == 0:
            return EMPTY_ROOT
        ((root,),) = await self._subtree_hashes(tree_size, [(0, tree_size)])
        return root

    async def entries(self, start: int, end: int) -> list[LogEntry]:
        """Leaves ``start <= index < end`` for auditors and monitors."""
        return await self._storage.entries(start, end)

    async def latest(self, subject: str, *, before: int | None = None) -> LogEntry | None:
        return await self._storage.latest(subject, before=before)

    async def history(self, subject: str) -> list[LogEntry]:
        return await self._storage.history(subject)

"""Merkle tree hashing, proofs and signed tree heads of the key transparency log.

Implements RFC 9162 §2.1 (Certificate Transparency 2.0, which keeps RFC 6962 §2.1 hashing):

- **Hashing** (RFC 9162 §2.1.1, RFC 6962 §2.1): leaf hash = SHA-256(0x00 || data), interior
  node hash = SHA-256(0x01 || left || right), the hash of the empty tree = SHA-256(""). A
  tree of n > 1 leaves splits at k, the largest power of two smaller than n: the left
  subtree holds k leaves and is always perfect.
- **Inclusion proofs** (audit paths): generation after PATH of RFC 9162 §2.1.3.1,
  verification exactly as the algorithm of §2.1.3.2.
- **Consistency proofs**: generation after SUBPROOF of RFC 9162 §2.1.4.1, verification
  exactly as the algorithm of §2.1.4.2. The algorithm is defined for 0 < old < new only; the
  two edge cases are decided here: between equal sizes the proof must be empty and the
  roots equal, and from the empty tree the proof must be empty and the old root the empty
  hash (every tree extends the empty tree).

Implementation notes:

- Proofs are computed from **perfect subtrees**. A node ``(level, index)`` is the hash of the
  2**level leaves starting at ``index * 2**level``; once its last leaf is appended it never
  changes. Every subtree a proof names is either such a node or the right edge of the tree,
  and a right edge splits into at most log2(n) perfect nodes (the binary digits of its
  width, largest first, folded right to left). A log that stores every perfect node (about
  two per leaf) answers any proof or historical root with O(log n) lookups:
  :func:`inclusion_ranges` and :func:`consistency_ranges` say which subtrees a proof holds,
  :func:`perfect_nodes` which stored nodes each needs, :func:`range_hash` folds them.
- Appending leaf n completes the nodes whose range ends at n + 1, each the hash of a node of
  the *frontier* (the perfect nodes covering [0, n)) and the node just completed:
  :func:`extend` needs only the frontier, so a log appends in O(log n).
- **Signed tree heads** (after RFC 9162 §4.10, with Ed25519 instead of the TLS structures).
  What is signed is domain-separated and fixed-width::

      "pli-sth-v1" 0x00 | u16 len | log id (UTF-8) | u64 tree size | u64 timestamp (ms) | root

  so a tree head signature can never be mistaken for an envelope or leaf signature made
  with the same library. The serialised head is these bytes, then u16 len | signature.
- **Key leaves**: the data of each leaf of the directory's log, a key publication,
  rotation or revocation::

      "pli-key-leaf-v1" 0x00 | u8 status | u64 sequence | u64 timestamp (ms)
                             | u16 len | address (UTF-8) | 32 X25519 key | 32 Ed25519 key

  Every encoding here is canonical: one value has exactly one byte string, and parsing
  refuses trailing bytes, unknown versions and statuses, so that a leaf hash names one
  publication.
- Verification functions return ``bool`` and never raise on hostile input (wrong lengths,
  negative sizes, too long or too short paths); callers decide what a refusal means.
- Comparisons of hashes use :func:`hmac.compare_digest`; nothing here is secret, but it costs
  nothing and keeps reviewers from having to argue about it.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from crypto.errors import CryptoError
from crypto.keys import (
    EncryptionPublicKey,
    SigningKey,
    SigningPublicKey,
    verify_signature,
)

__all__ = [
    "HASH_SIZE",
    "EMPTY_ROOT",
    "LogFormatError",
    "Node",
    "leaf_hash",
    "node_hash",
    "root_from_leaves",
    "root_from_leaf_hashes",
    "verify_inclusion",
    "verify_consistency",
    "inclusion_ranges",
    "consistency_ranges",
    "perfect_nodes",
    "range_hash",
    "extend",
    "MerkleTree",
    "SignedTreeHead",
    "sign_tree_head",
    "verify_tree_head",
    "KeyStatus",
    "KeyLeaf",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}) = SHA-256() (RFC 9162 §2.1.1)."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_STH_DOMAIN = b"pli-sth-v1\x00"
_LEAF_DOMAIN = b"pli-key-leaf-v1\x00"
_U64_MAX = 2**64 - 1
_U16_MAX = 2**16 - 1


class LogFormatError(CryptoError, ValueError):
    """Bytes that are not a canonical tree head or key leaf, or a value that has none."""


@dataclass(frozen=True, slots=True, order=True)
class Node:
    """A perfect subtree: the 2**level leaves from ``index * 2**level``."""

    level: int
    index: int


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d) (RFC 9162 §2.1.1)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || MTH(left) || MTH(right)) (RFC 9162 §2.1.1)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def root_from_leaf_hashes(hashes: Iterable[bytes]) -> bytes:
    """The Merkle tree hash of leaves given by their leaf hashes, in O(n) with a stack."""
    # The stack holds the frontier: perfect subtree roots, levels strictly decreasing.
    stack: list[tuple[int, bytes]] = []
    for h in hashes:
        level, value = 0, h
        while stack and stack[-1][0] == level:
            _, left = stack.pop()
            value = node_hash(left, value)
            level += 1
        stack.append((level, value))
    if not stack:
        return EMPTY_ROOT
    # The right edge folds right to left: a smaller subtree is the right child.
    root = stack[-1][1]
    for _, left in reversed(stack[:-1]):
        root = node_hash(left, root)
    return root


def root_from_leaves(leaves: Iterable[bytes]) -> bytes:
    """MTH(D[n]) of the leaf data ``leaves`` (RFC 9162 §2.1.1)."""
    return root_from_leaf_hashes(leaf_hash(d) for d in leaves)


def _is_bytes(value: object) -> bool:
    return isinstance(value, bytes)


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _valid_path(path: object) -> bool:
    return isinstance(path, Sequence) and all(_is_hash(p) for p in path)


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _U64_MAX


def verify_inclusion(
    leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``proof`` shows leaf data ``leaf`` at ``index`` in the tree of ``root``.

    The algorithm of RFC 9162 §2.1.3.2, step by step.
    """
    if not (_is_bytes(leaf) and _is_size(index) and _is_size(tree_size)):
        return False
    if not (_valid_path(proof) and _is_hash(root)):
        return False
    # 1. leaf_index >= tree_size fails.
    if index >= tree_size:
        return False
    # 2. fn = leaf_index, sn = tree_size - 1.
    fn, sn = index, tree_size - 1
    # 3. r = hash.
    r = leaf_hash(leaf)
    # 4. For each p in the path:
    for p in proof:
        # a. sn == 0: the path is too long.
        if sn == 0:
            return False
        # b. p is a left sibling when fn is a right child or the last node of its level.
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # ii. skip the levels where the node had no right sibling.
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        # c.
        fn >>= 1
        sn >>= 1
    # 5. sn == 0 and r == root_hash.
    return sn == 0 and hmac.compare_digest(r, root)


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows the tree (old_size, old_root) is a prefix of (new_size, new_root).

    The algorithm of RFC 9162 §2.1.4.2 for 0 < old_size < new_size; equal sizes need an
    empty proof and equal roots; from the empty tree, an empty proof and the empty root.
    """
    if not (_is_size(old_size) and _is_size(new_size)):
        return False
    if not (_valid_path(proof) and _is_hash(old_root) and _is_hash(new_root)):
        return False
    if old_size > new_size:
        return False
    if old_size == new_size:
        return len(proof) == 0 and hmac.compare_digest(old_root, new_root)
    if old_size == 0:
        return len(proof) == 0 and hmac.compare_digest(old_root, EMPTY_ROOT)
    # 1. An empty path fails.
    if len(proof) == 0:
        return False
    path = list(proof)
    # 2. If first is an exact power of 2, prepend first_hash.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    # 3.
    fn, sn = old_size - 1, new_size - 1
    # 4. Skip the levels where the old tree's last node is a right child.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5.
    fr = sr = path[0]
    # 6.
    for c in path[1:]:
        # a.
        if sn == 0:
            return False
        # b.
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        # c.
        fn >>= 1
        sn >>= 1
    # 7.
    return sn == 0 and hmac.compare_digest(fr, old_root) and hmac.compare_digest(sr, new_root)


def _split(n: int) -> int:
    """k, the largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_ranges(index: int, tree_size: int) -> list[tuple[int, int]]:
    """The subtrees [start, end) whose hashes form the audit path of leaf ``index``.

    PATH(m, D[n]) of RFC 9162 §2.1.3.1, in proof order (the leaf's sibling first).
    """
    if not 0 <= index < tree_size:
        raise ValueError(f"leaf {index} is not in a tree of {tree_size} leaves")
    ranges: list[tuple[int, int]] = []
    start, end, m = 0, tree_size, index
    # Walk down from the root; each step records the sibling subtree, then reverse.
    while end - start > 1:
        k = _split(end - start)
        if m < k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start, m = start + k, m - k
    ranges.reverse()
    return ranges


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The subtrees [start, end) whose hashes form PROOF(old_size, D[new_size]).

    SUBPROOF of RFC 9162 §2.1.4.1, in proof order; empty when the sizes are equal or the
    old tree is empty (see :func:`verify_consistency`).
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from {old_size} to {new_size} leaves")
    if old_size in (0, new_size):
        return []
    ranges: list[tuple[int, int]] = []
    start, end, m, complete = 0, new_size, old_size, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start, m, complete = start + k, m - k, False
    # SUBPROOF(m, D[m], false) = {MTH(D[m])}; with b true it is empty.
    if not complete:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def perfect_nodes(start: int, end: int) -> list[Node]:
    """The perfect nodes that make up the subtree [start, end), left to right.

    ``start`` must be a multiple of the largest power of two not smaller than the width,
    which holds for every subtree of RFC 9162's split (and for [0, n)).
    """
    width = end - start
    if width <= 0:
        raise ValueError(f"empty range [{start}, {end})")
    span = 1 << (width - 1).bit_length()
    if start % span:
        raise ValueError(f"[{start}, {end}) is not a subtree of a Merkle tree")
    nodes: list[Node] = []
    position = start
    for level in range(width.bit_length() - 1, -1, -1):
        if width >> level & 1:
            nodes.append(Node(level, position >> level))
            position += 1 << level
    return nodes


def range_hash(start: int, end: int, nodes: Mapping[Node, bytes]) -> bytes:
    """MTH(D[start:end]) from the hashes of its :func:`perfect_nodes`."""
    parts = perfect_nodes(start, end)
    value = nodes[parts[-1]]
    for part in reversed(parts[:-1]):
        value = node_hash(nodes[part], value)
    return value


def extend(
    tree_size: int, frontier: Sequence[bytes], new_leaf_hash: bytes
) -> tuple[list[tuple[Node, bytes]], bytes]:
    """Append one leaf to a tree of ``tree_size`` leaves.

    ``frontier`` holds the hashes of ``perfect_nodes(0, tree_size)`` (empty for an empty
    tree). Returns the perfect nodes completed by the new leaf (the leaf itself first) and the
    root of the tree of ``tree_size + 1`` leaves.
    """
    expected = perfect_nodes(0, tree_size) if tree_size else []
    if len(frontier) != len(expected):
        raise ValueError("the frontier does not match the tree size")
    new = tree_size + 1
    created = [(Node(0, tree_size), new_leaf_hash)]
    # The frontier's nodes that the new leaf completes are its smallest ones, one per
    # trailing 1 bit of tree_size; each is the left sibling of the node just built.
    remaining = list(frontier)
    value = new_leaf_hash
    level = 0
    while new >> level & 1 == 0:
        value = node_hash(remaining.pop(), value)
        level += 1
        created.append((Node(level, (new >> level) - 1), value))
    remaining.append(value)
    root = remaining[-1]
    for left in reversed(remaining[:-1]):
        root = node_hash(left, root)
    return created, root


class MerkleTree:
    """An in-memory, append-only Merkle tree that keeps every perfect node.

    The reference the logs are tested against and a convenience for tests and tools; the
    directory's log keeps the same nodes in SQL.
    """

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        for data in leaves:
            self.append(data)

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def append(self, data: bytes) -> int:
        """Add leaf data; return its index."""
        index = self.size
        frontier = [self.node(n) for n in perfect_nodes(0, index)] if index else []
        created, _ = extend(index, frontier, leaf_hash(data))
        for node, value in created:
            if node.level == len(self._levels):
                self._levels.append([])
            self._levels[node.level].append(value)
        return index

    def node(self, node: Node) -> bytes:
        """The hash of a completed perfect node; IndexError when it is not complete."""
        return self._levels[node.level][node.index]

    def _hashes(self, ranges: Iterable[tuple[int, int]]) -> list[bytes]:
        ranges = list(ranges)
        needed = {n for start, end in ranges for n in perfect_nodes(start, end)}
        nodes = {n: self.node(n) for n in needed}
        return [range_hash(start, end, nodes) for start, end in ranges]

    def _check_size(self, tree_size: int) -> None:
        if not 0 <= tree_size <= self.size:
            raise ValueError(f"the tree has {self.size} leaves, not {tree_size}")

    def root(self, tree_size: int | None = None) -> bytes:
        """The root of the first ``tree_size`` leaves (all of them by default)."""
        size = self.size if tree_size is None else tree_size
        self._check_size(size)
        return self._hashes([(0, size)])[0] if size else EMPTY_ROOT

    def inclusion_proof(self, index: int, tree_size: int | None = None) -> list[bytes]:
        size = self.size if tree_size is None else tree_size
        self._check_size(size)
        return self._hashes(inclusion_ranges(index, size))

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        size = self.size if new_size is None else new_size
        self._check_size(size)
        return self._hashes(consistency_ranges(old_size, size))


# --- Signed tree heads ------------------------------------------------------------------


def _check_u64(value: int, what: str) -> None:
    if not _is_size(value):
        raise LogFormatError(f"{what} must be an integer in [0, 2**64)")


def _encode_text(text: object, what: str) -> bytes:
    if not isinstance(text, str) or not text:
        raise LogFormatError(f"{what} must be a non-empty string")
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LogFormatError(f"{what} is not valid UTF-8 text") from exc
    if len(raw) > _U16_MAX:
        raise LogFormatError(f"{what} is too long")
    return struct.pack(">H", len(raw)) + raw


class _Reader:
    """Strict cursor over bytes being parsed; every shortfall is a LogFormatError."""

    def __init__(self, data: bytes, what: str) -> None:
        if not isinstance(data, bytes):
            raise LogFormatError(f"{what} must be bytes")
        self._data = data
        self._at = 0
        self._what = what

    def take(self, n: int) -> bytes:
        if self._at + n > len(self._data):
            raise LogFormatError(f"{self._what} is truncated")
        chunk = self._data[self._at : self._at + n]
        self._at += n
        return chunk

    def u8(self) -> int:
        value: int = self.take(1)[0]
        return value

    def u16(self) -> int:
        value: int = struct.unpack(">H", self.take(2))[0]
        return value

    def u64(self) -> int:
        value: int = struct.unpack(">Q", self.take(8))[0]
        return value

    def text(self, what: str) -> str:
        raw = self.take(self.u16())
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LogFormatError(f"{what} is not valid UTF-8") from exc
        if not text:
            raise LogFormatError(f"{what} is empty")
        return text

    def end(self) -> None:
        if self._at != len(self._data):
            raise LogFormatError(f"{self._what} has trailing bytes")


@dataclass(frozen=True, slots=True)
class SignedTreeHead:
    """A log's signed statement "my tree of ``tree_size`` leaves has root ``root_hash``".

    ``timestamp_ms`` is milliseconds since the Unix epoch (UTC) when the head was signed.
    Construction checks the shape of every field; :func:`verify_tree_head` checks the
    signature.
    """

    log_id: str
    tree_size: int
    root_hash: bytes
    timestamp_ms: int
    signature: bytes

    def __post_init__(self) -> None:
        _encode_text(self.log_id, "the log id")
        _check_u64(self.tree_size, "the tree size")
        _check_u64(self.timestamp_ms, "the timestamp")
        if not _is_hash(self.root_hash):
            raise LogFormatError(f"the root hash must be {HASH_SIZE} bytes")
        if not _is_bytes(self.signature) or len(self.signature) > _U16_MAX:
            raise LogFormatError("the signature must be bytes")

    def signed_bytes(self) -> bytes:
        """The canonical, domain-separated bytes the log signs."""
        return _tree_head_message(self.log_id, self.tree_size, self.root_hash, self.timestamp_ms)

    def to_bytes(self) -> bytes:
        """The serialised head: the signed bytes, then u16 length and the signature."""
        return self.signed_bytes() + struct.pack(">H", len(self.signature)) + self.signature

    @classmethod
    def from_bytes(cls, data: bytes) -> SignedTreeHead:
        """Parse :meth:`to_bytes` output; :class:`LogFormatError` on anything else."""
        reader = _Reader(data, "the tree head")
        if reader.take(len(_STH_DOMAIN)) != _STH_DOMAIN:
            raise LogFormatError("not a pli-sth-v1 tree head")
        log_id = reader.text("the log id")
        tree_size = reader.u64()
        timestamp_ms = reader.u64()
        root_hash = reader.take(HASH_SIZE)
        signature = reader.take(reader.u16())
        reader.end()
        return cls(log_id, tree_size, root_hash, timestamp_ms, signature)


def _tree_head_message(log_id: str, tree_size: int, root_hash: bytes, timestamp_ms: int) -> bytes:
    return b"".join(
        [
            _STH_DOMAIN,
            _encode_text(log_id, "the log id"),
            struct.pack(">QQ", tree_size, timestamp_ms),
            root_hash,
        ]
    )


def sign_tree_head(
    key: SigningKey, *, log_id: str, tree_size: int, root_hash: bytes, timestamp_ms: int
) -> SignedTreeHead:
    """Sign the head of a log's tree with the log's key."""
    _check_u64(tree_size, "the tree size")
    _check_u64(timestamp_ms, "the timestamp")
    if not _is_hash(root_hash):
        raise LogFormatError(f"the root hash must be {HASH_SIZE} bytes")
    message = _tree_head_message(log_id, tree_size, root_hash, timestamp_ms)
    return SignedTreeHead(log_id, tree_size, root_hash, timestamp_ms, key.sign(message))


def verify_tree_head(sth: SignedTreeHead, log_public_key: SigningPublicKey) -> bool:
    """Whether ``sth`` carries a valid signature by ``log_public_key``; never raises."""
    return verify_signature(log_public_key, sth.signed_bytes(), sth.signature)


# --- Key leaves ---------------------------------------------------------------------------


class KeyStatus(StrEnum):
    """What a key leaf says about its address."""

    PUBLISHED = "published"
    """These keys are the address's current keys (a first publication or a rotation)."""
    REVOKED = "revoked"
    """These keys, and the address, have no current keys any more."""


_STATUS_CODES = {KeyStatus.PUBLISHED: 1, KeyStatus.REVOKED: 2}
_STATUS_BY_CODE = {code: status for status, code in _STATUS_CODES.items()}


@dataclass(frozen=True, slots=True)
class KeyLeaf:
    """One entry of the key log: an address's keys, as published at ``timestamp_ms``.

    ``sequence`` counts the leaves of this address from 0: rotations and revocations of an
    address are numbered in log order, so a client that remembers it can tell an old leaf
    from the current one.
    """

    address: str
    encryption_key: EncryptionPublicKey
    signing_key: SigningPublicKey
    sequence: int
    timestamp_ms: int
    status: KeyStatus = KeyStatus.PUBLISHED

    def __post_init__(self) -> None:
        _encode_text(self.address, "the address")
        if not isinstance(self.encryption_key, EncryptionPublicKey):
            raise LogFormatError("the encryption key must be an EncryptionPublicKey")
        if not isinstance(self.signing_key, SigningPublicKey):
            raise LogFormatError("the signing key must be a SigningPublicKey")
        _check_u64(self.sequence, "the sequence number")
        _check_u64(self.timestamp_ms, "the timestamp")
        if not isinstance(self.status, KeyStatus):
            raise LogFormatError("the status must be a KeyStatus")

    def to_bytes(self) -> bytes:
        """The canonical leaf data; its :func:`leaf_hash` is what the log commits to."""
        return b"".join(
            [
                _LEAF_DOMAIN,
                struct.pack(">BQQ", _STATUS_CODES[self.status], self.sequence, self.timestamp_ms),
                _encode_text(self.address, "the address"),
                self.encryption_key.raw,
                self.signing_key.raw,
            ]
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> KeyLeaf:
        """Parse :meth:`to_bytes` output; :class:`LogFormatError` on anything else."""
        reader = _Reader(data, "the key leaf")
        if reader.take(len(_LEAF_DOMAIN)) != _LEAF_DOMAIN:
            raise LogFormatError("not a pli-key-leaf-v1 leaf")
        code = reader.u8()
        if code not in _STATUS_BY_CODE:
            raise LogFormatError(f"unknown key status {code}")
        sequence = reader.u64()
        timestamp_ms = reader.u64()
        address = reader.text("the address")
        encryption_key = EncryptionPublicKey(reader.take(32))
        signing_key = SigningPublicKey(reader.take(32))
        reader.end()
        return cls(
            address, encryption_key, signing_key, sequence, timestamp_ms, _STATUS_BY_CODE[code]
        )

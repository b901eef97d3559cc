"""Client-side verification of directory keys against the key transparency log.

The directory publishes every key publication, rotation and revocation as a leaf of an
append-only Merkle log (RFC 9162 §2.1 hashing, see :mod:`crypto.merkle`) and answers a key
lookup with a :class:`KeyProof`: the leaf, its inclusion proof (RFC 9162 §2.1.3), a signed
tree head, and a consistency proof (RFC 9162 §2.1.4) from the last head the client trusted.
:class:`KeyVerifier` is what ``pli``, the gateways and the webmail run before they use a
key: it refuses the key, with a :class:`KeyVerificationError` whose ``reason`` says why,
unless

1. the tree head names the expected log and is signed by the log's key
   (:attr:`Failure.WRONG_LOG`, :attr:`Failure.BAD_SIGNATURE`), and is recent enough when a
   maximum age is set (:attr:`Failure.STALE`);
2. the leaf is about the address asked for, publishes (does not revoke) keys, and its keys
   are exactly the ones handed over (:attr:`Failure.ADDRESS_MISMATCH`,
   :attr:`Failure.REVOKED`, :attr:`Failure.KEY_MISMATCH`);
3. the inclusion proof leads from the leaf to the signed root (:attr:`Failure.NOT_INCLUDED`);
4. the head is not behind the last trusted one (:attr:`Failure.ROLLBACK`), is the same head
   when it has the same size (:attr:`Failure.SPLIT_VIEW`), and extends it, as a consistency
   proof shows, when it is larger (:attr:`Failure.INCONSISTENT`).

Only then does the verifier trust the new head; its state (the trusted head, as bytes) is
persisted by the caller between runs. The first head a fresh verifier sees is trusted on
first use: consistency protects every later view, not the first one.

:func:`detect_split_view` turns two validly signed heads of the same size with different
roots into :class:`SplitView` evidence: the log signed two incompatible histories, which
anybody holding the log's public key can check. Limits and the threat model are in
``docs/transparency.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from crypto.encoding import b64url_decode, b64url_encode
from crypto.errors import CryptoError
from crypto.keys import SigningPublicKey
from crypto.merkle import (
    KeyLeaf,
    KeyStatus,
    SignedTreeHead,
    verify_consistency,
    verify_inclusion,
    verify_tree_head,
)
from messaging.errors import PliError
from messaging.ports import Clock, PublishedKeys
from messaging.types import Address

__all__ = [
    "Failure",
    "KeyVerificationError",
    "InclusionProof",
    "ConsistencyProof",
    "KeyProof",
    "SplitView",
    "KeyVerifier",
    "detect_split_view",
]


class Failure(StrEnum):
    """Why a key or a tree head was refused."""

    MALFORMED = "malformed"
    """A proof, head or persisted state that does not parse."""
    WRONG_LOG = "wrong-log"
    """The head names another log."""
    BAD_SIGNATURE = "bad-signature"
    """The head is not signed by the log's key (forged, or signed by another key)."""
    STALE = "stale"
    """The head is older than the verifier's maximum age."""
    ADDRESS_MISMATCH = "address-mismatch"
    """The leaf is about another address."""
    REVOKED = "revoked"
    """The leaf revokes the address's keys."""
    KEY_MISMATCH = "key-mismatch"
    """The keys handed over are not the ones in the leaf."""
    NOT_INCLUDED = "not-included"
    """The inclusion proof does not lead from the leaf to the signed root (tampered leaf)."""
    ROLLBACK = "rollback"
    """The head is smaller than the trusted one: the log was truncated or rolled back."""
    SPLIT_VIEW = "split-view"
    """The head has the trusted head's size but another root: the log shows two histories."""
    INCONSISTENT = "inconsistent"
    """No valid consistency proof shows the head extends the trusted one."""


class KeyVerificationError(PliError):
    """A key or tree head the verifier refuses; ``reason`` says which check failed.

    ``evidence`` is set for :attr:`Failure.SPLIT_VIEW`: the two signed heads, to report.
    """

    def __init__(self, reason: Failure, detail: str, *, evidence: SplitView | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.evidence = evidence


def _check_path(path: object, what: str) -> tuple[bytes, ...]:
    if not isinstance(path, tuple) or not all(isinstance(p, bytes) for p in path):
        raise KeyVerificationError(Failure.MALFORMED, f"the {what} path must be a tuple of bytes")
    return path


def _check_int(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise KeyVerificationError(Failure.MALFORMED, f"{what} must be a non-negative integer")
    return value


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """The audit path of leaf ``leaf_index`` in the tree of ``tree_size`` leaves."""

    leaf_index: int
    tree_size: int
    path: tuple[bytes, ...]

    def __post_init__(self) -> None:
        _check_int(self.leaf_index, "the leaf index")
        _check_int(self.tree_size, "the tree size")
        _check_path(self.path, "inclusion")


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    """Proof that the tree of ``old_size`` leaves is a prefix of the one of ``new_size``."""

    old_size: int
    new_size: int
    path: tuple[bytes, ...]

    def __post_init__(self) -> None:
        _check_int(self.old_size, "the old size")
        _check_int(self.new_size, "the new size")
        _check_path(self.path, "consistency")


@dataclass(frozen=True, slots=True)
class KeyProof:
    """What the directory returns with a key: the leaf, where it is, and the head it is in.

    ``consistency`` leads from the tree size the client said it trusts to ``head``; it is
    None when the client trusted nothing yet or the sizes are equal.
    """

    leaf: KeyLeaf
    inclusion: InclusionProof
    head: SignedTreeHead
    consistency: ConsistencyProof | None = None

    @property
    def leaf_index(self) -> int:
        return self.inclusion.leaf_index

    def to_json(self) -> dict[str, object]:
        """A JSON-ready form: leaf and head as base64url of their canonical bytes."""
        return {
            "leaf": b64url_encode(self.leaf.to_bytes()),
            "leaf_index": self.inclusion.leaf_index,
            "tree_size": self.inclusion.tree_size,
            "inclusion": [b64url_encode(p) for p in self.inclusion.path],
            "head": b64url_encode(self.head.to_bytes()),
            "consistency": None
            if self.consistency is None
            else {
                "old_size": self.consistency.old_size,
                "new_size": self.consistency.new_size,
                "path": [b64url_encode(p) for p in self.consistency.path],
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> KeyProof:
        """Parse :meth:`to_json` output; :class:`KeyVerificationError` (MALFORMED) otherwise."""
        try:
            consistency = data["consistency"]
            return cls(
                leaf=KeyLeaf.from_bytes(b64url_decode(_str(data["leaf"]))),
                inclusion=InclusionProof(
                    _check_int(data["leaf_index"], "leaf_index"),
                    _check_int(data["tree_size"], "tree_size"),
                    _b64_list(data["inclusion"]),
                ),
                head=SignedTreeHead.from_bytes(b64url_decode(_str(data["head"]))),
                consistency=None if consistency is None else _consistency_from_json(consistency),
            )
        except (KeyError, TypeError, CryptoError) as exc:
            raise KeyVerificationError(Failure.MALFORMED, f"not a key proof ({exc})") from exc


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def _b64_list(value: object) -> tuple[bytes, ...]:
    if not isinstance(value, list):
        raise TypeError("expected a list")
    return tuple(b64url_decode(_str(item)) for item in value)


def _consistency_from_json(value: object) -> ConsistencyProof:
    if not isinstance(value, Mapping):
        raise TypeError("expected an object")
    return ConsistencyProof(
        _check_int(value["old_size"], "old_size"),
        _check_int(value["new_size"], "new_size"),
        _b64_list(value["path"]),
    )


@dataclass(frozen=True, slots=True)
class SplitView:
    """Two heads signed by the same log for the same size with different roots.

    Each verifies with the log's public key, so the pair proves to anyone that the log
    showed two different histories: the operator misbehaved (or its key leaked).
    """

    first: SignedTreeHead
    second: SignedTreeHead


def detect_split_view(
    head_a: SignedTreeHead, head_b: SignedTreeHead, *, log_key: SigningPublicKey
) -> SplitView | None:
    """The evidence of a split view if ``head_a`` and ``head_b`` are one, else None.

    Both heads must verify with ``log_key``, name the same log and the same tree size, and
    have different roots. A head that does not verify proves nothing about the log (anybody
    can make one), so it yields None, as do compatible heads.
    """
    if not (verify_tree_head(head_a, log_key) and verify_tree_head(head_b, log_key)):
        return None
    if head_a.log_id != head_b.log_id or head_a.tree_size != head_b.tree_size:
        return None
    if head_a.root_hash == head_b.root_hash:
        return None
    return SplitView(head_a, head_b)


class KeyVerifier:
    """Checks keys handed over by the directory against the log, remembering one head.

    ``state`` is what :meth:`state` returned last time (the trusted head's bytes), or None
    for a verifier that trusts no head yet. With ``max_age`` and ``clock``, a head signed
    more than ``max_age`` ago is refused. A verifier is not thread-safe; it is cheap, keep
    one per client.
    """

    def __init__(
        self,
        log_key: SigningPublicKey,
        log_id: str,
        *,
        state: bytes | None = None,
        clock: Clock | None = None,
        max_age: timedelta | None = None,
    ) -> None:
        if (max_age is None) != (clock is None):
            raise ValueError("max_age and clock go together")
        self._log_key = log_key
        self._log_id = log_id
        self._clock = clock
        self._max_age = max_age
        self._trusted: SignedTreeHead | None = None
        if state:
            try:
                head = SignedTreeHead.from_bytes(state)
            except CryptoError as exc:
                raise KeyVerificationError(
                    Failure.MALFORMED, f"the persisted verifier state does not parse ({exc})"
                ) from exc
            self._check_authentic(head)
            self._trusted = head

    @property
    def trusted_head(self) -> SignedTreeHead | None:
        """The last head this verifier accepted."""
        return self._trusted

    def state(self) -> bytes:
        """The bytes to persist and hand back to the next verifier (empty: no trusted head)."""
        return b"" if self._trusted is None else self._trusted.to_bytes()

    def verify(self, address: Address, keys: PublishedKeys, proof: KeyProof) -> None:
        """Accept ``keys`` for ``address`` if ``proof`` shows the log holds them, or raise.

        On success the proof's head becomes the trusted one; on failure nothing changes.
        """
        head = proof.head
        self._check_authentic(head)
        self._check_fresh(head)
        leaf = proof.leaf
        if leaf.address != str(address):
            raise KeyVerificationError(
                Failure.ADDRESS_MISMATCH, f"the leaf is about {leaf.address}, not {address}"
            )
        if str(keys.address) != str(address):
            raise KeyVerificationError(
                Failure.ADDRESS_MISMATCH, f"the keys handed over are for {keys.address}"
            )
        if leaf.status is not KeyStatus.PUBLISHED:
            raise KeyVerificationError(
                Failure.REVOKED, f"the keys of {address} were revoked (leaf {proof.leaf_index})"
            )
        if leaf.encryption_key.raw != keys.encryption_key:
            raise KeyVerificationError(
                Failure.KEY_MISMATCH, f"the encryption key of {address} is not the logged one"
            )
        if leaf.signing_key.raw != keys.signing_key:
            raise KeyVerificationError(
                Failure.KEY_MISMATCH, f"the signing key of {address} is not the logged one"
            )
        inclusion = proof.inclusion
        if inclusion.tree_size != head.tree_size:
            raise KeyVerificationError(
                Failure.NOT_INCLUDED,
                f"the inclusion proof is for a tree of {inclusion.tree_size} leaves, "
                f"the head for {head.tree_size}",
            )
        if not verify_inclusion(
            leaf.to_bytes(), inclusion.leaf_index, head.tree_size, inclusion.path, head.root_hash
        ):
            raise KeyVerificationError(
                Failure.NOT_INCLUDED,
                f"leaf {inclusion.leaf_index} is not in the signed tree of {head.tree_size} "
                "leaves: the inclusion proof does not lead to its root",
            )
        self._advance(head, proof.consistency)

    def update(self, head: SignedTreeHead, consistency: ConsistencyProof | None) -> None:
        """Move the trusted head forward without a key (a periodic check of the log)."""
        self._check_authentic(head)
        self._check_fresh(head)
        self._advance(head, consistency)

    def _check_authentic(self, head: SignedTreeHead) -> None:
        if head.log_id != self._log_id:
            raise KeyVerificationError(
                Failure.WRONG_LOG, f"the head is from log {head.log_id!r}, not {self._log_id!r}"
            )
        if not verify_tree_head(head, self._log_key):
            raise KeyVerificationError(
                Failure.BAD_SIGNATURE,
                f"the head of size {head.tree_size} is not signed by the log's key",
            )

    def _check_fresh(self, head: SignedTreeHead) -> None:
        if self._clock is None or self._max_age is None:
            return
        now_ms = int(self._clock.now().timestamp() * 1000)
        age_ms = now_ms - head.timestamp_ms
        if age_ms > self._max_age / timedelta(milliseconds=1):
            raise KeyVerificationError(
                Failure.STALE, f"the head was signed {age_ms} ms ago, more than {self._max_age}"
            )

    def _advance(self, head: SignedTreeHead, consistency: ConsistencyProof | None) -> None:
        trusted = self._trusted
        if trusted is None:
            self._trusted = head
            return
        if head.tree_size < trusted.tree_size:
            raise KeyVerificationError(
                Failure.ROLLBACK,
                f"the head has {head.tree_size} leaves, fewer than the {trusted.tree_size} "
                "of the trusted head: the log was truncated or rolled back",
            )
        if head.tree_size == trusted.tree_size:
            if head.root_hash != trusted.root_hash:
                raise KeyVerificationError(
                    Failure.SPLIT_VIEW,
                    f"two different signed heads for {head.tree_size} leaves",
                    evidence=SplitView(trusted, head),
                )
            if head.timestamp_ms > trusted.timestamp_ms:
                self._trusted = head
            return
        if consistency is None:
            raise KeyVerificationError(
                Failure.INCONSISTENT,
                f"no consistency proof from the trusted {trusted.tree_size} leaves "
                f"to {head.tree_size}",
            )
        if (consistency.old_size, consistency.new_size) != (trusted.tree_size, head.tree_size):
            raise KeyVerificationError(
                Failure.INCONSISTENT,
                f"the consistency proof goes from {consistency.old_size} to "
                f"{consistency.new_size} leaves, not from the trusted {trusted.tree_size} "
                f"to {head.tree_size}",
            )
        if not verify_consistency(
            trusted.tree_size, head.tree_size, trusted.root_hash, head.root_hash, consistency.path
        ):
            raise KeyVerificationError(
                Failure.INCONSISTENT,
                f"the head of {head.tree_size} leaves does not extend the trusted head of "
                f"{trusted.tree_size}: the consistency proof fails (history rewritten or forked)",
            )
        self._trusted = head

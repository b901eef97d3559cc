"""The client-side key verifier: every way a log can lie is refused with its own reason.

The logs here are built from :class:`crypto.merkle.MerkleTree` and the log key directly, so
these tests need no directory: an honest log, a log whose operator tampers, truncates,
forks or forges, all in a few lines.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.keys import EncryptionPublicKey, SigningKey, generate_signing_key
from crypto.merkle import KeyLeaf, KeyStatus, MerkleTree, SignedTreeHead, sign_tree_head
from messaging.clock import ManualClock
from messaging.transparency import (
    ConsistencyProof,
    Failure,
    InclusionProof,
    KeyProof,
    KeyVerificationError,
    KeyVerifier,
    SplitView,
    detect_split_view,
)
from messaging.types import Address

LOG_ID = "directory.pli.test"
START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@dataclasses.dataclass(frozen=True)
class Keys:
    address: Address
    encryption_key: bytes
    signing_key: bytes


def _address(n: int) -> Address:
    return Address.parse(f"user{n}@medecin.pli.test")


def _leaf(n: int, *, sequence: int = 0, status: KeyStatus = KeyStatus.PUBLISHED) -> KeyLeaf:
    return KeyLeaf(
        address=str(_address(n)),
        encryption_key=EncryptionPublicKey(bytes([n % 256, sequence % 256]) * 16),
        signing_key=SigningKey.from_seed(bytes([n % 256, sequence % 256, 1]) + bytes(29)).public,
        sequence=sequence,
        timestamp_ms=1_700_000_000_000 + n,
        status=status,
    )


def _keys_of(leaf: KeyLeaf) -> Keys:
    return Keys(Address.parse(leaf.address), leaf.encryption_key.raw, leaf.signing_key.raw)


class Log:
    """A log operator in a few lines: honest unless a test makes it otherwise."""

    def __init__(self, key: SigningKey | None = None, log_id: str = LOG_ID) -> None:
        self.key = key or SigningKey.from_seed(b"\x42" * 32)
        self.log_id = log_id
        self.tree = MerkleTree()
        self.leaves: list[KeyLeaf] = []
        self.clock_ms = int(START.timestamp() * 1000)

    def append(self, leaf: KeyLeaf) -> int:
        self.leaves.append(leaf)
        return self.tree.append(leaf.to_bytes())

    def fill(self, count: int) -> Log:
        for n in range(count):
            self.append(_leaf(n))
        return self

    def head(self, size: int | None = None) -> SignedTreeHead:
        size = self.tree.size if size is None else size
        self.clock_ms += 1000
        return sign_tree_head(
            self.key,
            log_id=self.log_id,
            tree_size=size,
            root_hash=self.tree.root(size),
            timestamp_ms=self.clock_ms,
        )

    def proof(self, index: int, *, known: int | None = None, size: int | None = None) -> KeyProof:
        head = self.head(size)
        consistency = None
        if known is not None and known <= head.tree_size:
            consistency = ConsistencyProof(
                known, head.tree_size, tuple(self.tree.consistency_proof(known, head.tree_size))
            )
        inclusion = InclusionProof(
            index, head.tree_size, tuple(self.tree.inclusion_proof(index, head.tree_size))
        )
        return KeyProof(self.leaves[index], inclusion, head, consistency)

    def verifier(self, **kwargs: object) -> KeyVerifier:
        return KeyVerifier(self.key.public, self.log_id, **kwargs)  # type: ignore[arg-type]


def _refused(verifier: KeyVerifier, proof: KeyProof, keys: Keys | None = None) -> Failure:
    keys = keys or _keys_of(proof.leaf)
    before = verifier.state()
    with pytest.raises(KeyVerificationError) as caught:
        verifier.verify(keys.address, keys, proof)
    assert verifier.state() == before, "a refused proof must not move the trusted head"
    return caught.value.reason


# --- The honest path ------------------------------------------------------------------------


def test_an_honest_proof_is_accepted_and_its_head_becomes_trusted():
    log = Log().fill(10)
    verifier = log.verifier()
    proof = log.proof(3)
    verifier.verify(_address(3), _keys_of(log.leaves[3]), proof)
    assert verifier.trusted_head == proof.head


def test_a_later_head_is_accepted_with_a_consistency_proof_from_the_trusted_one():
    log = Log().fill(10)
    verifier = log.verifier()
    verifier.verify(_address(3), _keys_of(log.leaves[3]), log.proof(3))
    for n in range(10, 25):
        log.append(_leaf(n))
    later = log.proof(17, known=10)
    verifier.verify(_address(17), _keys_of(log.leaves[17]), later)
    assert verifier.trusted_head == later.head


def test_the_trusted_head_survives_a_restart_through_its_bytes():
    log = Log().fill(6)
    first = log.verifier()
    first.verify(_address(1), _keys_of(log.leaves[1]), log.proof(1))
    again = log.verifier(state=first.state())
    assert again.trusted_head == first.trusted_head
    assert log.verifier(state=b"").trusted_head is None
    assert log.verifier().state() == b""


def test_a_re_signed_head_of_the_same_tree_is_accepted_and_the_newest_kept():
    log = Log().fill(5)
    verifier = log.verifier()
    first = log.proof(0)
    verifier.verify(_address(0), _keys_of(log.leaves[0]), first)
    resigned = log.proof(2)  # same size and root, later timestamp
    assert resigned.head.timestamp_ms > first.head.timestamp_ms
    verifier.verify(_address(2), _keys_of(log.leaves[2]), resigned)
    assert verifier.trusted_head == resigned.head
    backdated = sign_tree_head(
        log.key, log_id=LOG_ID, tree_size=5, root_hash=log.tree.root(), timestamp_ms=1
    )
    verifier.verify(
        _address(0), _keys_of(log.leaves[0]), dataclasses.replace(first, head=backdated)
    )
    assert verifier.trusted_head == resigned.head


def test_update_moves_the_trusted_head_without_a_key():
    log = Log().fill(4)
    verifier = log.verifier()
    verifier.update(log.head(), None)
    log.fill(3)
    head = log.head()
    verifier.update(head, _consistency(log, 4, head))
    assert verifier.trusted_head == head


def _consistency(log: Log, old: int, head: SignedTreeHead) -> ConsistencyProof:
    return ConsistencyProof(
        old, head.tree_size, tuple(log.tree.consistency_proof(old, head.tree_size))
    )


def test_a_verifier_that_trusted_the_empty_log_accepts_its_growth():
    log = Log()
    verifier = log.verifier()
    verifier.update(log.head(), None)
    log.fill(3)
    verifier.verify(_address(2), _keys_of(log.leaves[2]), log.proof(2, known=0))
    assert verifier.trusted_head is not None
    assert verifier.trusted_head.tree_size == 3


# --- Tampered leaves and handed-over keys ----------------------------------------------------


def test_a_leaf_whose_keys_were_changed_after_logging_is_not_included():
    log = Log().fill(8)
    proof = log.proof(5)
    tampered_leaf = dataclasses.replace(
        proof.leaf, encryption_key=EncryptionPublicKey(b"\xee" * 32)
    )
    tampered = dataclasses.replace(proof, leaf=tampered_leaf)
    assert _refused(log.verifier(), tampered) is Failure.NOT_INCLUDED


def test_a_leaf_whose_signing_key_was_swapped_is_not_included():
    log = Log().fill(8)
    proof = log.proof(0)
    swapped = dataclasses.replace(proof.leaf, signing_key=generate_signing_key().public)
    assert (
        _refused(log.verifier(), dataclasses.replace(proof, leaf=swapped)) is Failure.NOT_INCLUDED
    )


def test_keys_handed_over_that_differ_from_the_leaf_are_refused():
    log = Log().fill(8)
    proof = log.proof(4)
    good = _keys_of(proof.leaf)
    other_enc = dataclasses.replace(good, encryption_key=b"\x01" * 32)
    other_sig = dataclasses.replace(good, signing_key=generate_signing_key().public.raw)
    assert _refused(log.verifier(), proof, other_enc) is Failure.KEY_MISMATCH
    assert _refused(log.verifier(), proof, other_sig) is Failure.KEY_MISMATCH


def test_a_valid_proof_for_another_address_is_refused():
    log = Log().fill(8)
    proof = log.proof(4)
    victim = _keys_of(log.leaves[4])
    asked = _address(6)
    verifier = log.verifier()
    with pytest.raises(KeyVerificationError) as caught:
        verifier.verify(asked, dataclasses.replace(victim, address=asked), proof)
    assert caught.value.reason is Failure.ADDRESS_MISMATCH
    with pytest.raises(KeyVerificationError) as caught:
        verifier.verify(asked, victim, dataclasses.replace(proof, leaf=_leaf(6)))
    assert caught.value.reason is Failure.ADDRESS_MISMATCH


def test_a_revocation_leaf_refuses_the_keys():
    log = Log().fill(3)
    log.append(_leaf(1, sequence=1, status=KeyStatus.REVOKED))
    assert _refused(log.verifier(), log.proof(3)) is Failure.REVOKED


def test_a_proof_whose_path_is_for_another_tree_size_is_refused():
    log = Log().fill(9)
    proof = log.proof(2)
    smaller = InclusionProof(2, 8, tuple(log.tree.inclusion_proof(2, 8)))
    assert (
        _refused(log.verifier(), dataclasses.replace(proof, inclusion=smaller))
        is Failure.NOT_INCLUDED
    )
    moved = InclusionProof(3, 9, proof.inclusion.path)
    assert (
        _refused(log.verifier(), dataclasses.replace(proof, inclusion=moved))
        is Failure.NOT_INCLUDED
    )


# --- Forged tree heads ---------------------------------------------------------------------


def test_a_head_with_a_broken_signature_is_refused():
    log = Log().fill(4)
    proof = log.proof(1)
    sig = bytearray(proof.head.signature)
    sig[10] ^= 0x04
    forged = dataclasses.replace(proof.head, signature=bytes(sig))
    assert (
        _refused(log.verifier(), dataclasses.replace(proof, head=forged)) is Failure.BAD_SIGNATURE
    )


def test_a_head_signed_by_another_key_is_refused():
    log = Log().fill(4)
    impostor = Log(key=generate_signing_key()).fill(4)
    proof = impostor.proof(1)
    assert _refused(log.verifier(), proof) is Failure.BAD_SIGNATURE


def test_a_head_whose_root_was_replaced_keeps_no_valid_signature():
    honest = Log().fill(4)
    forked = Log().fill(4)
    forked.leaves[2] = _leaf(40)
    forked.tree = MerkleTree(leaf.to_bytes() for leaf in forked.leaves)
    proof = forked.proof(2)
    grafted = dataclasses.replace(proof.head, signature=honest.head().signature)
    assert (
        _refused(honest.verifier(), dataclasses.replace(proof, head=grafted))
        is Failure.BAD_SIGNATURE
    )


def test_a_head_of_another_log_is_refused_even_with_the_same_key():
    log = Log().fill(4)
    other = Log(log_id="other.pli.test").fill(4)
    assert _refused(log.verifier(), other.proof(0)) is Failure.WRONG_LOG


def test_a_head_older_than_the_maximum_age_is_refused():
    log = Log().fill(4)
    clock = ManualClock(START)
    verifier = log.verifier(clock=clock, max_age=timedelta(hours=1))
    verifier.verify(_address(0), _keys_of(log.leaves[0]), log.proof(0))
    clock.advance(timedelta(hours=2))
    assert _refused(verifier, log.proof(1)) is Failure.STALE
    with pytest.raises(ValueError, match="go together"):
        log.verifier(max_age=timedelta(hours=1))


# --- Truncated and rewritten logs ------------------------------------------------------------


def test_a_head_smaller_than_the_trusted_one_is_a_rollback():
    log = Log().fill(12)
    verifier = log.verifier()
    verifier.verify(_address(11), _keys_of(log.leaves[11]), log.proof(11))
    # The operator now serves the log as it was at 7 leaves (or truncated it to 7).
    truncated = log.proof(3, size=7)
    assert _refused(verifier, truncated) is Failure.ROLLBACK


def test_a_log_rebuilt_without_a_leaf_fails_consistency():
    log = Log().fill(12)
    verifier = log.verifier()
    verifier.verify(_address(2), _keys_of(log.leaves[2]), log.proof(2))
    # The operator drops leaf 5 (say, a key it wants forgotten) and grows the log past 12.
    rewritten = Log()
    for leaf in log.leaves[:5] + log.leaves[6:]:
        rewritten.append(leaf)
    rewritten.fill(5)
    assert rewritten.tree.size > 12
    assert _refused(verifier, rewritten.proof(3, known=12)) is Failure.INCONSISTENT


def test_a_larger_head_without_a_consistency_proof_is_refused():
    log = Log().fill(5)
    verifier = log.verifier()
    verifier.verify(_address(0), _keys_of(log.leaves[0]), log.proof(0))
    log.fill(2)
    assert _refused(verifier, log.proof(1)) is Failure.INCONSISTENT


def test_a_consistency_proof_from_another_size_is_refused():
    log = Log().fill(5)
    verifier = log.verifier()
    verifier.verify(_address(0), _keys_of(log.leaves[0]), log.proof(0))
    log.fill(4)
    assert _refused(verifier, log.proof(1, known=4)) is Failure.INCONSISTENT


def test_a_tampered_consistency_proof_is_refused():
    log = Log().fill(5)
    verifier = log.verifier()
    verifier.verify(_address(0), _keys_of(log.leaves[0]), log.proof(0))
    log.fill(6)
    proof = log.proof(1, known=5)
    assert proof.consistency is not None
    bad = (bytes(32),) + proof.consistency.path[1:]
    tampered = dataclasses.replace(
        proof, consistency=dataclasses.replace(proof.consistency, path=bad)
    )
    assert _refused(verifier, tampered) is Failure.INCONSISTENT


# --- Split views ----------------------------------------------------------------------------


def _fork(at: int, size: int) -> tuple[Log, Log]:
    """One key, two histories that agree on the first ``at`` leaves."""
    key = SigningKey.from_seed(b"\x42" * 32)
    a, b = Log(key), Log(key)
    for n in range(at):
        a.append(_leaf(n))
        b.append(_leaf(n))
    for n in range(at, size):
        a.append(_leaf(n))
        b.append(_leaf(n + 1000))  # e.g. a key the operator shows only to some clients
    return a, b


def test_a_second_head_for_the_trusted_size_is_a_split_view_with_evidence():
    a, b = _fork(5, 9)
    verifier = a.verifier()
    verifier.verify(_address(1), _keys_of(a.leaves[1]), a.proof(1))
    with pytest.raises(KeyVerificationError) as caught:
        verifier.verify(_address(1), _keys_of(b.leaves[1]), b.proof(1))
    error = caught.value
    assert error.reason is Failure.SPLIT_VIEW
    assert isinstance(error.evidence, SplitView)
    assert detect_split_view(error.evidence.first, error.evidence.second, log_key=a.key.public)


def test_a_larger_head_of_the_other_branch_is_inconsistent():
    a, b = _fork(5, 9)
    verifier = a.verifier()
    verifier.verify(_address(1), _keys_of(a.leaves[1]), a.proof(1))
    for n in range(9, 12):
        b.append(_leaf(n))
    assert _refused(verifier, b.proof(1, known=9)) is Failure.INCONSISTENT


def test_detect_split_view_reports_two_valid_heads_of_one_size_with_different_roots():
    a, b = _fork(3, 6)
    head_a, head_b = a.head(), b.head()
    evidence = detect_split_view(head_a, head_b, log_key=a.key.public)
    assert evidence == SplitView(head_a, head_b)


def test_detect_split_view_ignores_what_proves_nothing():
    a, b = _fork(3, 6)
    key = a.key.public
    assert detect_split_view(a.head(), a.head(), log_key=key) is None  # same tree, re-signed
    assert detect_split_view(a.head(5), b.head(6), log_key=key) is None  # other sizes
    unsigned = dataclasses.replace(b.head(), signature=bytes(64))
    assert detect_split_view(a.head(), unsigned, log_key=key) is None  # anybody can forge
    other_key = generate_signing_key().public
    assert detect_split_view(a.head(), b.head(), log_key=other_key) is None
    renamed = Log(a.key, log_id="other.pli.test").fill(6)
    assert detect_split_view(a.head(), renamed.head(), log_key=key) is None


# --- Persisted state --------------------------------------------------------------------------


def test_a_corrupt_or_foreign_persisted_state_is_refused():
    log = Log().fill(3)
    with pytest.raises(KeyVerificationError) as caught:
        log.verifier(state=b"garbage")
    assert caught.value.reason is Failure.MALFORMED
    foreign = Log(key=generate_signing_key()).head()
    with pytest.raises(KeyVerificationError) as caught:
        log.verifier(state=foreign.to_bytes())
    assert caught.value.reason is Failure.BAD_SIGNATURE


# --- Wire form and hostile bytes ---------------------------------------------------------------


def test_key_proofs_round_trip_through_json():
    log = Log().fill(7)
    for proof in (log.proof(6), log.proof(2, known=3)):
        assert KeyProof.from_json(proof.to_json()) == proof


@pytest.mark.parametrize(
    "change",
    [
        {"leaf": "not base64!"},
        {"leaf": "AAAA"},
        {"head": 12},
        {"leaf_index": -1},
        {"inclusion": "x"},
        {"consistency": {"old_size": 1}},
        {"consistency": []},
        {"tree_size": True},
    ],
)
def test_malformed_json_proofs_are_refused_as_malformed(change):
    data = Log().fill(4).proof(1, known=2).to_json()
    data.update(change)
    with pytest.raises(KeyVerificationError) as caught:
        KeyProof.from_json(data)
    assert caught.value.reason is Failure.MALFORMED


def test_malformed_proof_values_are_refused_on_construction():
    with pytest.raises(KeyVerificationError, match="tuple of bytes"):
        InclusionProof(0, 1, [b"x"])  # type: ignore[arg-type]
    with pytest.raises(KeyVerificationError, match="non-negative"):
        ConsistencyProof(-1, 1, ())


def _flip(value: bytes, bit: int) -> bytes:
    out = bytearray(value)
    out[(bit // 8) % len(out)] ^= 1 << (bit % 8)
    return bytes(out)


@settings(max_examples=150, deadline=None)
@given(st.integers(2, 40), st.data())
def test_any_flipped_bit_in_a_key_proof_is_refused(size, draw):
    log = Log().fill(size)
    index = draw.draw(st.integers(0, size - 1), label="index")
    proof = log.proof(index)
    keys = _keys_of(proof.leaf)
    bit = draw.draw(st.integers(0, 2**16), label="bit")
    target = draw.draw(st.sampled_from(["leaf", "head", "path"]), label="target")
    try:
        if target == "leaf":
            proof = dataclasses.replace(
                proof, leaf=KeyLeaf.from_bytes(_flip(proof.leaf.to_bytes(), bit))
            )
        elif target == "head":
            proof = dataclasses.replace(
                proof, head=SignedTreeHead.from_bytes(_flip(proof.head.to_bytes(), bit))
            )
        else:
            path = list(proof.inclusion.path)
            at = bit % len(path)
            path[at] = _flip(path[at], bit)
            proof = dataclasses.replace(
                proof, inclusion=dataclasses.replace(proof.inclusion, path=tuple(path))
            )
    except ValueError:
        return  # the flipped bytes do not even parse
    with pytest.raises(KeyVerificationError):
        log.verifier().verify(keys.address, keys, proof)

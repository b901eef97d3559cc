"""RFC 9162 §2.1 Merkle hashing and proofs, signed tree heads and key leaves.

The reference here is a straightforward recursive transcription of MTH, PATH and SUBPROOF
(RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1), independent of the node-based code under test, plus
the published Certificate Transparency test vectors (transparency-dev/merkle, used as data).
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.keys import EncryptionPublicKey, SigningKey, SigningPublicKey, generate_signing_key
from crypto.merkle import (
    EMPTY_ROOT,
    KeyLeaf,
    KeyStatus,
    LogFormatError,
    MerkleTree,
    Node,
    SignedTreeHead,
    consistency_ranges,
    extend,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    perfect_nodes,
    root_from_leaf_hashes,
    root_from_leaves,
    sign_tree_head,
    verify_consistency,
    verify_inclusion,
    verify_tree_head,
)

# --- An independent reference: RFC 9162 §2.1 read literally --------------------------------


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    if not d:
        return _sha(b"")
    if len(d) == 1:
        return _sha(b"\x00" + d[0])
    k = _k(len(d))
    return _sha(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return ref_path(m, d[:k]) + [ref_mth(d[k:])]
    return ref_path(m - k, d[k:]) + [ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _k(n)
    if m <= k:
        return ref_subproof(m, d[:k], b) + [ref_mth(d[k:])]
    return ref_subproof(m - k, d[k:], False) + [ref_mth(d[:k])]


def ref_proof(m: int, d: list[bytes]) -> list[bytes]:
    return ref_subproof(m, d, True)


# --- Certificate Transparency reference vectors --------------------------------------------

CT_LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = {
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}
CT_CONSISTENCY = {
    (2, 8): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (6, 8): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}


def test_the_empty_tree_hash_is_sha256_of_nothing():
    assert EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert EMPTY_ROOT.hex() == CT_ROOTS[0]
    assert root_from_leaves([]) == EMPTY_ROOT
    assert MerkleTree().root() == EMPTY_ROOT


def test_leaf_and_node_hashes_use_the_rfc_6962_prefixes():
    assert leaf_hash(b"abc") == _sha(b"\x00abc")
    assert node_hash(b"l" * 32, b"r" * 32) == _sha(b"\x01" + b"l" * 32 + b"r" * 32)


def test_roots_match_the_certificate_transparency_vectors_for_every_size():
    tree = MerkleTree(CT_LEAVES)
    for size, expected in enumerate(CT_ROOTS):
        assert tree.root(size).hex() == expected
        assert root_from_leaves(CT_LEAVES[:size]).hex() == expected
        assert ref_mth(CT_LEAVES[:size]).hex() == expected


def test_inclusion_proofs_match_the_certificate_transparency_vectors():
    tree = MerkleTree(CT_LEAVES)
    for (index, size), expected in CT_INCLUSION.items():
        proof = tree.inclusion_proof(index, size)
        assert [p.hex() for p in proof] == expected
        root = bytes.fromhex(CT_ROOTS[size])
        assert verify_inclusion(CT_LEAVES[index], index, size, proof, root)


def test_consistency_proofs_match_the_certificate_transparency_vectors():
    tree = MerkleTree(CT_LEAVES)
    for (old, new), expected in CT_CONSISTENCY.items():
        proof = tree.consistency_proof(old, new)
        assert [p.hex() for p in proof] == expected
        old_root, new_root = bytes.fromhex(CT_ROOTS[old]), bytes.fromhex(CT_ROOTS[new])
        assert verify_consistency(old, new, old_root, new_root, proof)


def test_every_proof_of_small_trees_equals_the_recursive_definition():
    data = [i.to_bytes(2, "big") for i in range(70)]
    tree = MerkleTree(data)
    for n in range(1, len(data) + 1):
        root = tree.root(n)
        assert root == ref_mth(data[:n])
        for m in range(n):
            assert tree.inclusion_proof(m, n) == ref_path(m, data[:n])
        for m in range(1, n + 1):
            assert tree.consistency_proof(m, n) == ref_proof(m, data[:n])
            assert verify_consistency(m, n, tree.root(m), root, tree.consistency_proof(m, n))


# --- Properties over random trees ----------------------------------------------------------

leaf_data = st.binary(max_size=24)


@st.composite
def trees(draw: st.DrawFn, max_leaves: int = 300) -> list[bytes]:
    size = draw(st.integers(1, max_leaves))
    # Distinct leaves keep "another leaf verifies" from being a false alarm in flip tests.
    prefix = draw(leaf_data)
    return [prefix + i.to_bytes(2, "big") for i in range(size)]


@settings(max_examples=60, deadline=None)
@given(trees())
def test_every_inclusion_proof_of_a_random_tree_verifies(data):
    tree = MerkleTree(data)
    n = len(data)
    root = tree.root()
    assert root == ref_mth(data)
    for m in range(n):
        assert verify_inclusion(data[m], m, n, tree.inclusion_proof(m), root)


@settings(max_examples=200, deadline=None)
@given(trees(), st.data())
def test_inclusion_proofs_equal_the_definition_and_verify_at_any_past_size(data, draw):
    tree = MerkleTree(data)
    n = draw.draw(st.integers(1, len(data)), label="size")
    m = draw.draw(st.integers(0, n - 1), label="index")
    proof = tree.inclusion_proof(m, n)
    assert proof == ref_path(m, data[:n])
    assert verify_inclusion(data[m], m, n, proof, tree.root(n))


@settings(max_examples=200, deadline=None)
@given(trees(), st.data())
def test_every_consistency_proof_between_random_sizes_verifies(data, draw):
    tree = MerkleTree(data)
    new = draw.draw(st.integers(0, len(data)), label="new")
    old = draw.draw(st.integers(0, new), label="old")
    proof = tree.consistency_proof(old, new)
    if 0 < old < new:
        assert proof == ref_proof(old, data[:new])
    else:
        assert proof == []
    assert verify_consistency(old, new, tree.root(old), tree.root(new), proof)


def _flip(value: bytes, bit: int) -> bytes:
    bit %= len(value) * 8
    out = bytearray(value)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@settings(max_examples=300, deadline=None)
@given(trees(), st.data())
def test_any_flipped_bit_in_an_inclusion_proof_root_or_leaf_is_refused(data, draw):
    tree = MerkleTree(data)
    n = len(data)
    m = draw.draw(st.integers(0, n - 1), label="index")
    proof = tree.inclusion_proof(m)
    root = tree.root()
    bit = draw.draw(st.integers(0, 2**20), label="bit")
    targets = ["root", "leaf"] + (["proof"] if proof else [])
    target = draw.draw(st.sampled_from(targets), label="target")
    leaf = data[m]
    if target == "root":
        root = _flip(root, bit)
    elif target == "leaf":
        leaf = _flip(leaf, bit) if leaf else b"\x00"
    else:
        at = draw.draw(st.integers(0, len(proof) - 1), label="element")
        proof = [*proof[:at], _flip(proof[at], bit), *proof[at + 1 :]]
    assert not verify_inclusion(leaf, m, n, proof, root)


@settings(max_examples=300, deadline=None)
@given(trees(), st.data())
def test_any_flipped_bit_in_a_consistency_proof_or_root_is_refused(data, draw):
    tree = MerkleTree(data)
    n = len(data)
    new = draw.draw(st.integers(1, n), label="new")
    # From the empty tree every root is consistent: nothing to flip there (see edge cases).
    old = draw.draw(st.integers(1, new), label="old")
    proof = tree.consistency_proof(old, new)
    old_root, new_root = tree.root(old), tree.root(new)
    bit = draw.draw(st.integers(0, 2**20), label="bit")
    targets = ["old", "new"] + (["proof"] if proof else [])
    target = draw.draw(st.sampled_from(targets), label="target")
    if target == "old":
        old_root = _flip(old_root, bit)
    elif target == "new":
        new_root = _flip(new_root, bit)
    else:
        at = draw.draw(st.integers(0, len(proof) - 1), label="element")
        proof = [*proof[:at], _flip(proof[at], bit), *proof[at + 1 :]]
    assert not verify_consistency(old, new, old_root, new_root, proof)


@settings(max_examples=150, deadline=None)
@given(trees(), st.data())
def test_inclusion_proofs_with_a_wrong_shape_are_refused(data, draw):
    tree = MerkleTree(data)
    n = len(data)
    m = draw.draw(st.integers(0, n - 1), label="index")
    proof = tree.inclusion_proof(m)
    root = tree.root()
    assert not verify_inclusion(data[m], m, n, [*proof, b"\x00" * 32], root)
    if proof:
        assert not verify_inclusion(data[m], m, n, proof[:-1], root)
    if n > 1:
        other = (m + 1) % n
        assert not verify_inclusion(data[other], m, n, proof, root)
        assert not verify_inclusion(data[m], other, n, proof, root)
    assert not verify_inclusion(data[m], n, n, proof, root)


@settings(max_examples=150, deadline=None)
@given(trees(), st.data())
def test_consistency_proofs_with_a_wrong_shape_are_refused(data, draw):
    tree = MerkleTree(data)
    n = len(data)
    if n < 2:
        return
    new = draw.draw(st.integers(2, n), label="new")
    old = draw.draw(st.integers(1, new - 1), label="old")
    proof = tree.consistency_proof(old, new)
    old_root, new_root = tree.root(old), tree.root(new)
    assert not verify_consistency(old, new, old_root, new_root, [*proof, b"\x00" * 32])
    assert not verify_consistency(old, new, old_root, new_root, proof[:-1])
    assert not verify_consistency(new, old, new_root, old_root, proof)
    assert not verify_consistency(old, new, new_root, old_root, proof)


def test_consistency_edge_cases_are_decided():
    tree = MerkleTree(CT_LEAVES)
    r4, r5 = tree.root(4), tree.root(5)
    assert verify_consistency(4, 4, r4, r4, [])
    assert not verify_consistency(4, 4, r4, r5, [])
    assert not verify_consistency(4, 4, r4, r4, [r4])
    assert verify_consistency(0, 8, EMPTY_ROOT, tree.root(8), [])
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert not verify_consistency(0, 8, r4, tree.root(8), [])
    assert not verify_consistency(0, 8, EMPTY_ROOT, tree.root(8), [r4])
    assert not verify_consistency(5, 8, r5, tree.root(8), [])


def test_verifiers_return_false_on_hostile_input_instead_of_raising():
    tree = MerkleTree(CT_LEAVES)
    proof, root = tree.inclusion_proof(5), tree.root()
    assert verify_inclusion(CT_LEAVES[5], 5, 8, proof, root)
    assert not verify_inclusion(CT_LEAVES[5], 5, 8, proof, root[:31])
    assert not verify_inclusion(CT_LEAVES[5], 5, 8, [proof[0][:31], *proof[1:]], root)
    assert not verify_inclusion(CT_LEAVES[5], -1, 8, proof, root)
    assert not verify_inclusion(CT_LEAVES[5], 5, 2**64, proof, root)
    assert not verify_inclusion(CT_LEAVES[5], True, 8, proof, root)
    assert not verify_inclusion("text", 5, 8, proof, root)  # type: ignore[arg-type]
    assert not verify_inclusion(CT_LEAVES[5], 5, 8, "not a path", root)  # type: ignore[arg-type]
    cproof = tree.consistency_proof(6, 8)
    assert not verify_consistency(6, 8, tree.root(6)[:31], root, cproof)
    assert not verify_consistency(-1, 8, tree.root(6), root, cproof)
    assert not verify_consistency(6, 8, tree.root(6), root, [b"x"])


def test_ranges_are_subtrees_and_nodes_decompose_them():
    assert inclusion_ranges(5, 8) == [(4, 5), (6, 8), (0, 4)]
    assert consistency_ranges(6, 8) == [(4, 6), (6, 8), (0, 4)]
    assert consistency_ranges(4, 8) == [(4, 8)]
    assert consistency_ranges(0, 8) == consistency_ranges(8, 8) == []
    assert perfect_nodes(0, 7) == [Node(2, 0), Node(1, 2), Node(0, 6)]
    assert perfect_nodes(8, 11) == [Node(1, 4), Node(0, 10)]
    with pytest.raises(ValueError, match="not a subtree"):
        perfect_nodes(2, 6)
    with pytest.raises(ValueError, match="empty range"):
        perfect_nodes(3, 3)
    with pytest.raises(ValueError, match="not in a tree"):
        inclusion_ranges(8, 8)
    with pytest.raises(ValueError, match="no consistency proof"):
        consistency_ranges(5, 3)


def test_extend_completes_the_nodes_of_the_new_leaf_and_returns_the_new_root():
    tree = MerkleTree(CT_LEAVES[:7])
    frontier = [tree.node(n) for n in perfect_nodes(0, 7)]
    created, root = extend(7, frontier, leaf_hash(CT_LEAVES[7]))
    assert [n for n, _ in created] == [Node(0, 7), Node(1, 3), Node(2, 1), Node(3, 0)]
    assert root.hex() == CT_ROOTS[8]
    with pytest.raises(ValueError, match="frontier"):
        extend(7, frontier[:1], leaf_hash(b""))


def test_root_from_leaf_hashes_agrees_with_the_tree():
    data = [bytes([i]) for i in range(37)]
    assert root_from_leaf_hashes(leaf_hash(d) for d in data) == MerkleTree(data).root()


def test_the_tree_refuses_sizes_it_does_not_have():
    tree = MerkleTree(CT_LEAVES[:3])
    with pytest.raises(ValueError, match="3 leaves"):
        tree.root(4)
    with pytest.raises(ValueError):
        tree.inclusion_proof(0, 5)
    with pytest.raises(ValueError):
        tree.consistency_proof(1, 9)


# --- Signed tree heads ---------------------------------------------------------------------

LOG_KEY = SigningKey.from_seed(bytes(range(32)))


def _head(size: int = 8, **changes: object) -> SignedTreeHead:
    fields: dict[str, object] = {
        "log_id": "directory.pli.test",
        "tree_size": size,
        "root_hash": bytes.fromhex(CT_ROOTS[size]),
        "timestamp_ms": 1_700_000_000_000,
    }
    fields.update(changes)
    return sign_tree_head(LOG_KEY, **fields)  # type: ignore[arg-type]


def test_a_signed_tree_head_verifies_with_the_log_key_only():
    head = _head()
    assert verify_tree_head(head, LOG_KEY.public)
    assert not verify_tree_head(head, generate_signing_key().public)


def test_a_tree_head_signed_by_another_key_is_refused():
    forged = sign_tree_head(
        generate_signing_key(),
        log_id="directory.pli.test",
        tree_size=8,
        root_hash=bytes.fromhex(CT_ROOTS[8]),
        timestamp_ms=1,
    )
    assert not verify_tree_head(forged, LOG_KEY.public)


@pytest.mark.parametrize(
    "change",
    [
        {"tree_size": 7},
        {"root_hash": bytes.fromhex(CT_ROOTS[7])},
        {"timestamp_ms": 1_700_000_000_001},
        {"log_id": "directory.pli.other"},
    ],
)
def test_changing_any_field_of_a_signed_head_breaks_its_signature(change):
    head = _head()
    fields = {
        "log_id": head.log_id,
        "tree_size": head.tree_size,
        "root_hash": head.root_hash,
        "timestamp_ms": head.timestamp_ms,
        "signature": head.signature,
    }
    fields.update(change)
    assert not verify_tree_head(SignedTreeHead(**fields), LOG_KEY.public)  # type: ignore[arg-type]


def test_the_signed_bytes_are_domain_separated_and_fixed():
    head = _head(size=2, timestamp_ms=5)
    assert head.signed_bytes() == (
        b"pli-sth-v1\x00"
        + b"\x00\x12directory.pli.test"
        + (2).to_bytes(8, "big")
        + (5).to_bytes(8, "big")
        + bytes.fromhex(CT_ROOTS[2])
    )
    assert head.to_bytes() == head.signed_bytes() + b"\x00\x40" + head.signature


heads = st.builds(
    SignedTreeHead,
    log_id=st.text(min_size=1, max_size=40),
    tree_size=st.integers(0, 2**64 - 1),
    root_hash=st.binary(min_size=32, max_size=32),
    timestamp_ms=st.integers(0, 2**64 - 1),
    signature=st.binary(max_size=80),
)


@given(heads)
def test_tree_heads_round_trip_through_bytes(head):
    assert SignedTreeHead.from_bytes(head.to_bytes()) == head


@given(st.data())
def test_a_flipped_bit_in_a_serialised_head_is_refused(draw):
    head = _head(timestamp_ms=draw.draw(st.integers(0, 2**40)))
    bit = draw.draw(st.integers(0, len(head.to_bytes()) * 8 - 1))
    try:
        parsed = SignedTreeHead.from_bytes(_flip(head.to_bytes(), bit))
    except LogFormatError:
        return
    assert not verify_tree_head(parsed, LOG_KEY.public)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "truncated"),
        (b"pli-sth-v2\x00" + bytes(80), "not a pli-sth-v1"),
        (_head().to_bytes() + b"\x00", "trailing"),
        (_head().to_bytes()[:-1], "truncated"),
        (b"pli-sth-v1\x00\x00\x00" + bytes(48) + b"\x00\x00", "empty"),
        (b"pli-sth-v1\x00\x00\x01\xff" + bytes(48) + b"\x00\x00", "UTF-8"),
    ],
)
def test_malformed_tree_heads_do_not_parse(data, message):
    with pytest.raises(LogFormatError, match=message):
        SignedTreeHead.from_bytes(data)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"tree_size": -1}, "tree size"),
        ({"tree_size": 2**64}, "tree size"),
        ({"root_hash": b"short"}, "root hash"),
        ({"log_id": ""}, "log id"),
        ({"timestamp_ms": -5}, "timestamp"),
    ],
)
def test_tree_heads_refuse_impossible_fields(fields, message):
    with pytest.raises(LogFormatError, match=message):
        _head(**fields)


# --- Key leaves ----------------------------------------------------------------------------

keys32 = st.binary(min_size=32, max_size=32)
leaves = st.builds(
    KeyLeaf,
    address=st.text(min_size=1, max_size=60),
    encryption_key=keys32.map(EncryptionPublicKey),
    signing_key=keys32.map(SigningPublicKey),
    sequence=st.integers(0, 2**64 - 1),
    timestamp_ms=st.integers(0, 2**64 - 1),
    status=st.sampled_from(KeyStatus),
)


@settings(max_examples=50)
@given(leaves)
def test_key_leaves_round_trip_through_bytes(leaf):
    assert KeyLeaf.from_bytes(leaf.to_bytes()) == leaf


@settings(max_examples=50)
@given(leaves, st.data())
def test_a_flipped_bit_in_a_key_leaf_changes_its_hash_or_its_parse(leaf, draw):
    data = leaf.to_bytes()
    bit = draw.draw(st.integers(0, len(data) * 8 - 1))
    flipped = _flip(data, bit)
    assert leaf_hash(flipped) != leaf_hash(data)
    try:
        parsed = KeyLeaf.from_bytes(flipped)
    except LogFormatError:
        return
    assert parsed != leaf


def test_key_leaf_bytes_are_fixed():
    leaf = KeyLeaf(
        address="a@b.fr",
        encryption_key=EncryptionPublicKey(b"\x01" * 32),
        signing_key=LOG_KEY.public,
        sequence=3,
        timestamp_ms=9,
        status=KeyStatus.REVOKED,
    )
    assert leaf.to_bytes() == (
        b"pli-key-leaf-v1\x00\x02"
        + (3).to_bytes(8, "big")
        + (9).to_bytes(8, "big")
        + b"\x00\x06a@b.fr"
        + b"\x01" * 32
        + LOG_KEY.public.raw
    )


def test_malformed_key_leaves_do_not_parse():
    good = KeyLeaf("a@b.fr", EncryptionPublicKey(b"\x01" * 32), LOG_KEY.public, 0, 0)
    data = good.to_bytes()
    with pytest.raises(LogFormatError, match="unknown key status"):
        KeyLeaf.from_bytes(data[:16] + b"\x07" + data[17:])
    with pytest.raises(LogFormatError, match="not a pli-key-leaf-v1"):
        KeyLeaf.from_bytes(b"pli-key-leaf-v2\x00" + data[16:])
    with pytest.raises(LogFormatError, match="trailing"):
        KeyLeaf.from_bytes(data + b"\x00")
    with pytest.raises(LogFormatError, match="truncated"):
        KeyLeaf.from_bytes(data[:-1])
    with pytest.raises(LogFormatError, match="must be bytes"):
        KeyLeaf.from_bytes("text")  # type: ignore[arg-type]
    with pytest.raises(LogFormatError, match="address"):
        KeyLeaf("", EncryptionPublicKey(b"\x01" * 32), LOG_KEY.public, 0, 0)
    with pytest.raises(LogFormatError, match="encryption key"):
        KeyLeaf("a@b.fr", LOG_KEY.public, LOG_KEY.public, 0, 0)  # type: ignore[arg-type]
    with pytest.raises(LogFormatError, match="signing key"):
        KeyLeaf("a@b.fr", EncryptionPublicKey(b"\x01" * 32), b"x" * 32, 0, 0)  # type: ignore[arg-type]
    with pytest.raises(LogFormatError, match="status"):
        KeyLeaf("a@b.fr", EncryptionPublicKey(b"\x01" * 32), LOG_KEY.public, 0, 0, "published")  # type: ignore[arg-type]

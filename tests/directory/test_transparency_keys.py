"""The transparent key directory end to end: publish, rotate, revoke, look up with proof,
and the client's verifier catching an operator who tampers with the database."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from crypto.errors import KeyFormatError
from crypto.keys import EncryptionPublicKey, SigningKey, generate_keys
from crypto.merkle import KeyLeaf, KeyStatus
from directory.keys import LoggedKeys, TransparentKeyDirectory
from directory.transparency import InMemoryLogStorage
from directory.transparency_tables import (
    TransparencyHead,
    TransparencyLeaf,
    TransparencyNode,
    TransparencyState,
    node_id,
)
from messaging.clock import ManualClock
from messaging.errors import NotFound
from messaging.ports import KeyDirectory
from messaging.transparency import Failure, KeyVerificationError, KeyVerifier
from messaging.types import Address
from tests.directory.test_transparency_log import (
    BACKENDS,
    LOG_ID,
    LOG_KEY,
    START,
    Backend,
    make_log,
    open_backend,
)


@dataclasses.dataclass
class World:
    backend: Backend
    clock: ManualClock
    directory: TransparentKeyDirectory

    def verifier(self) -> KeyVerifier:
        return KeyVerifier(LOG_KEY.public, LOG_ID)


async def open_world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    async with open_backend(request.param, request, tmp_path) as backend:
        clock = ManualClock(START)
        directory = TransparentKeyDirectory(make_log(backend.storage, clock), clock=clock)
        yield World(backend, clock, directory)


@pytest.fixture(params=BACKENDS)
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    async for opened in open_world(request, tmp_path):
        yield opened


@pytest.fixture(params=[b for b in BACKENDS if b != "memory"])
async def sql_world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    """Only the SQL backends: for tests that compare with memory or tamper with tables."""
    async for opened in open_world(request, tmp_path):
        yield opened


def addr(name: str) -> Address:
    return Address.parse(f"{name}@medecin.pli.test")


def fresh_keys() -> tuple[bytes, bytes]:
    keys = generate_keys()
    return keys.encryption_public.raw, keys.signing_public.raw


def test_the_transparent_directory_is_a_key_directory():
    clock = ManualClock(START)
    directory: KeyDirectory = TransparentKeyDirectory(
        make_log(InMemoryLogStorage(), clock), clock=clock
    )
    assert directory is not None


async def populate(directory: TransparentKeyDirectory, count: int) -> None:
    for n in range(count):
        await directory.publish(addr(f"filler{n}"), *fresh_keys())


# --- Publication, rotation, revocation -----------------------------------------------------


async def test_published_keys_are_looked_up(world):
    enc, sig = fresh_keys()
    await world.directory.publish(addr("sophie.martin"), enc, sig)
    assert await world.directory.lookup(addr("sophie.martin")) == LoggedKeys(
        addr("sophie.martin"), enc, sig
    )
    assert await world.directory.lookup(addr("nobody")) is None
    assert await world.directory.signing_keys(addr("nobody")) == []
    assert await world.directory.lookup_with_proof(addr("nobody")) is None


async def test_a_rotation_makes_the_new_keys_current_and_keeps_the_old_signing_key(world):
    first, second = fresh_keys(), fresh_keys()
    await world.directory.publish(addr("a"), *first)
    world.clock.advance(timedelta(days=30))
    await world.directory.publish(addr("a"), *second)
    assert await world.directory.lookup(addr("a")) == LoggedKeys(addr("a"), *second)
    assert await world.directory.signing_keys(addr("a")) == [first[1], second[1]]
    history = await world.directory.history(addr("a"))
    assert [leaf.sequence for leaf in history] == [0, 1]
    assert history[1].timestamp_ms - history[0].timestamp_ms == 30 * 86_400_000


async def test_publishing_the_current_keys_again_appends_nothing(world):
    keys = fresh_keys()
    first = await world.directory.publish(addr("a"), *keys)
    again = await world.directory.publish(addr("a"), *keys)
    assert again.leaf_index == first.leaf_index
    assert await world.directory.log.size() == 1


async def test_a_revocation_ends_the_current_keys_but_not_their_history(world):
    keys = fresh_keys()
    await world.directory.publish(addr("a"), *keys)
    proof = await world.directory.revoke(addr("a"))
    assert proof.leaf.status is KeyStatus.REVOKED
    assert await world.directory.lookup(addr("a")) is None
    assert await world.directory.signing_keys(addr("a")) == [keys[1]]
    looked_up = await world.directory.lookup_with_proof(addr("a"))
    assert looked_up is not None
    assert looked_up.leaf.status is KeyStatus.REVOKED
    with pytest.raises(KeyVerificationError) as caught:
        world.verifier().verify(addr("a"), LoggedKeys(addr("a"), *keys), looked_up)
    assert caught.value.reason is Failure.REVOKED
    # A new publication after a revocation continues the numbering.
    await world.directory.publish(addr("a"), *fresh_keys())
    assert [leaf.sequence for leaf in await world.directory.history(addr("a"))] == [0, 1, 2]


async def test_revoking_what_has_no_keys_appends_nothing(world):
    with pytest.raises(NotFound):
        await world.directory.revoke(addr("ghost"))
    await world.directory.publish(addr("a"), *fresh_keys())
    await world.directory.revoke(addr("a"))
    with pytest.raises(NotFound):
        await world.directory.revoke(addr("a"))
    assert await world.directory.log.size() == 2


async def test_malformed_keys_are_refused_before_anything_is_logged(world):
    with pytest.raises(KeyFormatError, match="32 bytes"):
        await world.directory.publish(addr("a"), b"short", b"x" * 32)
    assert await world.directory.log.size() == 0


async def test_concurrent_rotations_of_one_address_are_numbered_in_log_order(world):
    await asyncio.gather(*(world.directory.publish(addr("a"), *fresh_keys()) for _ in range(12)))
    history = await world.directory.history(addr("a"))
    assert [leaf.sequence for leaf in history] == list(range(12))
    current = await world.directory.lookup(addr("a"))
    assert current is not None
    assert current.signing_key == history[-1].signing_key.raw


# --- Lookups the client verifies ------------------------------------------------------------


async def test_a_lookup_with_proof_verifies_and_later_ones_extend_it(world):
    await populate(world.directory, 9)
    keys = fresh_keys()
    await world.directory.publish(addr("sophie.martin"), *keys)
    verifier = world.verifier()
    proof = await world.directory.lookup_with_proof(addr("sophie.martin"))
    assert proof is not None
    verifier.verify(addr("sophie.martin"), LoggedKeys(addr("sophie.martin"), *keys), proof)
    assert verifier.trusted_head == proof.head
    trusted = proof.head.tree_size

    await populate(world.directory, 7)
    rotated = fresh_keys()
    await world.directory.publish(addr("sophie.martin"), *rotated)
    later = await world.directory.lookup_with_proof(addr("sophie.martin"), known_size=trusted)
    assert later is not None
    assert later.consistency is not None
    assert later.consistency.old_size == trusted
    current = await world.directory.lookup(addr("sophie.martin"))
    assert current == LoggedKeys(addr("sophie.martin"), *rotated)
    verifier.verify(addr("sophie.martin"), current, later)
    assert verifier.trusted_head == later.head


async def test_the_old_key_of_a_rotated_address_is_refused(world):
    old, new = fresh_keys(), fresh_keys()
    await world.directory.publish(addr("a"), *old)
    await world.directory.publish(addr("a"), *new)
    proof = await world.directory.lookup_with_proof(addr("a"))
    assert proof is not None
    with pytest.raises(KeyVerificationError) as caught:
        world.verifier().verify(addr("a"), LoggedKeys(addr("a"), *old), proof)
    assert caught.value.reason is Failure.KEY_MISMATCH


async def test_sql_and_memory_logs_give_identical_proofs(sql_world):
    reference = TransparentKeyDirectory(
        make_log(InMemoryLogStorage(), ManualClock(START)), clock=ManualClock(START)
    )
    keys = [fresh_keys() for _ in range(30)]
    for n, pair in enumerate(keys):
        for directory in (sql_world.directory, reference):
            await directory.publish(addr(f"p{n % 11}"), *pair)
    for n in range(11):
        for known in (None, 0, 5, 17, 30):
            ours = await sql_world.directory.lookup_with_proof(addr(f"p{n}"), known_size=known)
            theirs = await reference.lookup_with_proof(addr(f"p{n}"), known_size=known)
            assert ours == theirs
    for old, new in [(0, 30), (1, 30), (13, 21), (16, 16)]:
        assert await sql_world.directory.consistency_proof(
            old, new
        ) == await reference.consistency_proof(old, new)


# --- An operator tampering with the database is caught ----------------------------------------


async def sql(world: World, *statements) -> None:
    assert world.backend.engine is not None
    async with world.backend.engine.begin() as conn:
        for statement in statements:
            await conn.execute(statement)


async def test_keys_swapped_in_the_database_after_logging_are_refused(sql_world):
    await populate(sql_world.directory, 6)
    await sql_world.directory.publish(addr("victim"), *fresh_keys())
    await populate(sql_world.directory, 3)
    verifier = sql_world.verifier()
    honest = await sql_world.directory.lookup_with_proof(addr("victim"))
    assert honest is not None
    # The operator swaps in a key it holds, in the leaf row only (the hashes stay).
    attacker = fresh_keys()
    forged = KeyLeaf(
        "victim@medecin.pli.test",
        EncryptionPublicKey(attacker[0]),
        SigningKey.from_seed(b"\x66" * 32).public,
        0,
        honest.leaf.timestamp_ms,
    )
    await sql(
        sql_world,
        update(TransparencyLeaf)
        .where(TransparencyLeaf.leaf_index == honest.leaf_index)
        .values(data=forged.to_bytes()),
    )
    served = await sql_world.directory.lookup(addr("victim"))
    assert served is not None
    assert served.encryption_key == attacker[0]  # the directory itself is fooled...
    proof = await sql_world.directory.lookup_with_proof(addr("victim"))
    assert proof is not None
    with pytest.raises(KeyVerificationError) as caught:
        verifier.verify(addr("victim"), served, proof)  # ...the client is not
    assert caught.value.reason is Failure.NOT_INCLUDED


async def test_a_truncated_database_log_is_refused_as_a_rollback_then_as_inconsistent(sql_world):
    await populate(sql_world.directory, 10)
    verifier = sql_world.verifier()
    proof = await sql_world.directory.lookup_with_proof(addr("filler3"))
    assert proof is not None
    keys = await sql_world.directory.lookup(addr("filler3"))
    assert keys is not None
    verifier.verify(addr("filler3"), keys, proof)
    assert verifier.trusted_head is not None
    trusted = verifier.trusted_head.tree_size
    assert trusted == 10

    # The operator cuts the log back to 6 leaves, as if the later publications never were.
    await sql(
        sql_world,
        delete(TransparencyLeaf).where(TransparencyLeaf.leaf_index >= 6),
        delete(TransparencyHead).where(TransparencyHead.tree_size > 6),
        delete(TransparencyNode).where(
            TransparencyNode.node_id.in_(
                [node_id(lv, i) for lv in range(5) for i in range(16) if (i + 1) << lv > 6]
            )
        ),
        update(TransparencyState).values(tree_size=6),
    )
    cut = await sql_world.directory.lookup_with_proof(addr("filler3"), known_size=trusted)
    assert cut is not None
    with pytest.raises(KeyVerificationError) as caught:
        verifier.verify(addr("filler3"), keys, cut)
    assert caught.value.reason is Failure.ROLLBACK

    # It then grows the log past the trusted size with other content.
    for n in range(6):
        await sql_world.directory.publish(addr(f"other{n}"), *fresh_keys())
    grown = await sql_world.directory.lookup_with_proof(addr("filler3"), known_size=trusted)
    assert grown is not None
    assert grown.head.tree_size == 12
    with pytest.raises(KeyVerificationError) as caught:
        verifier.verify(addr("filler3"), keys, grown)
    assert caught.value.reason is Failure.INCONSISTENT


async def test_a_head_signed_with_another_key_in_the_database_is_refused(sql_world):
    await populate(sql_world.directory, 4)
    head = await sql_world.directory.latest_head()
    impostor = SigningKey.from_seed(b"\x99" * 32)
    await sql(
        sql_world,
        update(TransparencyHead)
        .where(TransparencyHead.tree_size == head.tree_size)
        .values(signature=impostor.sign(head.signed_bytes())),
    )
    proof = await sql_world.directory.lookup_with_proof(addr("filler1"))
    keys = await sql_world.directory.lookup(addr("filler1"))
    assert proof is not None and keys is not None
    with pytest.raises(KeyVerificationError) as caught:
        sql_world.verifier().verify(addr("filler1"), keys, proof)
    assert caught.value.reason is Failure.BAD_SIGNATURE


async def test_two_directories_showing_different_histories_are_a_split_view():
    clock = ManualClock(START)
    seen_by_alice = TransparentKeyDirectory(make_log(InMemoryLogStorage(), clock), clock=clock)
    seen_by_bob = TransparentKeyDirectory(make_log(InMemoryLogStorage(), clock), clock=clock)
    shared = [fresh_keys() for _ in range(4)]
    for n, pair in enumerate(shared):
        await seen_by_alice.publish(addr(f"p{n}"), *pair)
        await seen_by_bob.publish(addr(f"p{n}"), *pair)
    # Alice is shown the doctor's real key, Bob a key the operator holds.
    real, planted = fresh_keys(), fresh_keys()
    await seen_by_alice.publish(addr("doctor"), *real)
    await seen_by_bob.publish(addr("doctor"), *planted)

    client = KeyVerifier(LOG_KEY.public, LOG_ID)
    alice_view = await seen_by_alice.lookup_with_proof(addr("doctor"))
    assert alice_view is not None
    client.verify(addr("doctor"), LoggedKeys(addr("doctor"), *real), alice_view)
    bob_view = await seen_by_bob.lookup_with_proof(addr("doctor"), known_size=5)
    assert bob_view is not None
    with pytest.raises(KeyVerificationError) as caught:
        client.verify(addr("doctor"), LoggedKeys(addr("doctor"), *planted), bob_view)
    assert caught.value.reason is Failure.SPLIT_VIEW
    assert caught.value.evidence is not None
    assert {caught.value.evidence.first, caught.value.evidence.second} == {
        alice_view.head,
        bob_view.head,
    }


async def test_a_quiet_log_stays_fresh_for_clients_by_re_signing_its_head(world):
    keys = fresh_keys()
    await world.directory.publish(addr("a"), *keys)
    client = KeyVerifier(LOG_KEY.public, LOG_ID, clock=world.clock, max_age=timedelta(hours=1))
    current = LoggedKeys(addr("a"), *keys)
    first = await world.directory.lookup_with_proof(addr("a"))
    assert first is not None
    client.verify(addr("a"), current, first)
    world.clock.advance(timedelta(hours=3))
    stale = await world.directory.lookup_with_proof(addr("a"), known_size=1)
    assert stale is not None
    with pytest.raises(KeyVerificationError) as caught:
        client.verify(addr("a"), current, stale)
    assert caught.value.reason is Failure.STALE
    await world.directory.log.refresh_head()
    fresh = await world.directory.lookup_with_proof(addr("a"), known_size=1)
    assert fresh is not None
    client.verify(addr("a"), current, fresh)
    assert client.trusted_head == fresh.head

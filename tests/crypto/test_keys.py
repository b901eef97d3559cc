"""Mailbox keys, signing keys and signatures."""

from __future__ import annotations

import pytest

from crypto import (
    EncryptionPublicKey,
    KeyFormatError,
    MailboxKeys,
    SigningKey,
    SigningPublicKey,
    generate_keys,
    generate_signing_key,
    verify_signature,
)
from tests.crypto.support import ALICE, BOB


def test_generated_keys_are_fresh_and_well_formed() -> None:
    first, second = generate_keys(), generate_keys()
    assert first != second
    assert len(first.encryption_secret) == len(first.signing_seed) == 32
    assert len(first.encryption_public.raw) == len(first.signing_public.raw) == 32
    assert first.encryption_secret != first.signing_seed


def test_public_keys_are_derived_deterministically_from_the_secrets() -> None:
    copy = MailboxKeys(ALICE.encryption_secret, ALICE.signing_seed)
    assert copy.encryption_public == ALICE.encryption_public
    assert copy.signing_public == ALICE.signing_public
    assert copy.signing_key == ALICE.signing_key
    assert copy.signing_key.public == ALICE.signing_public


def test_a_signature_verifies_only_for_its_key_and_message() -> None:
    signature = ALICE.signing_key.sign(b"ordonnance")
    assert len(signature) == 64
    assert verify_signature(ALICE.signing_public, b"ordonnance", signature)
    assert not verify_signature(ALICE.signing_public, b"ordonnancf", signature)
    assert not verify_signature(BOB.signing_public, b"ordonnance", signature)


@pytest.mark.parametrize(
    "signature",
    [b"", bytes(63), bytes(64), bytes(65), b"\xff" * 64],
    ids=["empty", "short", "zeros", "long", "ones"],
)
def test_verify_signature_returns_false_for_malformed_signatures(signature: bytes) -> None:
    assert verify_signature(ALICE.signing_public, b"message", signature) is False


def test_each_flipped_bit_of_a_signature_is_refused() -> None:
    signature = ALICE.signing_key.sign(b"m")
    for index in range(64):
        for mask in (0x01, 0x80):
            mutated = bytearray(signature)
            mutated[index] ^= mask
            assert not verify_signature(ALICE.signing_public, b"m", bytes(mutated))


def test_signing_key_from_seed_and_generation() -> None:
    key = SigningKey.from_seed(ALICE.signing_seed)
    assert key.seed == ALICE.signing_seed
    assert key.public == ALICE.signing_public
    assert generate_signing_key() != generate_signing_key()


@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_keys_of_the_wrong_length_are_refused(size: int) -> None:
    raw = bytes(size)
    for build in (
        EncryptionPublicKey,
        SigningPublicKey,
        SigningKey.from_seed,
        lambda b: MailboxKeys(b, bytes(32)),
        lambda b: MailboxKeys(bytes(32), b),
    ):
        with pytest.raises(KeyFormatError):
            build(raw)


def test_keys_that_are_not_bytes_are_refused() -> None:
    with pytest.raises(KeyFormatError):
        EncryptionPublicKey(bytearray(32))  # type: ignore[arg-type]
    with pytest.raises(KeyFormatError):
        SigningPublicKey("a" * 32)  # type: ignore[arg-type]


def test_public_keys_round_trip_through_base64url() -> None:
    for key in (ALICE.encryption_public, ALICE.signing_public):
        text = key.b64()
        assert len(text) == 43
        assert "=" not in text
        assert "+" not in text
        assert "/" not in text
        assert type(key).from_b64(text) == key


@pytest.mark.parametrize(
    "text",
    [
        "",
        "A" * 42,
        "A" * 44,
        "A" * 43 + "=",
        "A" * 42 + "+",
        "A" * 42 + " ",
        "A" * 42 + "B",  # non-zero trailing bits: would name the same bytes as "...A"
    ],
)
def test_malformed_base64url_keys_are_refused(text: str) -> None:
    with pytest.raises(KeyFormatError):
        SigningPublicKey.from_b64(text)


def test_fingerprints_are_short_hex_and_distinct() -> None:
    fingerprint = ALICE.signing_public.fingerprint()
    assert len(fingerprint) == 32
    assert int(fingerprint, 16) >= 0
    assert fingerprint != BOB.signing_public.fingerprint()
    assert ALICE.encryption_public.fingerprint() != fingerprint


def test_no_secret_appears_in_reprs() -> None:
    keys = generate_keys()
    secrets = [keys.encryption_secret, keys.signing_seed]
    for shown in (repr(keys), str(keys), repr(keys.signing_key), str(keys.signing_key)):
        for secret in secrets:
            assert secret.hex() not in shown
            assert repr(secret) not in shown
            assert secret.hex()[:16] not in shown
    assert keys.signing_public.b64() in repr(keys)
    assert keys.encryption_public.b64() in repr(keys)


def test_keys_are_immutable() -> None:
    with pytest.raises(AttributeError):
        ALICE.encryption_secret = bytes(32)  # type: ignore[misc]
    with pytest.raises(AttributeError):
        ALICE.signing_public.raw = bytes(32)  # type: ignore[misc]

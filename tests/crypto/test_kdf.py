"""Argon2id derivation of the auth key and the bundle key."""

from __future__ import annotations

import pytest

from crypto import (
    Argon2Limits,
    AuthKey,
    BundleKey,
    CryptoError,
    DerivedKeys,
    KeyFormatError,
    auth_key_hash,
    check_auth_key,
    derive_keys,
    new_salt,
)

FAST = Argon2Limits.TEST_MINIMUM
SALT = bytes(range(16))


def test_derivation_is_deterministic_for_a_fixed_salt() -> None:
    assert derive_keys("correct horse", SALT, FAST) == derive_keys("correct horse", SALT, FAST)


def test_different_salts_give_different_keys() -> None:
    first = derive_keys("correct horse", SALT, FAST)
    second = derive_keys("correct horse", bytes(16), FAST)
    assert first.auth_key != second.auth_key
    assert first.bundle_key != second.bundle_key


def test_different_secrets_and_limits_give_different_keys() -> None:
    base = derive_keys("correct horse", SALT, FAST)
    assert derive_keys("correct horsf", SALT, FAST) != base
    assert derive_keys("correct horse", SALT, Argon2Limits(2, 8192)) != base
    assert derive_keys("correct horse", SALT, Argon2Limits(1, 16384)) != base


def test_auth_and_bundle_halves_differ() -> None:
    derived = derive_keys("correct horse", SALT, FAST)
    assert derived.auth_key.raw != derived.bundle_key.raw
    assert len(derived.auth_key.raw) == len(derived.bundle_key.raw) == 32


def test_secrets_are_nfkc_normalised() -> None:
    composed = derive_keys("Caf\u00e9 \uff30", SALT, FAST)  # é, full-width P
    decomposed = derive_keys("Cafe\u0301 P", SALT, FAST)
    assert composed == decomposed


@pytest.mark.parametrize("secret", ["", "a\ud800"])
def test_empty_or_invalid_secrets_are_refused(secret: str) -> None:
    with pytest.raises(KeyFormatError):
        derive_keys(secret, SALT, FAST)


@pytest.mark.parametrize("size", [0, 8, 15, 17, 32])
def test_salts_of_the_wrong_length_are_refused(size: int) -> None:
    with pytest.raises(KeyFormatError):
        derive_keys("secret", bytes(size), FAST)


def test_new_salts_are_16_random_bytes() -> None:
    salts = {new_salt() for _ in range(50)}
    assert len(salts) == 50
    assert all(len(salt) == 16 for salt in salts)


@pytest.mark.parametrize(
    ("opslimit", "memlimit"),
    [(0, 8192), (1, 8191), (1, 0), (-1, 8192), (1, 2**64), (True, 8192), (1.0, 8192)],
)
def test_limits_outside_libsodium_bounds_are_refused(opslimit: object, memlimit: object) -> None:
    with pytest.raises(KeyFormatError):
        Argon2Limits(opslimit, memlimit)  # type: ignore[arg-type]


def test_limit_presets() -> None:
    assert Argon2Limits.TEST_MINIMUM == Argon2Limits(1, 8192)
    assert Argon2Limits.INTERACTIVE == Argon2Limits(2, 64 * 1024 * 1024)
    assert Argon2Limits.MODERATE == Argon2Limits(3, 256 * 1024 * 1024)


def test_check_auth_key_accepts_only_the_matching_key() -> None:
    derived = derive_keys("correct horse", SALT, FAST)
    stored = auth_key_hash(derived.auth_key)
    assert len(stored) == 32
    assert stored != derived.auth_key.raw
    assert check_auth_key(derived.auth_key, stored)
    other = derive_keys("correct horsf", SALT, FAST)
    assert not check_auth_key(other.auth_key, stored)
    assert not check_auth_key(derived.auth_key, stored[:-1])
    assert not check_auth_key(derived.auth_key, b"")


def test_the_stored_hash_reveals_neither_half() -> None:
    derived = derive_keys("correct horse", SALT, FAST)
    stored = auth_key_hash(derived.auth_key)
    assert derived.bundle_key.raw not in stored
    # A bundle key used as an auth key does not pass: the halves are not interchangeable.
    assert not check_auth_key(AuthKey(derived.bundle_key.raw), stored)


def test_no_secret_appears_in_reprs() -> None:
    derived = derive_keys("correct horse", SALT, FAST)
    for shown in (repr(derived), str(derived), repr(derived.auth_key), repr(derived.bundle_key)):
        for secret in (derived.auth_key.raw, derived.bundle_key.raw):
            assert secret.hex() not in shown
            assert repr(secret) not in shown
    assert repr(derived) == "DerivedKeys(auth_key=AuthKey(), bundle_key=BundleKey())"


@pytest.mark.parametrize("build", [AuthKey, BundleKey])
def test_derived_key_types_check_their_length(build: type[AuthKey | BundleKey]) -> None:
    with pytest.raises(KeyFormatError):
        build(bytes(31))


def test_derived_keys_is_a_plain_pair() -> None:
    pair = DerivedKeys(AuthKey(bytes(32)), BundleKey(bytes(32)))
    assert pair.auth_key.raw == pair.bundle_key.raw == bytes(32)


def test_inputs_of_the_wrong_type_are_refused() -> None:
    with pytest.raises(KeyFormatError):
        derive_keys(b"bytes are not text", SALT, FAST)  # type: ignore[arg-type]
    with pytest.raises(KeyFormatError):
        derive_keys("secret", SALT, (1, 8192))  # type: ignore[arg-type]


def test_a_libsodium_failure_becomes_a_crypto_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulates what an allocation failure looks like (a real one cannot be provoked
    # safely: with overcommit, a huge memlimit would summon the OOM killer instead).
    # Reached through crypto.kdf's namespace: the tests themselves never import PyNaCl.
    import crypto.kdf

    nacl = vars(crypto.kdf)["nacl"]

    def fail(*_args: object) -> bytes:
        raise nacl.exceptions.RuntimeError("simulated")

    monkeypatch.setattr(nacl.bindings, "crypto_pwhash_alg", fail)
    with pytest.raises(CryptoError) as caught:
        derive_keys("secret", SALT, FAST)
    assert type(caught.value) is CryptoError
    assert caught.value.__cause__ is None

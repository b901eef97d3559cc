"""The key bundle: the mailbox's secrets under a bundle key."""

from __future__ import annotations

import pytest

from crypto import (
    Argon2Limits,
    BundleError,
    BundleKey,
    derive_keys,
    generate_keys,
    new_salt,
    open_bundle,
    seal_bundle,
)
from crypto.bundle import BUNDLE_BYTES, _seal_bundle_with_nonce
from tests.crypto.support import ALICE

KEY = BundleKey(bytes(range(32)))


def test_a_bundle_round_trips() -> None:
    keys = generate_keys()
    blob = seal_bundle(keys, KEY)
    assert len(blob) == BUNDLE_BYTES == 105
    assert blob[0] == 1
    assert open_bundle(blob, KEY) == keys


def test_a_bundle_opens_with_the_key_derived_from_its_passphrase() -> None:
    salt = new_salt()
    bundle_key = derive_keys("ma phrase secrète", salt, Argon2Limits.TEST_MINIMUM).bundle_key
    blob = seal_bundle(ALICE, bundle_key)
    again = derive_keys("ma phrase secrète", salt, Argon2Limits.TEST_MINIMUM).bundle_key
    assert open_bundle(blob, again) == ALICE


def test_sealing_twice_uses_fresh_nonces() -> None:
    assert seal_bundle(ALICE, KEY) != seal_bundle(ALICE, KEY)


def test_the_blob_does_not_contain_the_secrets() -> None:
    blob = seal_bundle(ALICE, KEY)
    assert ALICE.encryption_secret not in blob
    assert ALICE.signing_seed not in blob


def test_a_wrong_key_is_refused() -> None:
    blob = seal_bundle(ALICE, KEY)
    with pytest.raises(BundleError):
        open_bundle(blob, BundleKey(bytes(32)))


def test_every_flipped_bit_is_refused() -> None:
    blob = seal_bundle(ALICE, KEY)
    for index in range(len(blob)):
        for mask in (0x01, 0x80):
            mutated = bytearray(blob)
            mutated[index] ^= mask
            with pytest.raises(BundleError):
                open_bundle(bytes(mutated), KEY)


@pytest.mark.parametrize("size", [0, 1, 25, 104, 106, 200])
def test_a_blob_of_the_wrong_length_is_refused(size: int) -> None:
    with pytest.raises(BundleError):
        open_bundle(bytes(size), KEY)


def test_the_nonce_is_fixed_only_through_the_private_helper() -> None:
    nonce = bytes(24)
    first = _seal_bundle_with_nonce(ALICE, KEY, nonce)
    assert first == _seal_bundle_with_nonce(ALICE, KEY, nonce)
    assert first[1:25] == nonce
    assert open_bundle(first, KEY) == ALICE


def test_errors_do_not_leak_key_material() -> None:
    blob = seal_bundle(ALICE, KEY)
    with pytest.raises(BundleError) as caught:
        open_bundle(blob, BundleKey(bytes(32)))
    message = str(caught.value)
    for secret in (KEY.raw, ALICE.encryption_secret, ALICE.signing_seed):
        assert secret.hex() not in message
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__

"""The committed test vectors hold against this implementation, and regenerate identically."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest

from crypto import (
    Argon2Limits,
    AuthKey,
    BundleError,
    BundleKey,
    EnvelopeError,
    KeyFormatError,
    MailboxKeys,
    RoutingHeader,
    SignatureError,
    auth_key_hash,
    check_auth_key,
    derive_keys,
    normalize_recovery_key,
    open_bundle,
    open_bytes,
)
from crypto.encoding import blake2b_256
from tests.crypto import make_vectors

ERRORS: dict[str, type[Exception]] = {
    "EnvelopeError": EnvelopeError,
    "SignatureError": SignatureError,
    "BundleError": BundleError,
}


@cache
def vectors() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(make_vectors.VECTORS_PATH.read_text(encoding="utf-8"))
    return loaded


def names(section: str) -> list[str]:
    return [vector["name"] for vector in vectors()[section]]


def by_name(section: str, name: str) -> dict[str, Any]:
    return next(vector for vector in vectors()[section] if vector["name"] == name)


def keys_of(encryption_secret_hex: str) -> MailboxKeys:
    # Opening needs only the X25519 secret; the seed is irrelevant to a reader.
    return MailboxKeys(bytes.fromhex(encryption_secret_hex), bytes(32))


def test_the_deterministic_sections_regenerate_identically() -> None:
    regenerated = json.loads(json.dumps(make_vectors.deterministic_sections()))
    for section, content in regenerated.items():
        assert vectors()[section] == content, section


def test_the_envelope_expectations_regenerate_identically() -> None:
    expected = json.loads(json.dumps(make_vectors.envelope_expectations()))
    committed = [
        {key: vector[key] for key in expectation}
        for vector, expectation in zip(vectors()["envelopes"], expected, strict=True)
    ]
    assert committed == expected


def test_fixed_keys_match_their_public_halves() -> None:
    for name, entry in vectors()["keys"].items():
        keys = MailboxKeys(
            bytes.fromhex(entry["encryption_secret"]), bytes.fromhex(entry["signing_seed"])
        )
        assert keys.encryption_public.raw.hex() == entry["encryption_public"], name
        assert keys.encryption_public.b64() == entry["encryption_public_b64"], name
        assert keys.signing_public.raw.hex() == entry["signing_public"], name
        assert keys.signing_public.b64() == entry["signing_public_b64"], name
        assert keys.signing_public.fingerprint() == entry["signing_public_fingerprint"], name


@pytest.mark.parametrize("name", names("argon2id"))
def test_argon2id_vector(name: str) -> None:
    vector = by_name("argon2id", name)
    limits = Argon2Limits(vector["opslimit"], vector["memlimit"])
    derived = derive_keys(vector["secret_text"], bytes.fromhex(vector["salt"]), limits)
    assert derived.auth_key.raw.hex() == vector["auth_key"]
    assert derived.bundle_key.raw.hex() == vector["bundle_key"]
    assert vector["output"] == vector["auth_key"] + vector["bundle_key"]
    assert auth_key_hash(derived.auth_key).hex() == vector["auth_key_hash"]
    assert check_auth_key(derived.auth_key, bytes.fromhex(vector["auth_key_hash"]))
    nfkc = bytes.fromhex(vector["secret_nfkc_utf8"]).decode()
    assert derive_keys(nfkc, bytes.fromhex(vector["salt"]), limits) == derived


def test_recovery_key_vectors() -> None:
    section = vectors()["recovery_keys"]
    for text in section["accepted_inputs_text"]:
        assert normalize_recovery_key(text) == section["canonical_text"]
    for text in section["refused_inputs_text"]:
        with pytest.raises(KeyFormatError):
            normalize_recovery_key(text)


@pytest.mark.parametrize("name", names("bundles"))
def test_bundle_vector_opens(name: str) -> None:
    vector = by_name("bundles", name)
    keys = open_bundle(
        bytes.fromhex(vector["blob"]), BundleKey(bytes.fromhex(vector["bundle_key"]))
    )
    assert keys.encryption_secret.hex() == vector["encryption_secret"]
    assert keys.signing_seed.hex() == vector["signing_seed"]


@pytest.mark.parametrize("name", names("bundle_failures"))
def test_bundle_failure_vector_is_refused(name: str) -> None:
    vector = by_name("bundle_failures", name)
    with pytest.raises(ERRORS[vector["expect"]]):
        open_bundle(bytes.fromhex(vector["blob"]), BundleKey(bytes.fromhex(vector["bundle_key"])))


@pytest.mark.parametrize("name", names("headers"))
def test_header_vector_is_canonical(name: str) -> None:
    vector = by_name("headers", name)
    canonical = bytes.fromhex(vector["canonical"])
    header = RoutingHeader.from_bytes(canonical)
    assert header.to_bytes() == canonical
    assert canonical.decode() == vector["canonical_text"]
    assert json.loads(canonical) == vector["fields"]
    assert blake2b_256(canonical).hex() == vector["header_hash"]


@pytest.mark.parametrize("name", names("header_failures"))
def test_header_failure_vector_is_refused(name: str) -> None:
    vector = by_name("header_failures", name)
    with pytest.raises(EnvelopeError):
        RoutingHeader.from_bytes(bytes.fromhex(vector["input"]))


@pytest.mark.parametrize("name", names("envelopes"))
def test_envelope_vector_opens(name: str) -> None:
    vector = by_name("envelopes", name)
    keys = keys_of(vector["recipient_encryption_secret"])
    envelope = bytes.fromhex(vector["envelope"])
    plaintext, opened = open_bytes(envelope, bytes.fromhex(vector["slot"]), keys)
    assert plaintext.hex() == vector["plaintext"]
    assert opened.plaintext_digest.hex() == vector["plaintext_digest"]
    assert opened.plaintext_size == len(plaintext)
    assert opened.header.signer.b64() == vector["signer_public_b64"]
    assert opened.header.to_bytes().hex() == vector["header"]
    assert blake2b_256(opened.header.to_bytes()).hex() == vector["header_hash"]
    assert envelope[9 : 9 + len(vector["header"]) // 2].hex() == vector["header"]


@pytest.mark.parametrize("name", names("envelope_failures"))
def test_envelope_failure_vector_is_refused(name: str) -> None:
    vector = by_name("envelope_failures", name)
    keys = keys_of(vector["recipient_encryption_secret"])
    expected = ERRORS[vector["expect"]]
    with pytest.raises(EnvelopeError) as caught:
        open_bytes(bytes.fromhex(vector["envelope"]), bytes.fromhex(vector["slot"]), keys)
    # Only the wrong-signer vector may end in a SignatureError: every other one must be
    # refused before the signature is even looked at.
    assert (type(caught.value) is SignatureError) == (expected is SignatureError)


def test_the_vectors_cover_what_the_brief_asks_for() -> None:
    assert {"empty", "short-utf8", "three-chunks-gateway"} <= set(names("envelopes"))
    assert {"tampered-header", "truncated-no-final", "wrong-recipient", "wrong-signer"} <= set(
        names("envelope_failures")
    )
    limits = {(v["opslimit"], v["memlimit"]) for v in vectors()["argon2id"]}
    assert (Argon2Limits.TEST_MINIMUM.opslimit, Argon2Limits.TEST_MINIMUM.memlimit) in limits
    assert (Argon2Limits.INTERACTIVE.opslimit, Argon2Limits.INTERACTIVE.memlimit) in limits


def test_auth_key_hash_is_personalised_blake2b() -> None:
    # The webmail never computes it, but a second server implementation might.
    import hashlib

    key = AuthKey(bytes(range(32)))
    person = b"pli-auth-v1".ljust(16, b"\x00")
    expected = hashlib.blake2b(bytes(range(32)), digest_size=32, person=person).digest()
    assert auth_key_hash(key) == expected

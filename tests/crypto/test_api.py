"""The package boundary: a curated public API, own types only, no upward imports."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

import crypto
from crypto import (
    AuthKey,
    BundleKey,
    ContentKey,
    DerivedKeys,
    MailboxKeys,
    SigningKey,
    generate_keys,
    open_bytes,
    open_slot,
    seal_bytes,
)
from tests.crypto.support import ALICE, BOB, make_header

PACKAGE = Path(crypto.__file__).parent
TESTS = Path(__file__).parent
PLI_PACKAGES = {
    "messaging",
    "directory",
    "mailbox_store",
    "gateway_smtp",
    "gateway_imap",
    "web",
    "pli",
}

PUBLIC_API = {
    "CryptoError",
    "KeyFormatError",
    "BundleError",
    "EnvelopeError",
    "SignatureError",
    "EncryptionPublicKey",
    "SigningPublicKey",
    "SigningKey",
    "MailboxKeys",
    "generate_keys",
    "generate_signing_key",
    "verify_signature",
    "Argon2Limits",
    "AuthKey",
    "BundleKey",
    "DerivedKeys",
    "new_salt",
    "derive_keys",
    "auth_key_hash",
    "check_auth_key",
    "generate_app_password",
    "generate_recovery_key",
    "normalize_recovery_key",
    "seal_bundle",
    "open_bundle",
    "PROVENANCE_E2E",
    "PROVENANCE_GATEWAY",
    "DEFAULT_CHUNK_SIZE",
    "SLOT_BYTES",
    "GatewayInfo",
    "RoutingHeader",
    "ContentKey",
    "SealResult",
    "OpenedEnvelope",
    "seal_envelope",
    "open_envelope",
    "read_header",
    "open_slot",
    "reseal_slot",
    "seal_bytes",
    "open_bytes",
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_public_api_is_exactly_the_curated_list() -> None:
    assert set(crypto.__all__) == PUBLIC_API
    assert len(crypto.__all__) == len(PUBLIC_API)
    for name in crypto.__all__:
        assert hasattr(crypto, name), name


def test_no_public_name_comes_from_pynacl() -> None:
    for name in crypto.__all__:
        value = getattr(crypto, name)
        module = getattr(value, "__module__", "crypto")
        assert module.startswith("crypto"), (name, module)


def test_the_exception_hierarchy() -> None:
    assert issubclass(crypto.KeyFormatError, crypto.CryptoError)
    assert issubclass(crypto.BundleError, crypto.CryptoError)
    assert issubclass(crypto.EnvelopeError, crypto.CryptoError)
    assert issubclass(crypto.SignatureError, crypto.EnvelopeError)


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_crypto_imports_nothing_from_the_rest_of_pli(path: Path) -> None:
    for module in imported_modules(path):
        assert module.split(".")[0] not in PLI_PACKAGES, (path.name, module)


@pytest.mark.parametrize("path", sorted(TESTS.glob("*.py")), ids=lambda p: p.name)
def test_the_crypto_tests_do_not_import_pynacl(path: Path) -> None:
    for module in imported_modules(path):
        assert module.split(".")[0] != "nacl", (path.name, module)


def test_results_are_own_types_over_bytes() -> None:
    envelope, result = seal_bytes(
        make_header(size=1), b"x", signer=ALICE.signing_key, recipients=[BOB.encryption_public]
    )
    plaintext, opened = open_bytes(envelope, result.slots[0], BOB)
    values: list[object] = [
        result,
        opened,
        open_slot(result.slots[0], BOB),
        generate_keys(),
        ALICE.signing_key,
        ALICE.signing_public,
        ALICE.encryption_public,
    ]
    for value in values:
        assert type(value).__module__.startswith("crypto.")
        assert dataclasses.is_dataclass(value)
        for item in dataclasses.fields(value):
            field_value = getattr(value, item.name)
            module = type(field_value).__module__
            assert module == "builtins" or module.startswith("crypto."), (value, item.name)
    assert type(envelope) is bytes
    assert type(plaintext) is bytes
    assert all(type(slot) is bytes for slot in result.slots)


@pytest.mark.parametrize(
    "kind", [AuthKey, BundleKey, ContentKey, MailboxKeys, SigningKey, DerivedKeys]
)
def test_secret_holding_types_are_frozen_and_slotted(kind: type) -> None:
    assert dataclasses.is_dataclass(kind)
    assert kind.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert hasattr(kind, "__slots__")


def test_no_secret_appears_in_the_repr_of_a_content_key() -> None:
    _, result = seal_bytes(
        make_header(size=0), b"", signer=ALICE.signing_key, recipients=[BOB.encryption_public]
    )
    key = open_slot(result.slots[0], BOB)
    assert repr(key) == "ContentKey()"

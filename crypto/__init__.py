"""Pli's cryptography: mailbox keys, passphrase-derived keys, key bundles, sealed envelopes.

The bottom layer of Pli: it imports nothing from the rest of the project, and it is the
only package that imports PyNaCl (libsodium). No PyNaCl type crosses this boundary: keys
and results are this package's own frozen dataclasses over ``bytes``, and libsodium's
errors are translated into the hierarchy of :mod:`crypto.errors`.

Modules, each explaining its decisions in its docstring:

- :mod:`crypto.keys`: X25519 and Ed25519 keys of a mailbox, signatures.
- :mod:`crypto.kdf`: Argon2id from a passphrase to an auth key and a bundle key.
- :mod:`crypto.passwords`: app passwords and recovery keys people copy or type.
- :mod:`crypto.bundle`: the mailbox's secret keys encrypted under a bundle key.
- :mod:`crypto.header`: the routing header of an envelope, canonical JSON.
- :mod:`crypto.envelope`: sealing and opening envelopes, key slots.
- :mod:`crypto.encoding`: base64url and BLAKE2b helpers.
- :mod:`crypto.merkle`: Merkle trees and signed tree heads of the key transparency log.

``docs/envelope.md`` specifies the byte formats for other implementations (the webmail's
JavaScript), and ``tests/crypto/vectors/envelope-v1.json`` holds the test vectors.
"""

from __future__ import annotations

from crypto.bundle import open_bundle, seal_bundle
from crypto.envelope import (
    DEFAULT_CHUNK_SIZE,
    SLOT_BYTES,
    ContentKey,
    OpenedEnvelope,
    SealResult,
    open_bytes,
    open_envelope,
    open_slot,
    read_header,
    reseal_slot,
    seal_bytes,
    seal_envelope,
)
from crypto.errors import BundleError, CryptoError, EnvelopeError, KeyFormatError, SignatureError
from crypto.header import PROVENANCE_E2E, PROVENANCE_GATEWAY, GatewayInfo, RoutingHeader
from crypto.kdf import (
    Argon2Limits,
    AuthKey,
    BundleKey,
    DerivedKeys,
    auth_key_hash,
    check_auth_key,
    derive_keys,
    new_salt,
)
from crypto.keys import (
    EncryptionPublicKey,
    MailboxKeys,
    SigningKey,
    SigningPublicKey,
    generate_keys,
    generate_signing_key,
    verify_signature,
)
from crypto.passwords import generate_app_password, generate_recovery_key, normalize_recovery_key

__all__ = [
    # errors
    "CryptoError",
    "KeyFormatError",
    "BundleError",
    "EnvelopeError",
    "SignatureError",
    # keys
    "EncryptionPublicKey",
    "SigningPublicKey",
    "SigningKey",
    "MailboxKeys",
    "generate_keys",
    "generate_signing_key",
    "verify_signature",
    # kdf and typed secrets
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
    # bundle
    "seal_bundle",
    "open_bundle",
    # envelope
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
]

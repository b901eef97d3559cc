"""Mailbox key pairs: X25519 for encryption, Ed25519 for signatures.

Decisions:

- **Two independent keys, not one converted key.** libsodium can turn an Ed25519 key into
  an X25519 key, but using one secret for two algorithms couples their security proofs and
  their lifetimes. Pli keeps two random secrets, stored together in the key bundle.
- **Own types over raw bytes.** Every key is a frozen, slotted dataclass wrapping ``bytes``
  of a checked length, so no PyNaCl object crosses the package boundary and a public key
  can never be passed where a signing key is expected. Secret fields are ``repr=False``:
  a key printed into a log shows its public half or nothing.
- **Secret X25519 key = 32 random bytes**, public key = ``crypto_scalarmult_base`` of it,
  exactly what libsodium's ``crypto_box_keypair`` does; the clamping happens inside X25519.
- **Ed25519 keys are kept as their 32-byte seed** (libsodium ``crypto_sign_seed_keypair``
  expands it); the seed is what the bundle stores and what JavaScript imports.
- **Fingerprints** are BLAKE2b-128 of the raw public key in hex: for people comparing keys
  on screen, never for security decisions (those compare the full key).
- **verify_signature returns a bool and never raises** for a bad or malformed signature:
  verification is a question, and callers should not need a try block to ask it.
  libsodium's verifier rejects non-canonical encodings and small-order keys, and
  libsodium.js uses the same code, so both sides accept the same signatures.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field

import nacl.bindings
import nacl.exceptions

from crypto.encoding import b64url_decode, b64url_encode
from crypto.errors import KeyFormatError

__all__ = [
    "KEY_BYTES",
    "SIGNATURE_BYTES",
    "EncryptionPublicKey",
    "SigningPublicKey",
    "SigningKey",
    "MailboxKeys",
    "generate_keys",
    "generate_signing_key",
    "verify_signature",
]

KEY_BYTES = 32
SIGNATURE_BYTES = 64


def require_bytes(value: object, length: int, what: str) -> bytes:
    """Return ``value`` if it is ``bytes`` of ``length``; the message never shows the value."""
    if not isinstance(value, bytes) or len(value) != length:
        raise KeyFormatError(f"{what} must be {length} bytes")
    return value


def _fingerprint(raw: bytes) -> str:
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class EncryptionPublicKey:
    """An X25519 public key (32 bytes)."""

    raw: bytes

    def __post_init__(self) -> None:
        require_bytes(self.raw, KEY_BYTES, "an X25519 public key")

    @classmethod
    def from_b64(cls, text: str) -> EncryptionPublicKey:
        """Parse the base64url (no padding) form; :class:`KeyFormatError` if malformed."""
        return cls(b64url_decode(text))

    def b64(self) -> str:
        """The base64url form without padding, as in the directory."""
        return b64url_encode(self.raw)

    def fingerprint(self) -> str:
        """Hex BLAKE2b-128 of the key, for display."""
        return _fingerprint(self.raw)

    def __repr__(self) -> str:
        return f"EncryptionPublicKey({self.b64()!r})"


@dataclass(frozen=True, slots=True)
class SigningPublicKey:
    """An Ed25519 public key (32 bytes)."""

    raw: bytes

    def __post_init__(self) -> None:
        require_bytes(self.raw, KEY_BYTES, "an Ed25519 public key")

    @classmethod
    def from_b64(cls, text: str) -> SigningPublicKey:
        """Parse the base64url (no padding) form; :class:`KeyFormatError` if malformed."""
        return cls(b64url_decode(text))

    def b64(self) -> str:
        """The base64url form without padding, as in the routing header ("sigkey")."""
        return b64url_encode(self.raw)

    def fingerprint(self) -> str:
        """Hex BLAKE2b-128 of the key, for display."""
        return _fingerprint(self.raw)

    def __repr__(self) -> str:
        return f"SigningPublicKey({self.b64()!r})"


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An Ed25519 secret key, held as its 32-byte seed."""

    seed: bytes = field(repr=False)
    # libsodium's expanded form, derived once: signing is then a single call.
    _secret: bytes = field(init=False, repr=False, compare=False)
    _public: SigningPublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        require_bytes(self.seed, KEY_BYTES, "an Ed25519 seed")
        public, secret = nacl.bindings.crypto_sign_seed_keypair(self.seed)
        object.__setattr__(self, "_secret", secret)
        object.__setattr__(self, "_public", SigningPublicKey(public))

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """The key whose seed is ``seed`` (32 bytes)."""
        return cls(seed)

    @property
    def public(self) -> SigningPublicKey:
        """The matching public key."""
        return self._public

    def sign(self, message: bytes) -> bytes:
        """A detached 64-byte Ed25519 signature of ``message``."""
        signed = nacl.bindings.crypto_sign(message, self._secret)
        return signed[:SIGNATURE_BYTES]

    def __repr__(self) -> str:
        return f"SigningKey(public={self._public!r})"


@dataclass(frozen=True, slots=True)
class MailboxKeys:
    """The two secrets of a mailbox: what the key bundle protects."""

    encryption_secret: bytes = field(repr=False)
    signing_seed: bytes = field(repr=False)
    # Derived once: deriving the public keys costs a scalar multiplication each time, and a
    # session signs and seals many messages with the same keys.
    _signing: SigningKey = field(init=False, repr=False, compare=False)
    _encryption_public: EncryptionPublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        require_bytes(self.encryption_secret, KEY_BYTES, "an X25519 secret key")
        require_bytes(self.signing_seed, KEY_BYTES, "an Ed25519 seed")
        object.__setattr__(self, "_signing", SigningKey(self.signing_seed))
        object.__setattr__(
            self,
            "_encryption_public",
            EncryptionPublicKey(nacl.bindings.crypto_scalarmult_base(self.encryption_secret)),
        )

    @property
    def encryption_public(self) -> EncryptionPublicKey:
        """The X25519 public key, published in the directory."""
        return self._encryption_public

    @property
    def signing_key(self) -> SigningKey:
        """The Ed25519 signing key."""
        return self._signing

    @property
    def signing_public(self) -> SigningPublicKey:
        """The Ed25519 public key, published in the directory."""
        return self.signing_key.public

    def __repr__(self) -> str:
        return (
            f"MailboxKeys(encryption_public={self.encryption_public!r}, "
            f"signing_public={self.signing_public!r})"
        )


def generate_signing_key() -> SigningKey:
    """A fresh Ed25519 key (an operator key, for instance)."""
    return SigningKey(secrets.token_bytes(KEY_BYTES))


def generate_keys() -> MailboxKeys:
    """Fresh keys for a new mailbox."""
    return MailboxKeys(
        encryption_secret=secrets.token_bytes(KEY_BYTES),
        signing_seed=secrets.token_bytes(KEY_BYTES),
    )


def verify_signature(public: SigningPublicKey, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is a valid Ed25519 signature of ``message`` by ``public``.

    Never raises for a bad, truncated or otherwise malformed signature: returns False.
    """
    if len(signature) != SIGNATURE_BYTES:
        return False
    try:
        nacl.bindings.crypto_sign_open(signature + message, public.raw)
    except nacl.exceptions.CryptoError:
        return False
    return True

"""Errors of the cryptographic layer.

The hierarchy, drawn once::

    CryptoError               base of every error this package raises on purpose
    ├── KeyFormatError        a key, salt, KDF limit or typed secret that is malformed
    ├── BundleError           a key bundle that does not open: wrong key, tampered, bad format
    └── EnvelopeError         an envelope or slot that is refused: tampering, truncation,
        │                     reordering, trailing data, wrong recipient, bad format
        └── SignatureError    the stream decrypted but the sender's signature does not verify

Why so few classes: a caller's reaction to a refused envelope is the same whatever byte was
wrong (discard the output, report "this message cannot be opened"), and finer classes would
only tempt callers into treating some tampering as benign. ``SignatureError`` is kept apart
because it is the one failure that says something about the *sender* (the content key opened
and the stream is intact, but the claimed signer did not sign it) and clients may want to
report it differently.

Messages never contain key material, plaintext or secret-derived bytes: exceptions end up
in logs. PyNaCl's own exceptions never escape this package; they are translated here.
"""

from __future__ import annotations

__all__ = [
    "CryptoError",
    "KeyFormatError",
    "BundleError",
    "EnvelopeError",
    "SignatureError",
]


class CryptoError(Exception):
    """Base class of every error the crypto package raises on purpose."""


class KeyFormatError(CryptoError):
    """A key, salt, KDF parameter or human-typed secret that is malformed."""


class BundleError(CryptoError):
    """A key bundle that does not open (wrong key, tampered or malformed blob)."""


class EnvelopeError(CryptoError):
    """An envelope, routing header or key slot that is refused."""


class SignatureError(EnvelopeError):
    """The envelope decrypted, but its signature does not verify against header.signer."""

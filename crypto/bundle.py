"""The key bundle: a mailbox's two secrets, encrypted under a bundle key.

Format (105 bytes)::

    0x01 || nonce (24) || XChaCha20-Poly1305-IETF(key = bundle key,
                                                 nonce,
                                                 ad = b"pli-bundle-v1",
                                                 plaintext = encryption_secret (32) ||
                                                             signing_seed (32))

The ciphertext is 64 bytes plus the 16-byte Poly1305 tag.

Decisions:

- **XChaCha20-Poly1305** (libsodium ``crypto_aead_xchacha20poly1305_ietf_*``, also in
  libsodium.js): a 24-byte nonce is safe to draw at random for every re-encryption, so
  there is no counter to keep across devices.
- **A version byte and a versioned associated data string**: a future format gets a new
  byte and a new AD, and a blob can never be opened as another format's blob.
- **One copy per secret**: the server stores one bundle per passphrase, per app password
  and for the recovery key, each under its own salt. They all hold the same two keys.
- **Nothing about the failure is told**: a wrong bundle key and a tampered blob are the same
  :class:`BundleError`, as the AEAD cannot tell them apart and an attacker should not
  learn more than the AEAD says.
- The blob does not name the account: a bundle key comes from a per-copy salt, so a blob
  swapped in from elsewhere fails to open. It does not stop a server from serving an older
  bundle sealed under the same secret: after a key rotation, clients check that the public
  halves of the opened keys match their current directory entry.
"""

from __future__ import annotations

import secrets

import nacl.bindings
import nacl.exceptions

from crypto.errors import BundleError
from crypto.kdf import BundleKey
from crypto.keys import KEY_BYTES, MailboxKeys, require_bytes

__all__ = ["BUNDLE_VERSION", "BUNDLE_AD", "BUNDLE_BYTES", "seal_bundle", "open_bundle"]

BUNDLE_VERSION = 0x01
BUNDLE_AD = b"pli-bundle-v1"
_NONCE_BYTES = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
_TAG_BYTES = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_ABYTES
BUNDLE_BYTES = 1 + _NONCE_BYTES + 2 * KEY_BYTES + _TAG_BYTES


def seal_bundle(keys: MailboxKeys, bundle_key: BundleKey) -> bytes:
    """Encrypt ``keys`` under ``bundle_key`` with a fresh random nonce."""
    return _seal_bundle_with_nonce(keys, bundle_key, secrets.token_bytes(_NONCE_BYTES))


def _seal_bundle_with_nonce(keys: MailboxKeys, bundle_key: BundleKey, nonce: bytes) -> bytes:
    # Separate only so that the test-vector generator can fix the nonce. Never reuse a
    # nonce with the same bundle key in production: that leaks the XOR of two bundles.
    require_bytes(nonce, _NONCE_BYTES, "a bundle nonce")
    ciphertext = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        keys.encryption_secret + keys.signing_seed, BUNDLE_AD, nonce, bundle_key.raw
    )
    return bytes([BUNDLE_VERSION]) + nonce + ciphertext


def open_bundle(blob: bytes, bundle_key: BundleKey) -> MailboxKeys:
    """Decrypt a bundle made by :func:`seal_bundle`.

    :raises BundleError: wrong key, tampered blob, wrong length or unknown version.
    """
    if len(blob) != BUNDLE_BYTES:
        raise BundleError("not a key bundle (wrong length)")
    if blob[0] != BUNDLE_VERSION:
        raise BundleError("unknown key bundle version")
    nonce, ciphertext = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
    try:
        plaintext = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            ciphertext, BUNDLE_AD, nonce, bundle_key.raw
        )
    except nacl.exceptions.CryptoError:
        raise BundleError("the key bundle does not open with this key") from None
    return MailboxKeys(encryption_secret=plaintext[:KEY_BYTES], signing_seed=plaintext[KEY_BYTES:])

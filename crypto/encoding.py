"""Byte encodings and hashes shared by the other modules.

- **base64url without padding** (RFC 4648 §5) is the textual form of public keys, in the
  routing header and in the directory: URL- and JSON-safe, and the form libsodium.js emits
  with ``base64_variants.URLSAFE_NO_PADDING``. Decoding is strict (exact alphabet, no
  padding, no whitespace, canonical trailing bits) so that one key has exactly one text.
- **BLAKE2b** (RFC 7693) through :mod:`hashlib`. libsodium's ``crypto_generichash`` is the
  same function (unkeyed, no salt, no personalisation, chosen output length), so the
  webmail computes identical digests with libsodium.js.
"""

from __future__ import annotations

import base64
import hashlib
import re

from crypto.errors import KeyFormatError

__all__ = ["b64url_encode", "b64url_decode", "blake2b_256"]

_B64URL = re.compile(r"[A-Za-z0-9_-]*", re.ASCII)


def b64url_encode(data: bytes) -> str:
    """Encode as base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url without padding; refuse anything but the one canonical text.

    :raises KeyFormatError: on any other character, padding, an impossible length or
        non-zero trailing bits (which would let two texts name the same bytes).
    """
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise KeyFormatError("not canonical base64url without padding")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64url_encode(data) != text:
        raise KeyFormatError("not canonical base64url without padding")
    return data


def blake2b_256(data: bytes) -> bytes:
    """Unkeyed BLAKE2b with a 32-byte output (libsodium ``crypto_generichash(32, data)``)."""
    return hashlib.blake2b(data, digest_size=32).digest()

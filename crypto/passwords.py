"""Secrets that Pli generates for people to copy or type: app passwords and recovery keys.

- **App passwords** unlock a copy of the key bundle for a legacy mail client (IMAP/SMTP).
  They are 16 characters from the 32-symbol lowercase Crockford alphabet
  (``0-9a-z`` without ``i l o u``), so exactly 80 random bits, shown as four groups of four
  (``k7qz-m2xp-...``): easy to read aloud and to type into Thunderbird, and no symbol looks
  like another. The string is used as is (dashes included) as the Argon2id secret.
- **Recovery keys** are 32 random bytes (256 bits) in RFC 4648 base32, uppercase, without
  padding: 52 characters in thirteen groups of four, for printing. People retype them
  from paper, so :func:`normalize_recovery_key` forgives case, spaces and dashes, then
  checks the alphabet, the length and the unused trailing bits. The canonical grouped form
  it returns is the Argon2id secret.
- Entropy comes from :mod:`secrets` (the OS CSPRNG).
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets

from crypto.errors import KeyFormatError

__all__ = [
    "CROCKFORD_ALPHABET",
    "generate_app_password",
    "generate_recovery_key",
    "normalize_recovery_key",
]

CROCKFORD_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_APP_PASSWORD_GROUPS = 4
_GROUP = 4
_RECOVERY_KEY_BYTES = 32
_RECOVERY_KEY_CHARS = 52  # ceil(256 / 5)
_RECOVERY_SEPARATORS = re.compile(r"[\s\-]+")
_BASE32 = re.compile(r"[A-Z2-7]*", re.ASCII)


def _grouped(text: str) -> str:
    return "-".join(text[i : i + _GROUP] for i in range(0, len(text), _GROUP))


def generate_app_password() -> str:
    """A fresh app password: ``xxxx-xxxx-xxxx-xxxx`` over 32 symbols (80 bits)."""
    symbols = "".join(
        secrets.choice(CROCKFORD_ALPHABET) for _ in range(_APP_PASSWORD_GROUPS * _GROUP)
    )
    return _grouped(symbols)


def generate_recovery_key() -> str:
    """A fresh recovery key: 32 random bytes as 13 dash-separated groups of 4 base32 symbols."""
    return _recovery_key_from_bytes(secrets.token_bytes(_RECOVERY_KEY_BYTES))


def _recovery_key_from_bytes(raw: bytes) -> str:
    # Separate only so that the test-vector generator can show a fixed recovery key.
    encoded = base64.b32encode(raw).decode("ascii")
    return _grouped(encoded.rstrip("="))


def normalize_recovery_key(text: str) -> str:
    """The canonical form of a typed recovery key.

    Tolerates lower case, spaces and missing or extra dashes.

    :raises KeyFormatError: when the symbols are not exactly a recovery key (wrong length,
        a symbol outside A-Z and 2-7, or non-zero unused trailing bits). The message never
        repeats the input.
    """
    if not isinstance(text, str):
        raise KeyFormatError("a recovery key must be a str")
    compact = _RECOVERY_SEPARATORS.sub("", text)
    # ASCII first: str.upper() would turn "ß" into "SS" and let non-keys through.
    compact = compact.upper() if compact.isascii() else ""
    if len(compact) != _RECOVERY_KEY_CHARS or not _BASE32.fullmatch(compact):
        raise KeyFormatError(f"a recovery key is {_RECOVERY_KEY_CHARS} symbols from A-Z and 2-7")
    try:
        raw = base64.b32decode(compact + "====")
    except binascii.Error:  # pragma: no cover - length and alphabet are checked above
        raise KeyFormatError("not a recovery key") from None
    # The last symbol carries one bit of the key and four unused bits; only zeros are valid.
    if base64.b32encode(raw).decode("ascii").rstrip("=") != compact:
        raise KeyFormatError("not a recovery key (check the last group)")
    return _grouped(compact)

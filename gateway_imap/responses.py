"""Writing IMAP data: strings, literals, lists, and modified UTF-7 mailbox names.

RFC 3501 §4.3 (strings: quoted when 7-bit and safe, a literal otherwise), §5.1.3 (mailbox
international naming convention, "modified UTF-7"), RFC 3516 (``~{n}`` literals for BINARY).

Every response is built as ``bytes``: the serialiser never decodes message content, so an
8-bit or NUL-carrying header goes out byte for byte, in a literal.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence

__all__ = [
    "Raw",
    "Value",
    "astring",
    "nstring",
    "literal",
    "render",
    "encode_mailbox",
    "decode_mailbox",
    "InvalidMailboxName",
]

_QUOTABLE_MAX = 1024


class Raw(bytes):
    """Bytes written as they are (atoms, numbers, flags, already-rendered data)."""


Value = Raw | bytes | str | int | None | Sequence["Value"]


class InvalidMailboxName(ValueError):
    """A mailbox name that is not valid modified UTF-7 (or that cannot be encoded)."""


_UNQUOTABLE = re.compile(rb"[^\x20-\x7e]")
"""A byte a quoted string cannot carry (RFC 3501 ``QUOTED-CHAR`` is printable ASCII here;
a search in C, where a generator over the bytes cost a visible share of every FETCH)."""


def _quotable(data: bytes) -> bool:
    if len(data) > _QUOTABLE_MAX:
        return False
    return _UNQUOTABLE.search(data) is None


def literal(data: bytes, *, binary: bool = False) -> bytes:
    prefix = b"~" if binary else b""
    return prefix + b"{%d}\r\n" % len(data) + data


def nstring(data: bytes | None) -> bytes:
    """A string, or NIL for None (RFC 3501 ``nstring``)."""
    if data is None:
        return b"NIL"
    if _quotable(data):
        return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return literal(data)


def astring(text: str | bytes) -> bytes:
    """A string (quoted or literal); never an atom, which is always safe for clients."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return nstring(data)


def render(value: Value) -> bytes:
    """Serialise a value: Raw as is, bytes/str as strings, int, None as NIL, lists in ()."""
    if value is None:
        return b"NIL"
    if isinstance(value, Raw):
        return bytes(value)
    if isinstance(value, bytes):
        return nstring(value)
    if isinstance(value, str):
        return astring(value)
    if isinstance(value, int):
        return b"%d" % value
    return b"(" + b" ".join(render(v) for v in value) + b")"


def join(items: Iterable[bytes]) -> bytes:
    return b" ".join(items)


# -- modified UTF-7 (RFC 3501 §5.1.3) ---------------------------------------------------


def encode_mailbox(name: str) -> str:
    """The modified UTF-7 form of a mailbox name (printable ASCII stays as is, ``&`` is ``&-``)."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            data = "".join(pending).encode("utf-16-be")
            b64 = base64.b64encode(data).decode("ascii").rstrip("=").replace("/", ",")
            out.append("&" + b64 + "-")
            pending.clear()

    for char in name:
        code = ord(char)
        if 0x20 <= code <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            if 0xD800 <= code <= 0xDFFF:
                raise InvalidMailboxName("lone surrogate in a mailbox name")
            pending.append(char)
    flush()
    return "".join(out)


_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")


def decode_mailbox(encoded: str) -> str:
    """Decode a modified UTF-7 name strictly: anything a conforming client cannot send is refused.

    Refused: 8-bit or control characters, an unterminated ``&`` shift, base64 outside the
    modified alphabet, a shift that encodes printable ASCII or is empty (``&-`` aside),
    two adjacent shifts, bits left over, invalid UTF-16.
    """
    out: list[str] = []
    i = 0
    previous_shift_end = -2
    while i < len(encoded):
        char = encoded[i]
        code = ord(char)
        if not 0x20 <= code <= 0x7E:
            raise InvalidMailboxName("mailbox names are 7-bit (modified UTF-7)")
        if char != "&":
            out.append(char)
            i += 1
            continue
        end = encoded.find("-", i + 1)
        if end < 0:
            raise InvalidMailboxName("unterminated '&' shift in a mailbox name")
        chunk = encoded[i + 1 : end]
        if not chunk:
            out.append("&")
            i = end + 1
            continue
        if i == previous_shift_end:
            raise InvalidMailboxName("two adjacent base64 shifts in a mailbox name")
        if any(c not in _B64_CHARS for c in chunk):
            raise InvalidMailboxName("invalid character in a base64 shift")
        bits = len(chunk) * 6
        if bits % 16 >= 6:
            raise InvalidMailboxName("leftover bits in a base64 shift")
        padded = chunk.replace(",", "/") + "=" * (-len(chunk) % 4)
        try:
            data = base64.b64decode(padded, validate=True)
        except ValueError:
            raise InvalidMailboxName("invalid base64 in a mailbox name") from None
        data = data[: len(data) - len(data) % 2]
        try:
            text = data.decode("utf-16-be")
        except UnicodeDecodeError:
            raise InvalidMailboxName("invalid UTF-16 in a mailbox name") from None
        if not text or any(0x20 <= ord(c) <= 0x7E for c in text):
            raise InvalidMailboxName("a base64 shift encodes printable ASCII")
        if encode_mailbox(text)[1:-1] != chunk:
            raise InvalidMailboxName("non-canonical base64 shift")
        out.append(text)
        i = end + 1
        previous_shift_end = i
    return "".join(out)

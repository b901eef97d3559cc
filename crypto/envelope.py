"""Sealed envelopes, format v1: one signed, streamed ciphertext shared by every recipient.

Byte layout (``docs/envelope.md`` is the normative description)::

    "PLIE" | version u8 = 1 | header_len u32 BE | header (canonical JSON, see crypto.header)
    | secretstream header (24) | frame* | final frame
    frame       = u32 BE ciphertext length || secretstream ciphertext (chunk + 17 bytes)
    final frame = the same, carrying the 64-byte signature with TAG_FINAL

Decisions:

- **Streamed AEAD (libsodium secretstream XChaCha20-Poly1305).** A 25 MB attachment is read,
  encrypted and written one chunk at a time, in both directions, so memory stays bounded by
  the chunk size. Secretstream's internal counter authenticates the *order* of frames, and
  TAG_FINAL marks the end, so reordering, dropping or truncating frames is detected, and a
  reader refuses any byte after the final frame.
- **The header is bound to every frame**: each frame's additional data is
  ``header_hash = BLAKE2b-256(header bytes as stored)``. A server that edits the visible
  header (recipients, type, size...) makes the very first frame fail, before any plaintext
  is released.
- **Sign-then-seal, with the signature inside the stream.** The sender signs
  ``b"pli-envelope-v1\\x00" || header_hash || BLAKE2b-256(plaintext)`` with Ed25519 and the
  signature travels as the encrypted final frame. Inside, it cannot serve an outsider as an
  oracle to confirm a guess of the plaintext (a clear signature over the plaintext digest
  would), and it is not visible metadata linking messages to a signer beyond ``sigkey``.
  The AEAD alone would not do: every recipient knows the content key and could forge a
  message "from" the sender; only the signature says who wrote it. Because the routing
  header (sender, recipients, date, ids) is under the signature, a recipient who forwards
  the content key cannot present the message as sent to someone else.
- **Detached key slots.** The content key (32 random bytes, the secretstream key) is sealed
  separately to each recipient's X25519 key with ``crypto_box_seal`` (80 bytes per slot).
  The envelope blob is therefore byte-identical for every recipient and the Sent copy, is
  stored once (content-addressed), and a later grant (consent sharing) adds a slot with
  :func:`reseal_slot` without rewriting the blob. A slot is not signed: it only ever
  yields a key, and a wrong key cannot decrypt the first frame.
- **Signer trust is not decided here.** :func:`open_envelope` proves that ``header.signer``
  signed this header and plaintext. Whether that key belongs to ``header.sender`` (or is
  the operator key, for gateway provenance) is the caller's check, against the directory.
- **Strict, bounded reader.** A header is at most 64 KiB, a frame at most 1 MiB + 17
  bytes, an empty data frame is refused (the writer never makes one), the final frame is
  exactly 64 + 17 bytes, and the plaintext must add up to exactly ``header.size``
  (checked as it streams, so a lying header cannot make a reader write more).
- **Partial output on failure.** :func:`open_envelope` writes plaintext to the sink as the
  frames authenticate, but authenticity of the whole (completeness, signature) is known
  only at the end. When it raises, the caller MUST discard what the sink received.

Every refusal is an :class:`~crypto.errors.EnvelopeError` (a bad signature is its subclass
:class:`~crypto.errors.SignatureError`); errors of the source or sink themselves
(``OSError``...) propagate unchanged.
"""

from __future__ import annotations

import hashlib
import io
import secrets
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

import nacl.bindings
import nacl.exceptions

from crypto.encoding import blake2b_256
from crypto.errors import EnvelopeError, KeyFormatError, SignatureError
from crypto.header import ENVELOPE_VERSION, RoutingHeader
from crypto.keys import (
    KEY_BYTES,
    SIGNATURE_BYTES,
    EncryptionPublicKey,
    MailboxKeys,
    SigningKey,
    require_bytes,
    verify_signature,
)


class Writable(Protocol):
    """Where plaintext or ciphertext goes: a file, a socket wrapper, a blob writer."""

    def write(self, data: bytes, /) -> int: ...


__all__ = [
    "MAGIC",
    "MAX_HEADER_BYTES",
    "DEFAULT_CHUNK_SIZE",
    "MAX_CHUNK_SIZE",
    "MAX_FRAME_BYTES",
    "SLOT_BYTES",
    "SIGNATURE_CONTEXT",
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
    "header_hash",
    "signature_message",
]

MAGIC = b"PLIE"
MAX_HEADER_BYTES = 64 * 1024
DEFAULT_CHUNK_SIZE = 64 * 1024
MAX_CHUNK_SIZE = 1024 * 1024
SIGNATURE_CONTEXT = b"pli-envelope-v1\x00"

_ABYTES = nacl.bindings.crypto_secretstream_xchacha20poly1305_ABYTES
_STREAM_HEADER_BYTES = nacl.bindings.crypto_secretstream_xchacha20poly1305_HEADERBYTES
_TAG_MESSAGE = nacl.bindings.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
_TAG_FINAL = nacl.bindings.crypto_secretstream_xchacha20poly1305_TAG_FINAL
_SEAL_OVERHEAD = nacl.bindings.crypto_box_SEALBYTES

MAX_FRAME_BYTES = MAX_CHUNK_SIZE + _ABYTES
SLOT_BYTES = KEY_BYTES + _SEAL_OVERHEAD
_FINAL_FRAME_BYTES = SIGNATURE_BYTES + _ABYTES
_PREFIX = struct.Struct(">4sBI")
_FRAME_LENGTH = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class ContentKey:
    """The per-envelope secretstream key (32 bytes) that key slots carry."""

    raw: bytes = field(repr=False)

    def __post_init__(self) -> None:
        require_bytes(self.raw, KEY_BYTES, "a content key")


@dataclass(frozen=True, slots=True)
class SealResult:
    """What sealing produced besides the envelope bytes written to the sink."""

    header: RoutingHeader
    slots: tuple[bytes, ...]  # one per recipient key, in the order given
    envelope_size: int  # bytes written to the sink


@dataclass(frozen=True, slots=True)
class OpenedEnvelope:
    """A verified envelope: its header, and the size and digest of the plaintext."""

    header: RoutingHeader
    plaintext_size: int
    plaintext_digest: bytes  # BLAKE2b-256 of the plaintext, as signed


def header_hash(header_bytes: bytes) -> bytes:
    """BLAKE2b-256 of the header bytes as stored: the AD of every frame."""
    return blake2b_256(header_bytes)


def signature_message(header_digest: bytes, plaintext_digest: bytes) -> bytes:
    """The 80 bytes the sender signs: context || header_hash || plaintext digest."""
    return SIGNATURE_CONTEXT + header_digest + plaintext_digest


# --- key slots -------------------------------------------------------------------------


def _seal_slot(content_key: ContentKey, recipient: EncryptionPublicKey) -> bytes:
    if not isinstance(recipient, EncryptionPublicKey):
        raise KeyFormatError("recipients must be EncryptionPublicKey values")
    try:
        return nacl.bindings.crypto_box_seal(content_key.raw, recipient.raw)
    except nacl.exceptions.CryptoError:
        # libsodium refuses low-order points: nobody could ever open such a slot.
        raise KeyFormatError("a recipient key is not a usable X25519 public key") from None


def open_slot(slot: bytes, keys: MailboxKeys) -> ContentKey:
    """The content key that ``slot`` carries for ``keys``.

    :raises EnvelopeError: malformed slot, or not sealed to these keys.
    """
    if len(slot) != SLOT_BYTES:
        raise EnvelopeError(f"a key slot is {SLOT_BYTES} bytes")
    try:
        raw = nacl.bindings.crypto_box_seal_open(
            slot, keys.encryption_public.raw, keys.encryption_secret
        )
    except nacl.exceptions.CryptoError:
        raise EnvelopeError("not a recipient: the key slot does not open") from None
    return ContentKey(raw)


def reseal_slot(slot: bytes, keys: MailboxKeys, recipient: EncryptionPublicKey) -> bytes:
    """A new slot giving ``recipient`` the content key that ``slot`` gives ``keys``."""
    return _seal_slot(open_slot(slot, keys), recipient)


# --- reading helpers ---------------------------------------------------------------------


def _read_exact(source: BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes; fewer only at end of stream (reads may return short)."""
    data = source.read(size)
    if len(data) == size or not data:
        return data
    parts = [data]
    missing = size - len(data)
    while missing > 0:
        more = source.read(missing)
        if not more:
            break
        parts.append(more)
        missing -= len(more)
    return b"".join(parts)


def _read_header(source: BinaryIO) -> tuple[RoutingHeader, bytes]:
    prefix = _read_exact(source, _PREFIX.size)
    if len(prefix) != _PREFIX.size:
        raise EnvelopeError("truncated envelope (no complete prefix)")
    magic, version, header_len = _PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise EnvelopeError("not a Pli envelope (bad magic)")
    if version != ENVELOPE_VERSION:
        raise EnvelopeError("unknown envelope version")
    if not 0 < header_len <= MAX_HEADER_BYTES:
        raise EnvelopeError(f"routing header length must be 1..{MAX_HEADER_BYTES}")
    header_bytes = _read_exact(source, header_len)
    if len(header_bytes) != header_len:
        raise EnvelopeError("truncated envelope (incomplete routing header)")
    header = RoutingHeader.from_bytes(header_bytes)
    if header.version != version:  # pragma: no cover - one version exists so far
        raise EnvelopeError("header version differs from the envelope version byte")
    return header, header_bytes


def read_header(source: BinaryIO) -> RoutingHeader:
    """The routing header, without keys; leaves ``source`` just after the header.

    What a server may read. It is *not* authenticated for the server (only a recipient,
    who can decrypt, verifies it), so the server checks it against what it knows itself
    (the authenticated submitter, its own clock and size limits).
    """
    return _read_header(source)[0]


# --- sealing -----------------------------------------------------------------------------


def seal_envelope(
    header: RoutingHeader,
    plaintext: BinaryIO,
    sink: Writable,
    *,
    signer: SigningKey,
    recipients: Sequence[EncryptionPublicKey],
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> SealResult:
    """Encrypt ``plaintext`` (exactly ``header.size`` bytes) into ``sink`` as an envelope.

    Reads ``chunk_size`` bytes at a time. Returns one key slot per recipient key, in order
    (include the sender's own key for the Sent copy).

    :raises ValueError: ``chunk_size`` outside 1..1 MiB, or no recipient.
    :raises KeyFormatError: a recipient key that cannot be sealed to.
    :raises EnvelopeError: ``header.signer`` is not ``signer.public``; the header encodes
        to more than 64 KiB; the plaintext is not ``header.size`` bytes (the sink then
        holds a partial envelope, to be discarded).
    """
    if type(chunk_size) is not int or not 0 < chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk_size must be in 1..{MAX_CHUNK_SIZE}")
    if not recipients:
        raise ValueError("an envelope needs at least one recipient key")
    if header.signer != signer.public:
        raise EnvelopeError("header.signer is not the public key of the signing key")
    content_key = ContentKey(secrets.token_bytes(KEY_BYTES))
    # Slots first: a bad recipient key must fail before anything is written.
    slots = tuple(_seal_slot(content_key, recipient) for recipient in recipients)
    written = _write_stream(header, plaintext, sink, signer, content_key, chunk_size)
    return SealResult(header=header, slots=slots, envelope_size=written)


def _write_stream(
    header: RoutingHeader,
    plaintext: BinaryIO,
    sink: Writable,
    signer: SigningKey,
    content_key: ContentKey,
    chunk_size: int,
) -> int:
    # No signer check here on purpose: the tests use it to build wrongly signed envelopes.
    header_bytes = header.to_bytes()
    if len(header_bytes) > MAX_HEADER_BYTES:
        raise EnvelopeError(f"routing header encodes to more than {MAX_HEADER_BYTES} bytes")
    ad = header_hash(header_bytes)
    state = nacl.bindings.crypto_secretstream_xchacha20poly1305_state()
    stream_header = nacl.bindings.crypto_secretstream_xchacha20poly1305_init_push(
        state, content_key.raw
    )
    lead = _PREFIX.pack(MAGIC, header.version, len(header_bytes)) + header_bytes + stream_header
    sink.write(lead)
    written = len(lead)
    digest = hashlib.blake2b(digest_size=32)
    total = 0
    while True:
        chunk = _read_exact(plaintext, chunk_size)
        if not chunk:
            break
        total += len(chunk)
        if total > header.size:
            raise EnvelopeError("the plaintext is longer than header.size")
        digest.update(chunk)
        written += _write_frame(sink, state, chunk, ad, _TAG_MESSAGE)
        if len(chunk) < chunk_size:
            break  # _read_exact returns short only at end of stream
    if total != header.size:
        raise EnvelopeError("the plaintext is shorter than header.size")
    signature = signer.sign(signature_message(ad, digest.digest()))
    written += _write_frame(sink, state, signature, ad, _TAG_FINAL)
    return written


def _write_frame(
    sink: Writable,
    state: nacl.bindings.crypto_secretstream_xchacha20poly1305_state,
    chunk: bytes,
    ad: bytes,
    tag: int,
) -> int:
    ciphertext = nacl.bindings.crypto_secretstream_xchacha20poly1305_push(state, chunk, ad, tag)
    # Two writes rather than a concatenation: no extra copy of a 64 KiB frame.
    sink.write(_FRAME_LENGTH.pack(len(ciphertext)))
    sink.write(ciphertext)
    return _FRAME_LENGTH.size + len(ciphertext)


# --- opening -----------------------------------------------------------------------------


def open_envelope(
    source: BinaryIO,
    slot: bytes,
    keys: MailboxKeys,
    sink: Writable,
    *,
    max_size: int | None = None,
) -> OpenedEnvelope:
    """Decrypt and verify an envelope, streaming its plaintext into ``sink``.

    Verifies that every frame authenticates under this header, that nothing is missing,
    reordered or appended, that the plaintext is ``header.size`` bytes and that
    ``header.signer`` signed it. Trust in ``header.signer`` is the caller's business.

    :param max_size: refuse, before decrypting anything, an envelope whose header announces
        more plaintext bytes than this.
    :raises EnvelopeError: on any failure, possibly after part of the plaintext was written:
        the caller MUST then discard the sink's content.
    :raises SignatureError: the stream is intact but the signature does not verify.
    """
    header, header_bytes = _read_header(source)
    if max_size is not None and header.size > max_size:
        raise EnvelopeError("the envelope is larger than allowed")
    content_key = open_slot(slot, keys)
    return _read_stream(source, header, header_bytes, content_key, sink)


def _read_stream(
    source: BinaryIO,
    header: RoutingHeader,
    header_bytes: bytes,
    content_key: ContentKey,
    sink: Writable,
) -> OpenedEnvelope:
    ad = header_hash(header_bytes)
    stream_header = _read_exact(source, _STREAM_HEADER_BYTES)
    if len(stream_header) != _STREAM_HEADER_BYTES:
        raise EnvelopeError("truncated envelope (incomplete stream header)")
    state = nacl.bindings.crypto_secretstream_xchacha20poly1305_state()
    nacl.bindings.crypto_secretstream_xchacha20poly1305_init_pull(
        state, stream_header, content_key.raw
    )
    digest = hashlib.blake2b(digest_size=32)
    total, signature = _pull_frames(source, state, ad, header.size, digest, sink)
    if source.read(1):
        raise EnvelopeError("data after the final frame")
    if total != header.size:
        raise EnvelopeError("the plaintext is shorter than header.size")
    plaintext_digest = digest.digest()
    if not verify_signature(header.signer, signature_message(ad, plaintext_digest), signature):
        raise SignatureError("the signature does not verify against header.signer")
    return OpenedEnvelope(header=header, plaintext_size=total, plaintext_digest=plaintext_digest)


def _pull_frames(
    source: BinaryIO,
    state: nacl.bindings.crypto_secretstream_xchacha20poly1305_state,
    ad: bytes,
    size: int,
    digest: hashlib.blake2b,
    sink: Writable,
) -> tuple[int, bytes]:
    """Decrypt data frames into ``sink`` up to the final one: (plaintext size, signature)."""
    total = 0
    while True:
        ciphertext = _read_frame(source)
        try:
            chunk, tag = nacl.bindings.crypto_secretstream_xchacha20poly1305_pull(
                state, ciphertext, ad
            )
        except nacl.exceptions.CryptoError:
            raise EnvelopeError(
                "a frame does not authenticate (tampered, reordered, or header changed)"
            ) from None
        if tag == _TAG_FINAL:
            if len(ciphertext) != _FINAL_FRAME_BYTES:
                raise EnvelopeError("the final frame must carry exactly a signature")
            return total, chunk
        if tag != _TAG_MESSAGE:
            raise EnvelopeError("unexpected secretstream tag")
        total += len(chunk)
        if total > size:
            raise EnvelopeError("the plaintext is longer than header.size")
        digest.update(chunk)
        sink.write(chunk)


def _read_frame(source: BinaryIO) -> bytes:
    prefix = _read_exact(source, _FRAME_LENGTH.size)
    if not prefix:
        raise EnvelopeError("truncated envelope (no final frame)")
    if len(prefix) != _FRAME_LENGTH.size:
        raise EnvelopeError("truncated envelope (incomplete frame length)")
    (length,) = _FRAME_LENGTH.unpack(prefix)
    # An empty data frame (length 17) is never written, so it is refused like any
    # other non-canonical stream.
    if not _ABYTES < length <= MAX_FRAME_BYTES:
        raise EnvelopeError(f"frame length must be in {_ABYTES + 1}..{MAX_FRAME_BYTES}")
    ciphertext = _read_exact(source, length)
    if len(ciphertext) != length:
        raise EnvelopeError("truncated envelope (incomplete frame)")
    return ciphertext


# --- in-memory conveniences ----------------------------------------------------------------


def seal_bytes(
    header: RoutingHeader,
    plaintext: bytes,
    *,
    signer: SigningKey,
    recipients: Sequence[EncryptionPublicKey],
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> tuple[bytes, SealResult]:
    """:func:`seal_envelope` from and to memory: (envelope bytes, result)."""
    sink = io.BytesIO()
    result = seal_envelope(
        header,
        io.BytesIO(plaintext),
        sink,
        signer=signer,
        recipients=recipients,
        chunk_size=chunk_size,
    )
    return sink.getvalue(), result


def open_bytes(envelope: bytes, slot: bytes, keys: MailboxKeys) -> tuple[bytes, OpenedEnvelope]:
    """:func:`open_envelope` from and to memory: (plaintext, opened envelope)."""
    if not isinstance(envelope, bytes):
        raise EnvelopeError("an envelope is bytes")
    sink = io.BytesIO()
    opened = open_envelope(io.BytesIO(envelope), slot, keys, sink)
    return sink.getvalue(), opened

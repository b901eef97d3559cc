"""Shared test material: fixed keys, header factory, and tools to take envelopes apart.

The forging helpers build adversarial envelopes *without* PyNaCl (which lives only in
``crypto/``): they reuse the package's private stream writer with inputs that the public
``seal_envelope`` refuses.
"""

from __future__ import annotations

import hashlib
import io
import struct
from dataclasses import dataclass, replace
from typing import Any, cast

from crypto import (
    EncryptionPublicKey,
    GatewayInfo,
    MailboxKeys,
    RoutingHeader,
    SigningKey,
)
from crypto.envelope import ContentKey, _seal_slot, _write_stream

PREFIX_BYTES = 9  # magic 4 + version 1 + header_len 4
STREAM_HEADER_BYTES = 24
ABYTES = 17


def fixed_bytes(label: str, size: int) -> bytes:
    """Deterministic bytes for vectors and tests, named by a label."""
    return hashlib.blake2b(b"pli-test-vector:" + label.encode(), digest_size=size).digest()


def fixed_keys(name: str) -> MailboxKeys:
    return MailboxKeys(
        encryption_secret=fixed_bytes(f"{name}/x25519", 32),
        signing_seed=fixed_bytes(f"{name}/ed25519", 32),
    )


ALICE = fixed_keys("alice")  # a professional, the usual sender
BOB = fixed_keys("bob")  # a patient, the usual recipient
CAROL = fixed_keys("carol")  # someone who is not a recipient
OPERATOR = fixed_keys("operator")  # the operator key that signs gateway envelopes


def make_header(
    *,
    size: int,
    signer: MailboxKeys = ALICE,
    gateway: GatewayInfo | None = None,
    **overrides: Any,
) -> RoutingHeader:
    header = RoutingHeader(
        envelope_id="env-0001",
        thread_id="thr-0001",
        kind="note",
        sender="sophie.martin@medecin.pli.test",
        recipients=("180017512345678@patient.pli.test",),
        size=size,
        date="2026-11-22T10:00:00Z",
        provenance="gateway" if gateway is not None else "e2e",
        signer=signer.signing_public,
        gateway=gateway,
    )
    return replace(header, **overrides) if overrides else header


@dataclass
class Parts:
    """An envelope cut at its boundaries; ``frames`` include their 4-byte length prefix."""

    prefix: bytes
    header: bytes
    stream_header: bytes
    frames: list[bytes]

    def join(self) -> bytes:
        return self.prefix + self.header + self.stream_header + b"".join(self.frames)

    def frame_offsets(self) -> list[int]:
        offset = len(self.prefix) + len(self.header) + len(self.stream_header)
        offsets = []
        for frame in self.frames:
            offsets.append(offset)
            offset += len(frame)
        return offsets


def split(envelope: bytes) -> Parts:
    (header_len,) = struct.unpack(">I", envelope[5:PREFIX_BYTES])
    end_header = PREFIX_BYTES + header_len
    end_stream_header = end_header + STREAM_HEADER_BYTES
    frames = []
    offset = end_stream_header
    while offset < len(envelope):
        (length,) = struct.unpack(">I", envelope[offset : offset + 4])
        frames.append(envelope[offset : offset + 4 + length])
        offset += 4 + length
    return Parts(
        prefix=envelope[:PREFIX_BYTES],
        header=envelope[PREFIX_BYTES:end_header],
        stream_header=envelope[end_header:end_stream_header],
        frames=frames,
    )


def with_header(envelope: bytes, header_bytes: bytes) -> bytes:
    """The envelope with other header bytes (and the matching header_len)."""
    parts = split(envelope)
    parts.prefix = parts.prefix[:5] + struct.pack(">I", len(header_bytes))
    parts.header = header_bytes
    return parts.join()


class FakeSigner:
    """A stand-in signer: a real key's signatures, or a fixed (malformed) signature."""

    def __init__(self, key: SigningKey, signature: bytes | None = None) -> None:
        self.key = key
        self.signature = signature

    def sign(self, message: bytes) -> bytes:
        return self.key.sign(message) if self.signature is None else self.signature


@dataclass(frozen=True)
class _LyingHeader:
    """Encodes as ``encoded`` but tells the writer another size."""

    encoded: RoutingHeader
    size: int
    version: int = 1

    def to_bytes(self) -> bytes:
        return self.encoded.to_bytes()


def forge(
    header: RoutingHeader,
    plaintext: bytes,
    recipient: EncryptionPublicKey,
    *,
    signer: SigningKey | FakeSigner,
    chunk_size: int = 16,
    actual_size: int | None = None,
) -> tuple[bytes, bytes]:
    """(envelope, slot) written by the real stream writer, skipping the public checks.

    ``signer`` need not match ``header.signer``; ``actual_size`` lets the writer accept a
    plaintext of another length than ``header.size``.
    """
    content_key = ContentKey(fixed_bytes("forged-content-key", 32))
    writer_header: Any = header
    if actual_size is not None:
        writer_header = _LyingHeader(header, actual_size)
    sink = io.BytesIO()
    _write_stream(
        cast(RoutingHeader, writer_header),
        io.BytesIO(plaintext),
        sink,
        cast(SigningKey, signer),
        content_key,
        chunk_size,
    )
    return sink.getvalue(), _seal_slot(content_key, recipient)

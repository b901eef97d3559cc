"""Sealing and opening envelopes: round trips, slots, and the API's own checks."""

from __future__ import annotations

import hashlib
import io

import pytest

from crypto import (
    DEFAULT_CHUNK_SIZE,
    SLOT_BYTES,
    EnvelopeError,
    GatewayInfo,
    KeyFormatError,
    OpenedEnvelope,
    generate_keys,
    open_bytes,
    open_envelope,
    open_slot,
    read_header,
    reseal_slot,
    seal_bytes,
    seal_envelope,
)
from crypto.envelope import MAX_CHUNK_SIZE, MAX_HEADER_BYTES
from tests.crypto.support import ALICE, BOB, CAROL, OPERATOR, make_header, split

CHUNK = 64


def seal(plaintext: bytes, chunk_size: int = CHUNK) -> tuple[bytes, bytes]:
    """(envelope, bob's slot) for ``plaintext`` from alice to bob and alice."""
    envelope, result = seal_bytes(
        make_header(size=len(plaintext)),
        plaintext,
        signer=ALICE.signing_key,
        recipients=[BOB.encryption_public, ALICE.encryption_public],
        chunk_size=chunk_size,
    )
    return envelope, result.slots[0]


@pytest.mark.parametrize(
    "size",
    [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK, 5 * CHUNK + 7],
    ids=["0", "1", "chunk-1", "chunk", "chunk+1", "5-chunks", "5-chunks+7"],
)
def test_round_trip(size: int) -> None:
    plaintext = bytes(i % 251 for i in range(size))
    envelope, slot = seal(plaintext)
    opened_plaintext, opened = open_bytes(envelope, slot, BOB)
    assert opened_plaintext == plaintext
    assert opened.plaintext_size == size
    assert opened.plaintext_digest == hashlib.blake2b(plaintext, digest_size=32).digest()
    assert opened.header == make_header(size=size)


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK])
def test_frames_follow_the_chunk_size(size: int) -> None:
    envelope, _ = seal(bytes(size))
    lengths = [len(frame) - 4 for frame in split(envelope).frames]
    full, rest = divmod(size, CHUNK)
    assert lengths == [CHUNK + 17] * full + ([rest + 17] if rest else []) + [64 + 17]


def test_the_envelope_is_the_same_bytes_for_every_recipient() -> None:
    envelope, result = seal_bytes(
        make_header(size=3),
        b"abc",
        signer=ALICE.signing_key,
        recipients=[BOB.encryption_public, CAROL.encryption_public, ALICE.encryption_public],
    )
    assert len(result.slots) == 3
    assert all(len(slot) == SLOT_BYTES == 80 for slot in result.slots)
    for keys, slot in zip((BOB, CAROL, ALICE), result.slots, strict=True):
        assert open_bytes(envelope, slot, keys)[0] == b"abc"
    assert result.envelope_size == len(envelope)


def test_the_slots_come_in_the_order_of_the_recipients() -> None:
    _, result = seal_bytes(
        make_header(size=0),
        b"",
        signer=ALICE.signing_key,
        recipients=[CAROL.encryption_public, BOB.encryption_public],
    )
    assert open_slot(result.slots[0], CAROL) == open_slot(result.slots[1], BOB)
    with pytest.raises(EnvelopeError):
        open_slot(result.slots[0], BOB)


def test_sealing_twice_gives_different_envelopes_and_keys() -> None:
    first, first_slot = seal(b"same")
    second, second_slot = seal(b"same")
    assert first != second
    assert open_slot(first_slot, BOB) != open_slot(second_slot, BOB)


def test_the_plaintext_is_not_in_the_envelope() -> None:
    plaintext = b"Subject: diagnostic confidentiel\r\n\r\n" * 4
    envelope, _ = seal(plaintext, chunk_size=DEFAULT_CHUNK_SIZE)
    assert b"diagnostic" not in envelope


def test_a_non_recipient_cannot_open() -> None:
    envelope, slot = seal(b"for bob only")
    sink = io.BytesIO()
    with pytest.raises(EnvelopeError, match="not a recipient"):
        open_envelope(io.BytesIO(envelope), slot, CAROL, sink)
    assert sink.getvalue() == b""


def test_a_resealed_slot_grants_access_without_touching_the_envelope() -> None:
    envelope, slot = seal(b"shared with consent")
    granted = reseal_slot(slot, BOB, CAROL.encryption_public)
    assert len(granted) == SLOT_BYTES
    assert open_bytes(envelope, granted, CAROL)[0] == b"shared with consent"
    with pytest.raises(EnvelopeError):
        reseal_slot(slot, CAROL, CAROL.encryption_public)


@pytest.mark.parametrize("size", [0, 79, 81, 160])
def test_slots_of_the_wrong_length_are_refused(size: int) -> None:
    envelope, _ = seal(b"x")
    with pytest.raises(EnvelopeError):
        open_bytes(envelope, bytes(size), BOB)


def test_read_header_needs_no_key_and_stops_after_the_header() -> None:
    header = make_header(size=5)
    envelope, _ = seal(b"hello")
    source = io.BytesIO(envelope)
    assert read_header(source) == header
    assert source.tell() == 9 + len(header.to_bytes())


def test_gateway_envelopes_are_signed_by_the_operator() -> None:
    gateway = GatewayInfo(peer="mx.ch-x.fr", tls="CN=mx.ch-x.fr")
    header = make_header(size=2, signer=OPERATOR, gateway=gateway)
    envelope, result = seal_bytes(
        header, b"ok", signer=OPERATOR.signing_key, recipients=[BOB.encryption_public]
    )
    plaintext, opened = open_bytes(envelope, result.slots[0], BOB)
    assert plaintext == b"ok"
    assert opened.header.provenance == "gateway"
    assert opened.header.gateway == gateway
    assert opened.header.signer == OPERATOR.signing_public


def test_a_header_naming_another_signer_is_refused_when_sealing() -> None:
    header = make_header(size=1, signer=BOB)
    sink = io.BytesIO()
    with pytest.raises(EnvelopeError):
        seal_envelope(
            header,
            io.BytesIO(b"x"),
            sink,
            signer=ALICE.signing_key,
            recipients=[BOB.encryption_public],
        )
    assert sink.getvalue() == b""


@pytest.mark.parametrize(("announced", "actual"), [(10, 9), (10, 11), (0, 1), (1, 0)])
def test_a_plaintext_of_another_size_than_announced_is_refused(announced: int, actual: int) -> None:
    with pytest.raises(EnvelopeError, match="header.size"):
        seal_bytes(
            make_header(size=announced),
            bytes(actual),
            signer=ALICE.signing_key,
            recipients=[BOB.encryption_public],
            chunk_size=4,
        )


def test_sealing_stops_reading_soon_after_the_announced_size() -> None:
    class Endless(io.RawIOBase):
        reads = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            self.reads += 1
            buffer[:] = bytes(len(buffer))
            return len(buffer)

    source = Endless()
    with pytest.raises(EnvelopeError):
        seal_envelope(
            make_header(size=100),
            source,  # type: ignore[arg-type]
            io.BytesIO(),
            signer=ALICE.signing_key,
            recipients=[BOB.encryption_public],
            chunk_size=10,
        )
    assert source.reads <= 11


class Trickle(io.RawIOBase):
    """A source that returns at most ``step`` bytes per read, like a pipe or a socket."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data = data
        self.step = step
        self.position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        size = min(len(buffer), self.step, len(self.data) - self.position)
        buffer[:size] = self.data[self.position : self.position + size]
        self.position += size
        return size


def test_short_reads_on_both_sides_are_handled() -> None:
    plaintext = bytes(range(256)) * 3
    header = make_header(size=len(plaintext))
    sink = io.BytesIO()
    result = seal_envelope(
        header,
        Trickle(plaintext, 7),  # type: ignore[arg-type]
        sink,
        signer=ALICE.signing_key,
        recipients=[BOB.encryption_public],
        chunk_size=CHUNK,
    )
    envelope = sink.getvalue()
    lengths = [len(frame) - 4 for frame in split(envelope).frames]
    assert lengths == [CHUNK + 17] * 12 + [81]  # short reads do not make short frames
    out = io.BytesIO()
    open_envelope(Trickle(envelope, 5), result.slots[0], BOB, out)  # type: ignore[arg-type]
    assert out.getvalue() == plaintext


@pytest.mark.parametrize("chunk_size", [0, -1, MAX_CHUNK_SIZE + 1])
def test_chunk_sizes_outside_bounds_are_refused(chunk_size: int) -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        seal(b"x", chunk_size=chunk_size)


def test_the_largest_chunk_size_is_accepted_by_readers() -> None:
    plaintext = bytes(MAX_CHUNK_SIZE + 1)
    envelope, slot = seal(plaintext, chunk_size=MAX_CHUNK_SIZE)
    assert open_bytes(envelope, slot, BOB)[0] == plaintext


def test_at_least_one_recipient_is_required() -> None:
    with pytest.raises(ValueError, match="recipient"):
        seal_bytes(make_header(size=0), b"", signer=ALICE.signing_key, recipients=[])


def test_an_unusable_recipient_key_is_refused_before_anything_is_written() -> None:
    from crypto import EncryptionPublicKey

    sink = io.BytesIO()
    with pytest.raises(KeyFormatError):
        seal_envelope(
            make_header(size=0),
            io.BytesIO(b""),
            sink,
            signer=ALICE.signing_key,
            recipients=[BOB.encryption_public, EncryptionPublicKey(bytes(32))],  # low order
        )
    assert sink.getvalue() == b""
    with pytest.raises(KeyFormatError):
        seal_bytes(
            make_header(size=0),
            b"",
            signer=ALICE.signing_key,
            recipients=[BOB.encryption_public.raw],  # type: ignore[list-item]
        )


def test_a_header_too_large_to_encode_is_refused() -> None:
    header = make_header(
        size=0, recipients=tuple(f"r{i:05d}@patient.pli.test" for i in range(3000))
    )
    assert len(header.to_bytes()) > MAX_HEADER_BYTES
    with pytest.raises(EnvelopeError):
        seal_bytes(header, b"", signer=ALICE.signing_key, recipients=[BOB.encryption_public])


def test_a_header_of_exactly_the_maximum_size_is_accepted() -> None:
    base = len(make_header(size=0, envelope_id="").to_bytes())
    header = make_header(size=0, envelope_id="x" * (MAX_HEADER_BYTES - base))
    assert len(header.to_bytes()) == MAX_HEADER_BYTES
    envelope, result = seal_bytes(
        header, b"", signer=ALICE.signing_key, recipients=[BOB.encryption_public]
    )
    assert open_bytes(envelope, result.slots[0], BOB)[1].header == header


def test_max_size_refuses_before_writing_anything() -> None:
    envelope, slot = seal(b"0123456789")
    sink = io.BytesIO()
    with pytest.raises(EnvelopeError):
        open_envelope(io.BytesIO(envelope), slot, BOB, sink, max_size=9)
    assert sink.getvalue() == b""
    opened = open_envelope(io.BytesIO(envelope), slot, BOB, sink, max_size=10)
    assert isinstance(opened, OpenedEnvelope)
    assert sink.getvalue() == b"0123456789"


def test_open_bytes_refuses_non_bytes() -> None:
    envelope, slot = seal(b"x")
    with pytest.raises(EnvelopeError):
        open_bytes(bytearray(envelope), slot, BOB)  # type: ignore[arg-type]


def test_independent_mailboxes_round_trip() -> None:
    sender, recipient = generate_keys(), generate_keys()
    header = make_header(size=4, signer=sender)
    envelope, result = seal_bytes(
        header, b"data", signer=sender.signing_key, recipients=[recipient.encryption_public]
    )
    assert open_bytes(envelope, result.slots[0], recipient)[0] == b"data"

"""Properties of the envelope format, checked by Hypothesis."""

from __future__ import annotations

import io

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from crypto import EnvelopeError, open_bytes, open_envelope, read_header, seal_bytes
from crypto.envelope import MAGIC
from tests.crypto.support import ALICE, BOB, make_header

CHUNK_SIZES = st.integers(min_value=1, max_value=300)


def seal(plaintext: bytes, chunk_size: int) -> tuple[bytes, bytes]:
    envelope, result = seal_bytes(
        make_header(size=len(plaintext)),
        plaintext,
        signer=ALICE.signing_key,
        recipients=[BOB.encryption_public],
        chunk_size=chunk_size,
    )
    return envelope, result.slots[0]


FIXED_ENVELOPE, FIXED_SLOT = seal(b"a fixed message, three frames of 16", 16)


@given(st.binary(max_size=2000), CHUNK_SIZES)
def test_open_inverts_seal(plaintext: bytes, chunk_size: int) -> None:
    envelope, slot = seal(plaintext, chunk_size)
    opened_plaintext, opened = open_bytes(envelope, slot, BOB)
    assert opened_plaintext == plaintext
    assert opened.plaintext_size == len(plaintext)


@given(st.binary(max_size=200), CHUNK_SIZES, st.data())
def test_any_flipped_byte_is_refused(
    plaintext: bytes, chunk_size: int, data: st.DataObject
) -> None:
    envelope, slot = seal(plaintext, chunk_size)
    index = data.draw(st.integers(0, len(envelope) - 1), label="index")
    mask = data.draw(st.integers(1, 255), label="mask")
    mutated = bytearray(envelope)
    mutated[index] ^= mask
    try:
        open_bytes(bytes(mutated), slot, BOB)
    except EnvelopeError:
        return
    raise AssertionError(f"a flipped byte at {index} was accepted")


@given(st.binary(max_size=3000))
def test_arbitrary_bytes_raise_envelope_error_only(data: bytes) -> None:
    try:
        open_bytes(data, FIXED_SLOT, BOB)
    except EnvelopeError:
        return
    raise AssertionError("arbitrary bytes were accepted as an envelope")


@given(st.binary(max_size=400), st.integers(0, 70000))
def test_arbitrary_bytes_after_a_valid_prefix_raise_envelope_error_only(
    tail: bytes, header_len: int
) -> None:
    data = MAGIC + b"\x01" + header_len.to_bytes(4, "big") + tail
    try:
        open_bytes(data, FIXED_SLOT, BOB)
    except EnvelopeError:
        return
    raise AssertionError("arbitrary bytes were accepted as an envelope")


@given(st.binary(max_size=600))
def test_arbitrary_bytes_after_a_valid_header_raise_envelope_error_only(tail: bytes) -> None:
    header_end = 9 + int.from_bytes(FIXED_ENVELOPE[5:9], "big")
    data = FIXED_ENVELOPE[:header_end] + tail
    assume(data != FIXED_ENVELOPE)
    try:
        open_bytes(data, FIXED_SLOT, BOB)
    except EnvelopeError:
        return
    raise AssertionError("arbitrary bytes were accepted as an envelope")


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_arbitrary_edits_of_a_valid_envelope_raise_envelope_error_only(
    data: st.DataObject,
) -> None:
    start = data.draw(st.integers(0, len(FIXED_ENVELOPE)), label="start")
    end = data.draw(st.integers(start, len(FIXED_ENVELOPE)), label="end")
    insert = data.draw(st.binary(max_size=40), label="insert")
    edited = FIXED_ENVELOPE[:start] + insert + FIXED_ENVELOPE[end:]
    assume(edited != FIXED_ENVELOPE)
    sink = io.BytesIO()
    try:
        open_envelope(io.BytesIO(edited), FIXED_SLOT, BOB, sink)
    except EnvelopeError:
        return
    raise AssertionError("an edited envelope was accepted")


@given(st.binary(max_size=80, min_size=80))
def test_arbitrary_slots_raise_envelope_error_only(slot: bytes) -> None:
    try:
        open_bytes(FIXED_ENVELOPE, slot, BOB)
    except EnvelopeError:
        return
    raise AssertionError("an arbitrary slot opened the envelope")


@given(st.binary(max_size=500))
def test_read_header_on_arbitrary_bytes_raises_envelope_error_only(data: bytes) -> None:
    try:
        read_header(io.BytesIO(data))
    except EnvelopeError:
        pass

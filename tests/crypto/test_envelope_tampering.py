"""Every alteration of an envelope or its slot is refused.

One attack class per test: flipped bytes region by region, non-recipients, reordered,
dropped and truncated frames, trailing data, size lies, signer substitution.
"""

from __future__ import annotations

import io
import struct

import pytest

from crypto import EnvelopeError, SignatureError, open_bytes, open_envelope, seal_bytes
from crypto.envelope import MAX_FRAME_BYTES
from tests.crypto.support import (
    ALICE,
    BOB,
    CAROL,
    FakeSigner,
    Parts,
    forge,
    make_header,
    split,
    with_header,
)

PLAINTEXT = b"Subject: resultats\r\n\r\nHbA1c 6.1 %, controle dans 3 mois.\r\n"  # 58 bytes
CHUNK = 16  # four data frames: 16, 16, 16, 10


def sealed() -> tuple[bytes, bytes]:
    envelope, result = seal_bytes(
        make_header(size=len(PLAINTEXT)),
        PLAINTEXT,
        signer=ALICE.signing_key,
        recipients=[BOB.encryption_public],
        chunk_size=CHUNK,
    )
    return envelope, result.slots[0]


ENVELOPE, SLOT = sealed()
PARTS = split(ENVELOPE)


def refused(envelope: bytes, slot: bytes = SLOT, expected: type[Exception] = EnvelopeError) -> str:
    """Assert that opening fails with exactly ``expected``; return the message."""
    with pytest.raises(EnvelopeError) as caught:
        open_bytes(envelope, slot, BOB)
    assert type(caught.value) is expected, caught.value
    return str(caught.value)


def flipped(data: bytes, index: int, mask: int = 0x01) -> bytes:
    mutable = bytearray(data)
    mutable[index] ^= mask
    return bytes(mutable)


def regions(parts: Parts) -> dict[str, range]:
    header_end = len(parts.prefix) + len(parts.header)
    stream_end = header_end + len(parts.stream_header)
    found = {
        "magic": range(4),
        "version": range(4, 5),
        "header_len": range(5, 9),
        "header": range(9, header_end),
        "stream_header": range(header_end, stream_end),
    }
    for number, (offset, frame) in enumerate(zip(parts.frame_offsets(), parts.frames, strict=True)):
        found[f"frame{number}.length"] = range(offset, offset + 4)
        found[f"frame{number}.ciphertext"] = range(offset + 4, offset + len(frame))
    return found


def test_the_fixture_has_the_expected_shape() -> None:
    assert [len(frame) - 4 for frame in PARTS.frames] == [33, 33, 33, 27, 81]
    assert PARTS.join() == ENVELOPE
    assert open_bytes(ENVELOPE, SLOT, BOB)[0] == PLAINTEXT


@pytest.mark.parametrize("region", list(regions(PARTS)))
def test_every_flipped_byte_of_each_region_is_refused(region: str) -> None:
    for index in regions(PARTS)[region]:
        for mask in (0x01, 0x80, 0xFF):
            refused(flipped(ENVELOPE, index, mask))


def test_a_flipped_signature_frame_is_refused_before_signature_checking() -> None:
    offset = PARTS.frame_offsets()[-1]
    for index in range(offset + 4, len(ENVELOPE)):
        message = refused(flipped(ENVELOPE, index))
        assert "authenticate" in message


def test_a_tampered_header_that_is_still_valid_breaks_the_first_frame() -> None:
    header = make_header(size=len(PLAINTEXT), recipients=("mallory@pli.test",))
    sink = io.BytesIO()
    with pytest.raises(EnvelopeError, match="authenticate"):
        open_envelope(io.BytesIO(with_header(ENVELOPE, header.to_bytes())), SLOT, BOB, sink)
    assert sink.getvalue() == b""  # nothing released under the forged header


def test_a_header_announcing_another_size_is_refused() -> None:
    for size in (len(PLAINTEXT) - 1, len(PLAINTEXT) + 1):
        refused(with_header(ENVELOPE, make_header(size=size).to_bytes()))


def test_every_flipped_byte_of_the_slot_is_refused() -> None:
    for index in range(len(SLOT)):
        refused(ENVELOPE, flipped(SLOT, index))


def test_a_non_recipient_cannot_open() -> None:
    with pytest.raises(EnvelopeError, match="not a recipient"):
        open_bytes(ENVELOPE, SLOT, CAROL)


def test_the_slot_of_another_envelope_does_not_open_this_one() -> None:
    _, other_slot = sealed()
    refused(ENVELOPE, other_slot)


@pytest.mark.parametrize(
    "order",
    [(1, 0, 2, 3, 4), (0, 2, 1, 3, 4), (0, 1, 2, 4, 3), (4, 0, 1, 2, 3), (3, 2, 1, 0, 4)],
)
def test_reordered_frames_are_refused(order: tuple[int, ...]) -> None:
    frames = [PARTS.frames[i] for i in order]
    refused(Parts(PARTS.prefix, PARTS.header, PARTS.stream_header, frames).join())


@pytest.mark.parametrize("dropped", [0, 1, 2, 3, 4])
def test_a_dropped_frame_is_refused(dropped: int) -> None:
    frames = [frame for i, frame in enumerate(PARTS.frames) if i != dropped]
    message = refused(Parts(PARTS.prefix, PARTS.header, PARTS.stream_header, frames).join())
    if dropped == 4:
        assert "no final frame" in message


def test_a_duplicated_frame_is_refused() -> None:
    frames = [PARTS.frames[0], *PARTS.frames]
    refused(Parts(PARTS.prefix, PARTS.header, PARTS.stream_header, frames).join())


def test_every_truncation_is_refused() -> None:
    for length in range(len(ENVELOPE)):
        refused(ENVELOPE[:length])


@pytest.mark.parametrize("extra", [b"\x00", b"\x00\x00\x00\x00", PARTS.frames[-1], b"x" * 100])
def test_trailing_data_is_refused(extra: bytes) -> None:
    assert "after the final frame" in refused(ENVELOPE + extra)


def test_an_envelope_followed_by_another_is_refused() -> None:
    refused(ENVELOPE + ENVELOPE)


@pytest.mark.parametrize("length", [0, 1, 17, MAX_FRAME_BYTES + 1, 2**32 - 1])
def test_frame_lengths_out_of_bounds_are_refused_before_reading(length: int) -> None:
    first = PARTS.prefix + PARTS.header + PARTS.stream_header
    message = refused(first + struct.pack(">I", length) + b"\x00" * 64)
    assert "frame length" in message


def test_a_header_length_out_of_bounds_is_refused() -> None:
    for length in (0, 65537, 2**32 - 1):
        refused(ENVELOPE[:5] + struct.pack(">I", length) + ENVELOPE[9:])


def test_a_header_that_is_not_canonical_is_refused() -> None:
    spaced = PARTS.header.replace(b",", b", ", 1)
    assert "canonical" in refused(with_header(ENVELOPE, spaced))


def test_a_signature_by_another_key_than_header_signer_is_refused() -> None:
    envelope, slot = forge(
        make_header(size=len(PLAINTEXT), signer=ALICE),
        PLAINTEXT,
        BOB.encryption_public,
        signer=CAROL.signing_key,
    )
    refused(envelope, slot, expected=SignatureError)


def test_a_header_pointing_at_the_real_signer_cannot_be_swapped_in() -> None:
    # Carol seals a message claiming Carol as signer, then the header is edited to Alice.
    envelope, slot = forge(
        make_header(size=len(PLAINTEXT), signer=CAROL),
        PLAINTEXT,
        BOB.encryption_public,
        signer=CAROL.signing_key,
    )
    assert open_bytes(envelope, slot, BOB)[1].header.signer == CAROL.signing_public
    forged = with_header(envelope, make_header(size=len(PLAINTEXT), signer=ALICE).to_bytes())
    refused(forged, slot)


def test_a_validly_signed_envelope_whose_header_lies_about_the_size_is_refused() -> None:
    for announced in (len(PLAINTEXT) - 1, len(PLAINTEXT) + 1):
        envelope, slot = forge(
            make_header(size=announced),
            PLAINTEXT,
            BOB.encryption_public,
            signer=ALICE.signing_key,
            actual_size=len(PLAINTEXT),
        )
        assert "header.size" in refused(envelope, slot)


@pytest.mark.parametrize("signature_size", [0, 1, 63, 65, 128])
def test_a_final_frame_that_is_not_a_signature_is_refused(signature_size: int) -> None:
    envelope, slot = forge(
        make_header(size=len(PLAINTEXT)),
        PLAINTEXT,
        BOB.encryption_public,
        signer=FakeSigner(ALICE.signing_key, signature=bytes(signature_size)),
    )
    refused(envelope, slot)


def test_a_zero_signature_of_the_right_size_is_a_signature_error() -> None:
    envelope, slot = forge(
        make_header(size=len(PLAINTEXT)),
        PLAINTEXT,
        BOB.encryption_public,
        signer=FakeSigner(ALICE.signing_key, signature=bytes(64)),
    )
    refused(envelope, slot, expected=SignatureError)


def test_frames_with_other_secretstream_tags_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # libsodium's TAG_PUSH is 1: a writer patched to use it makes valid but foreign frames.
    import crypto.envelope

    monkeypatch.setattr(crypto.envelope, "_TAG_MESSAGE", 1)
    envelope, slot = forge(
        make_header(size=len(PLAINTEXT)), PLAINTEXT, BOB.encryption_public, signer=ALICE.signing_key
    )
    monkeypatch.undo()
    assert "tag" in refused(envelope, slot)


def test_bad_magic_and_unknown_versions_are_refused() -> None:
    assert "magic" in refused(b"PLIX" + ENVELOPE[4:])
    for version in (0, 2, 255):
        assert "version" in refused(ENVELOPE[:4] + bytes([version]) + ENVELOPE[5:])


def test_partial_plaintext_may_reach_the_sink_before_a_late_failure() -> None:
    # Documented behaviour: the caller discards the sink when open_envelope raises.
    truncated = Parts(PARTS.prefix, PARTS.header, PARTS.stream_header, PARTS.frames[:-1]).join()
    sink = io.BytesIO()
    with pytest.raises(EnvelopeError):
        open_envelope(io.BytesIO(truncated), SLOT, BOB, sink)
    assert sink.getvalue() == PLAINTEXT


def test_error_messages_carry_no_key_material() -> None:
    secrets = [BOB.encryption_secret, CAROL.encryption_secret, SLOT]
    for envelope, keys in ((ENVELOPE, CAROL), (ENVELOPE[:-1], BOB), (flipped(ENVELOPE, 20), BOB)):
        with pytest.raises(EnvelopeError) as caught:
            open_bytes(envelope, SLOT, keys)
        for secret in secrets:
            assert secret.hex() not in str(caught.value)
            assert repr(secret) not in str(caught.value)
        assert caught.value.__cause__ is None

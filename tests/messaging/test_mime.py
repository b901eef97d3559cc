from __future__ import annotations

import email
import email.policy
import struct
import zlib
from datetime import UTC, datetime

import pytest

from messaging import Address, Attachment, Draft, InvalidMessage, build_message, parse_message

ALICE = Address.parse("alice@medecin.pli.test")
BOB = Address.parse("bob@medecin.pli.test")
DATE = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def test_a_note_is_strict_rfc5322_with_the_trust_space_headers():
    draft = Draft(
        sender=ALICE,
        recipients=(BOB,),
        subject="Été",
        body="Ça va ?\n",
        sender_name="Dr_Alice_DUPONT_CHU",
    )
    raw = build_message(draft, message_id="<x@pli.test>", date=DATE)
    strict = email.policy.default.clone(raise_on_defect=True)
    parsed = email.message_from_bytes(raw, policy=strict)
    assert parsed["X-MSS-NIL"]
    assert parsed["X-Pli-Type"] == "note"
    assert parsed["Message-ID"] == "<x@pli.test>"
    assert parsed.get_content_charset() == "utf-8"
    read = parse_message(raw)
    assert (read.subject, read.body) == ("Été", "Ça va ?\n")


def test_an_attachment_declared_pdf_that_is_not_a_pdf_is_refused():
    fake = Attachment("ordonnance.pdf", b"<?xml version='1.0'?><a/>", "application/pdf")
    draft = Draft(sender=ALICE, recipients=(BOB,), subject="s", body="b", attachments=(fake,))
    with pytest.raises(InvalidMessage, match="content is"):
        build_message(draft, message_id="<x@pli.test>", date=DATE)


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


def test_an_attachment_is_typed_by_its_content_not_its_name():
    renamed = Attachment("photo.pdf", tiny_png())
    draft = Draft(sender=ALICE, recipients=(BOB,), subject="s", body="b", attachments=(renamed,))
    raw = build_message(draft, message_id="<x@pli.test>", date=DATE)
    [attachment] = parse_message(raw).attachments
    assert attachment.declared_type == "image/png"

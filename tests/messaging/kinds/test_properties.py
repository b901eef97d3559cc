"""Properties: every build reads back, and no input makes a reader fail other than by refusing."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crypto
from messaging.cda import read_cda
from messaging.errors import InvalidMessage
from messaging.kinds.certificate import (
    Certificate,
    CertificateMessage,
    build_certificate,
    parse_certificate,
)
from messaging.kinds.document import DocumentLimits, build_document, parse_document
from messaging.kinds.prescription import (
    Prescription,
    PrescriptionMessage,
    build_prescription,
    parse_prescription,
)
from messaging.safexml import parse_xml
from messaging.xdm import XdmLimits, read_xdm
from messaging.ziputil import ZipEntry, read_zip, write_zip
from tests.messaging.kinds.samples import DATE, PATIENT_ADDRESS, SENDER
from tests.messaging.kinds.strategies import (
    days,
    document_messages,
    identities,
    multiline,
    prescriptions,
    words,
)
from tests.messaging.kinds.test_document import MESSAGE as DOCUMENT
from tests.messaging.kinds.test_document import build as build_good_document
from tests.messaging.kinds.test_prescription import MESSAGE as PRESCRIPTION

KEY = crypto.SigningKey(b"\x05" * 32)
LIMITS = DocumentLimits(xdm=XdmLimits(allow_test_ins=True))
SLOW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(max_examples=300, deadline=None)


def refuses_or_returns(read: object, data: bytes) -> object:
    try:
        return read(data)  # type: ignore[operator]
    except InvalidMessage:
        return None


@SLOW
@given(document_messages(), st.sampled_from(["fr", "en"]))
def test_every_document_message_reads_back_as_built(message, lang):
    raw = build_document(message, message_id="<p@pli.test>", date=DATE, lang=lang, limits=LIMITS)
    assert parse_document(raw, limits=LIMITS) == message


@SLOW
@given(prescriptions(), st.sampled_from(["fr", "en"]), st.booleans())
def test_every_prescription_reads_back_as_built(prescription, lang, test_ins):
    message = PrescriptionMessage(SENDER, (PATIENT_ADDRESS,), prescription, test_ins=test_ins)
    raw = build_prescription(message, KEY, message_id="<p@pli.test>", date=DATE, lang=lang)
    assert parse_prescription(raw, KEY.public, allow_test_ins=True) == message


@SLOW
@given(
    prescriptions(), words, multiline.filter(lambda s: s.strip() != ""), st.one_of(st.none(), days)
)
def test_every_certificate_reads_back_as_built(base: Prescription, title, statement, until):
    until = until if until is None or until >= base.date else None
    certificate = Certificate(
        base.prescriber, base.patient, base.date, title, statement, until, base.reference
    )
    message = CertificateMessage(SENDER, (PATIENT_ADDRESS,), certificate)
    raw = build_certificate(message, KEY, message_id="<c@pli.test>", date=DATE)
    assert parse_certificate(raw, KEY.public) == message


@FUZZ
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_are_only_ever_refused(data):
    for read in (
        parse_document,
        lambda d: parse_prescription(d, KEY.public),
        lambda d: parse_certificate(d, KEY.public),
        read_zip,
        read_xdm,
        parse_xml,
        read_cda,
    ):
        refuses_or_returns(read, data)


_MIME_HEAD = b"From: a@b.test\r\nTo: c@d.test\r\nSubject: XDM/1.0/DDM+x\r\nMIME-Version: 1.0\r\n"


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_mime_bodies_are_only_ever_refused(body):
    refuses_or_returns(
        parse_document, _MIME_HEAD + b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + body
    )


_GOOD_DOCUMENT = build_good_document()
_GOOD_PRESCRIPTION = build_prescription(PRESCRIPTION, KEY, message_id="<rx@pli.test>", date=DATE)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_a_damaged_document_message_is_refused_or_unchanged(data):
    raw = bytearray(_GOOD_DOCUMENT)
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    parsed = refuses_or_returns(parse_document, bytes(raw))
    if parsed is not None:
        # Headers such as Date or Message-ID are not part of the document message.
        assert parsed.patient == DOCUMENT.patient  # type: ignore[attr-defined]
        assert parsed.documents == DOCUMENT.documents  # type: ignore[attr-defined]


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_a_damaged_prescription_is_refused_or_unchanged(data):
    raw = bytearray(_GOOD_PRESCRIPTION)
    for _ in range(data.draw(st.integers(1, 3))):
        raw[data.draw(st.integers(0, len(raw) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    parsed = refuses_or_returns(lambda d: parse_prescription(d, KEY.public), bytes(raw))
    if parsed is not None:
        # Whatever survives the damage is exactly what the prescriber signed.
        assert parsed.prescription == PRESCRIPTION.prescription  # type: ignore[attr-defined]
        assert parsed.sender == PRESCRIPTION.sender  # type: ignore[attr-defined]


@FUZZ
@given(st.lists(st.tuples(st.text(max_size=20), st.binary(max_size=64)), max_size=5))
def test_zip_names_are_either_refused_or_read_back(entries):
    try:
        data = write_zip([ZipEntry(n, d) for n, d in entries], date=DATE)
    except InvalidMessage as refused:
        assert refused.code in {"zip-path-traversal", "zip-duplicate-entry"}
        return
    if entries:
        assert read_zip(data) == tuple(ZipEntry(n, d) for n, d in entries if not n.endswith("/"))


@SLOW
@given(identities())
def test_the_patient_of_a_generated_document_is_qualified(patient):
    message = replace(DOCUMENT, patient=patient, documents=(DOCUMENT.documents[1],))
    raw = build_document(message, message_id="<q@pli.test>", date=DATE)
    assert parse_document(raw).patient == patient

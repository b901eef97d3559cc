"""The remaining refusals, each with its code: foreign archives, headers, signed content, MIME."""

from __future__ import annotations

import email
import email.policy
from dataclasses import replace
from datetime import date
from email.message import EmailMessage

import pytest

from messaging.errors import InvalidMessage
from messaging.healthid import INS_NIR_OID
from messaging.kinds.document import DocumentLimits, build_document, parse_document
from messaging.kinds.parts import loads_strict, read_typed_message
from messaging.kinds.prescription import STRUCTURED_TYPE as RX_TYPE
from messaging.kinds.prescription import parse_prescription
from messaging.types import MessageKind
from messaging.xdm import PatientTraits, XdmDocument, write_xdm
from tests.messaging.kinds.corpus_cases import (
    CORPUS_KEY,
    _cda_entry,
    _edit_metadata,
    _pdf_entry,
    _resign,
    _submission,
    _with_structured,
    _xdm_mail,
    certificate_bytes,
    good_document,
    good_document_bytes,
    prescription_bytes,
)
from tests.messaging.kinds.samples import DATE, JEANNE, cda, pdf


def refusal(read, data: bytes) -> str:
    with pytest.raises(InvalidMessage) as caught:
        read(data)
    return caught.value.code


# --- archives from other software ------------------------------------------------------------


def test_traits_missing_from_the_metadata_are_taken_from_the_cda():
    submission = replace(_submission(_cda_entry(cda())), traits=None)
    parsed = parse_document(_xdm_mail(write_xdm(submission), [pdf()]))
    assert parsed.patient == JEANNE


def test_a_patient_without_any_traits_cannot_be_qualified():
    submission = replace(_submission(_pdf_entry(1, pdf())), traits=None)
    assert refusal(parse_document, _xdm_mail(write_xdm(submission), [pdf()])) == (
        "ins-traits-missing"
    )


def test_traits_that_contradict_the_ins_are_refused():
    traits = PatientTraits("DUPONT", "Jeanne", date(1981, 3, 1), "F")
    submission = replace(_submission(_pdf_entry(1, pdf())), traits=traits)
    assert refusal(parse_document, _xdm_mail(write_xdm(submission), [pdf()])) == (
        "ins-traits-mismatch"
    )


def test_a_cda_with_another_birth_date_or_sex_is_another_patient():
    # The sex is bound to the NIR, so the CDA is edited rather than built for another person.
    older = replace(JEANNE, birth_date=date(1980, 3, 2))
    for data in (
        cda(older),
        cda().replace(b'administrativeGenderCode code="F"', b'administrativeGenderCode code="M"'),
    ):
        archive = write_xdm(_submission(_cda_entry(data)))
        assert refusal(parse_document, _xdm_mail(archive, [pdf()])) == "xdm-multiple-patients"


def test_an_archived_document_that_is_neither_cda_nor_pdf_is_refused():
    image = XdmDocument("IMG.PNG", b"\x89PNG\r\n\x1a\n", "image/png", "2.25.5", "Photo", "1-1")
    archive = write_xdm(_submission(image))
    assert refusal(parse_document, _xdm_mail(archive, [pdf()])) == "document-unsupported-type"


def test_a_cda_listed_under_another_unique_id_is_refused():
    entry = replace(_cda_entry(cda()), unique_id="1.2.3^OTHER")
    archive = write_xdm(_submission(entry))
    assert refusal(parse_document, _xdm_mail(archive, [pdf()])) == "document-unique-id"


def test_the_date_of_the_act_falls_back_to_the_creation_time():
    entry = replace(_pdf_entry(1, pdf()), service_date=None)
    parsed = parse_document(_xdm_mail(write_xdm(_submission(entry)), [pdf()]))
    assert parsed.documents[0].date == DATE.date()

    def drop_creation(metadata: bytes) -> bytes:
        start = metadata.index(b'<rim:Slot name="creationTime">')
        return metadata[:start] + metadata[metadata.index(b"</rim:Slot>", start) + 11 :]

    archive = _edit_metadata(write_xdm(_submission(entry)), drop_creation)
    assert refusal(parse_document, _xdm_mail(archive, [pdf()])) == "xdm-metadata-invalid"


def test_reading_bounds_the_number_of_documents():
    archive = write_xdm(_submission(_pdf_entry(1), _pdf_entry(2)))
    raw = _xdm_mail(archive, [pdf("document 1"), pdf("document 2")])
    assert parse_document(raw).documents
    limits = DocumentLimits(max_documents=1)
    assert refusal(lambda d: parse_document(d, limits=limits), raw) == "document-too-many"


@pytest.mark.parametrize(
    ("edit", "code"),
    [
        ((b"XDSSubmissionSet.patientId", b"XDSSubmissionSet.patientId"), None),
        ((b"&amp;1.2.250.1.213.1.4.8&amp;ISO^NH", b"^NH"), "ins-missing"),
        ((b"<rim:RegistryObjectList>", b"<rim:Other>"), "xdm-metadata-invalid"),
        ((b'name="hash"', b'name="hash2"'), "xdm-metadata-invalid"),
        ((b"urn:uuid:f0306f51-975f-434e-a61c-c59651d33983", b"urn:uuid:0"), "xdm-metadata-invalid"),
        ((b"PID-3|", b"PID-3|999^^^&amp;1.2.3&amp;ISO^PI~"), None),
    ],
)
def test_metadata_details(edit, code):
    old, new = edit
    archive = write_xdm(_submission(_pdf_entry(1, pdf())))

    def change(metadata: bytes) -> bytes:
        if old == b"<rim:RegistryObjectList>":
            return metadata.replace(old, new).replace(b"</rim:RegistryObjectList>", b"</rim:Other>")
        return metadata.replace(old, new)

    raw = _xdm_mail(_edit_metadata(archive, change), [pdf()])
    if code is None:
        assert parse_document(raw).patient == JEANNE
    else:
        assert refusal(parse_document, raw) == code


def test_another_patient_in_source_patient_info_is_refused():
    other = b"PID-3|175072B12345697^^^&amp;1.2.250.1.213.1.4.8&amp;ISO^NH"
    archive = _edit_metadata(
        write_xdm(_submission(_pdf_entry(1, pdf()))),
        lambda m: m.replace(f"PID-3|{JEANNE.ins}^^^&amp;{INS_NIR_OID}&amp;ISO^NH".encode(), other),
    )
    assert refusal(parse_document, _xdm_mail(archive, [pdf()])) == "xdm-multiple-patients"


# --- headers and structured part of document messages ----------------------------------------


def test_a_repeated_or_unfounded_mss_header_is_refused():
    raw = good_document_bytes()
    twice = raw.replace(b"X-MSS-INS: O\r\n", b"X-MSS-INS: O\r\nX-MSS-INS: N\r\n", 1)
    assert refusal(parse_document, twice) == "document-header-mismatch"
    lying = raw.replace(b"X-MSS-INS: O", b"X-MSS-INS: N", 1)
    assert refusal(parse_document, lying) == "document-header-mismatch"
    archive = write_xdm(_submission(_pdf_entry(1, pdf())))
    unfounded = _xdm_mail(archive, [pdf()], headers=(("X-MSS-CODECDA", "11488-4"),))
    assert refusal(parse_document, unfounded) == "document-header-mismatch"


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d.update(documents=[]),
        lambda d: d.update(comment=3),
        lambda d: d["documents"].__setitem__(0, "x"),
        lambda d: d["documents"][0].update(record_number=7),
        lambda d: d["patient"].update(birth_name="DURAND"),
    ],
)
def test_a_structured_part_that_disagrees_with_the_archive_is_refused(edit):
    raw = _with_structured(good_document_bytes(), "application/vnd.pli.document+json", edit)
    assert refusal(parse_document, raw) == "document-structured-mismatch"


def test_building_checks_names_codes_ids_and_size():
    message = good_document()
    spaced = replace(message, patient=replace(JEANNE, birth_name="DUPONT "))
    document = message.documents[0]
    cases = {
        "document-field-invalid": [
            spaced,
            replace(message, documents=(replace(document, type_code="11488-4,1", cda=None),)),
        ],
        "document-unique-id": [
            replace(message, documents=(replace(document, unique_id="1.2.3"),)),
        ],
    }
    for code, messages in cases.items():
        for bad in messages:
            with pytest.raises(InvalidMessage) as caught:
                build_document(bad, message_id="<x@pli.test>", date=DATE)
            assert caught.value.code == code
    with pytest.raises(InvalidMessage) as caught:
        build_document(
            message,
            message_id="<x@pli.test>",
            date=DATE,
            limits=DocumentLimits(max_message_bytes=2000),
        )
    assert caught.value.code == "too-large"


# --- signed content --------------------------------------------------------------------------


def _resigned(edit) -> bytes:
    def change(data: dict[str, object]) -> None:
        edit(data["content"])
        _resign(data, "prescription")

    return _with_structured(prescription_bytes(), RX_TYPE, change)


def read_rx(raw: bytes) -> object:
    return parse_prescription(raw, CORPUS_KEY.public)


@pytest.mark.parametrize(
    ("edit", "code"),
    [
        (lambda c: c.update(items="x"), "prescription-field-invalid"),
        (lambda c: c.update(items=["x"]), "prescription-field-invalid"),
        (lambda c: c["items"][0].update(substitutable="yes"), "prescription-field-invalid"),
        (lambda c: c["items"][0].update(dosage=3), "prescription-field-invalid"),
        (lambda c: c["items"][0].pop("duration"), "prescription-field-missing"),
        (lambda c: c.update(date="22/11/2026"), "prescription-field-invalid"),
        (lambda c: c.update(date=""), "prescription-field-missing"),
        (lambda c: c.update(prescriber="Dr X"), "prescription-field-invalid"),
        (lambda c: c.pop("patient"), "prescription-field-missing"),
        (lambda c: c["patient"].update(sex="X"), "prescription-field-invalid"),
        (lambda c: c["patient"].update(birth_date="1981-03-01"), "ins-traits-mismatch"),
        (lambda c: c["patient"].update(ins_oid="1.2.250.1.213.1.4.9"), "ins-oid"),
        (lambda c: c.update(renewals="2"), "prescription-field-invalid"),
        (lambda c: c.update(type="certificate"), "structured-version"),
        (lambda c: c.update(version=2), "structured-version"),
        (lambda c: c.update(extra=1), "structured-malformed"),
    ],
)
def test_signed_but_malformed_content_is_refused(edit, code):
    assert refusal(read_rx, _resigned(edit)) == code


def test_the_structured_part_is_content_and_signature_only():
    raw = _with_structured(prescription_bytes(), RX_TYPE, lambda d: d.update(note="hi"))
    assert refusal(read_rx, raw) == "structured-malformed"
    raw = _with_structured(prescription_bytes(), RX_TYPE, lambda d: d.update(content=[]))
    assert refusal(read_rx, raw) == "structured-malformed"


def test_a_certificate_with_a_malformed_signed_date_is_refused():
    from messaging.kinds.certificate import STRUCTURED_TYPE, parse_certificate

    def change(data: dict[str, object]) -> None:
        data["content"]["valid_until"] = "soon"  # type: ignore[index]
        _resign(data, "certificate")

    raw = _with_structured(certificate_bytes(), STRUCTURED_TYPE, change)
    assert refusal(lambda d: parse_certificate(d, CORPUS_KEY.public), raw) == (
        "certificate-field-invalid"
    )


# --- MIME and JSON ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [b"[1]", b'{"a": NaN}', b'{"a": 1, "a": 2}', b"{", b"\xff", b"[" * 100_000],
)
def test_structured_json_must_be_one_plain_object(text):
    with pytest.raises(InvalidMessage) as caught:
        loads_strict(text, max_bytes=1 << 20)
    assert caught.value.code == "structured-malformed"
    with pytest.raises(InvalidMessage):
        loads_strict(b"{}", max_bytes=1)


def _read(raw: bytes) -> object:
    return read_typed_message(
        raw,
        kind=MessageKind.PRESCRIPTION,
        structured_type=RX_TYPE,
        structured_version=1,
        max_bytes=1 << 20,
    )


def test_two_structured_parts_or_senders_are_refused():
    parsed = email.message_from_bytes(prescription_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    part = next(p for p in parsed.iter_attachments() if p.get_content_type() == RX_TYPE)
    parsed.attach(part)
    assert refusal(_read, parsed.as_bytes(policy=email.policy.SMTP)) == "structured-duplicate"
    raw = prescription_bytes().replace(b"From: ", b"From: a@b.test, ", 1)
    assert refusal(_read, raw) == "mime-malformed"
    assert refusal(_read, b"From: not an address\r\n\r\nx") == "mime-malformed"


def test_an_id_without_root_is_no_id():
    data = cda().replace(
        b'<id root="1.2.250.1.999.1" extension="DOC-1"/>', b'<id extension="DOC-1"/>'
    )
    from messaging.cda import read_cda

    assert refusal(read_cda, data) == "cda-missing-id"


@pytest.mark.parametrize(
    ("documents", "code"),
    [
        ((_pdf_entry(1), replace(_pdf_entry(2), filename="DOC0001.PDF")), "zip-duplicate-entry"),
        ((_pdf_entry(1), replace(_pdf_entry(2), unique_id="2.25.1")), "xdm-metadata-invalid"),
    ],
)
def test_two_documents_may_not_share_a_file_or_an_id(documents, code):
    from messaging.xdm import read_xdm

    with pytest.raises(InvalidMessage) as caught:
        read_xdm(write_xdm(_submission(*documents)))
    assert caught.value.code == code


def test_two_documents_pointing_at_one_file_are_refused():
    from messaging.xdm import read_xdm

    archive = _edit_metadata(
        write_xdm(_submission(_pdf_entry(1), _pdf_entry(2))),
        lambda m: m.replace(
            b"<rim:Value>DOC0002.PDF</rim:Value>", b"<rim:Value>DOC0001.PDF</rim:Value>"
        ),
    )
    # The second entry's hash no longer matches the file it now names.
    assert refusal(read_xdm, archive) == "xdm-hash-mismatch"


def test_exactly_one_submission_set():
    from messaging.xdm import read_xdm

    archive = _edit_metadata(
        write_xdm(_submission(_pdf_entry(1))),
        lambda m: m.replace(b"urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446", b"urn:uuid:0"),
    )
    assert refusal(read_xdm, archive) == "xdm-metadata-invalid"


def test_only_french_and_english_texts_are_written():
    from messaging.kinds.parts import build_typed_message
    from tests.messaging.kinds.samples import SENDER

    with pytest.raises(ValueError, match="language"):
        build_typed_message(
            kind=MessageKind.NOTE,
            sender=SENDER,
            recipients=(),
            subject="",
            text="",
            language="de",
            structured={},
            structured_type="application/json",
            structured_version=1,
            structured_filename="x.json",
            files=(),
            message_id="<x@y>",
            date=DATE,
        )


def test_a_document_is_recognised_by_its_structured_part_whatever_its_subject():
    from messaging.kinds.document import SPEC

    raw = good_document_bytes().replace(b"Subject: XDM/1.0/DDM+", b"Subject: Fwd: ", 1)
    assert SPEC.recognises(email.message_from_bytes(raw, policy=email.policy.default))


def test_unknown_professions_are_shown_as_their_code():
    from messaging.kinds.issuer import Issuer, issuer_line

    assert "99" in issuer_line(Issuer("10003578209", "X", "99"), "en")


def test_certificate_refusals_at_build_and_read():
    from messaging.kinds.certificate import (
        STRUCTURED_TYPE,
        build_certificate,
        parse_certificate,
    )
    from tests.messaging.kinds.corpus_cases import CERTIFICATE

    with pytest.raises(InvalidMessage) as caught:
        replace(CERTIFICATE.certificate, date=DATE)
    assert caught.value.code == "certificate-field-invalid"
    with pytest.raises(InvalidMessage) as caught:
        build_certificate(
            replace(CERTIFICATE, recipients=()), CORPUS_KEY, message_id="<x@y>", date=DATE
        )
    assert caught.value.code == "certificate-field-missing"

    def change(data: dict[str, object]) -> None:
        data["content"]["stamp"] = "x"  # type: ignore[index]
        _resign(data, "certificate")

    raw = _with_structured(certificate_bytes(), STRUCTURED_TYPE, change)
    assert refusal(lambda d: parse_certificate(d, CORPUS_KEY.public), raw) == "structured-malformed"


def test_a_restriction_must_be_one_pli_knows():
    message = good_document()
    stray = replace(message.documents[0], restrictions=frozenset({"SECRET"}))  # type: ignore[arg-type]
    with pytest.raises(InvalidMessage) as caught:
        build_document(replace(message, documents=(stray,)), message_id="<x@y>", date=DATE)
    assert caught.value.code == "document-field-invalid"

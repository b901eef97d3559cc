from __future__ import annotations

import email
import email.policy
import hashlib
import io
import zipfile
from dataclasses import replace
from datetime import date
from email.message import EmailMessage

import mailparser
import pytest

from messaging.errors import InvalidMessage
from messaging.healthid import INS_NIR_OID, INS_NIR_TEST_OID
from messaging.kinds.document import (
    SPEC,
    DocumentLimits,
    DocumentMessage,
    HealthDocument,
    Restriction,
    build_document,
    document_subject,
    parse_document,
    pdf_filename,
)
from messaging.types import MessageKind
from messaging.xdm import XdmLimits, read_xdm
from tests.messaging.kinds.corpus_cases import _rename_subset, mail
from tests.messaging.kinds.samples import DATE, JEANNE, PATIENT_ADDRESS, PAUL, SENDER, cda, pdf

STRICT = email.policy.default.clone(raise_on_defect=True)

CONSULTATION = HealthDocument(
    title="Compte rendu de consultation",
    type_code="11488-4",
    type_label="CR consultation",
    pdf=pdf("consultation"),
    cda=cda(),
    date=date(2026, 11, 20),
    restrictions=frozenset({Restriction.INVISIBLE_REP_LEGAUX, Restriction.MASQUE_PS}),
)
SCAN = HealthDocument(
    title="Ordonnance scannée",
    type_code="57833-6",
    pdf=pdf("ordonnance"),
    date=date(2026, 11, 21),
    record_number="D 77/2026",
)
MESSAGE = DocumentMessage(
    sender=SENDER,
    recipients=(PATIENT_ADDRESS,),
    patient=JEANNE,
    documents=(CONSULTATION, SCAN),
    sender_name="Dr_Sophie_MARTIN_Cabinet-du-Parc",
    comment="Bonjour,\nvoici vos documents.",
)


def build(message: DocumentMessage = MESSAGE, **kw: object) -> bytes:
    return build_document(message, message_id="<doc@pli.test>", date=DATE, **kw)  # type: ignore[arg-type]


def attachments(raw: bytes) -> list[EmailMessage]:
    parsed = email.message_from_bytes(raw, policy=STRICT)
    assert isinstance(parsed, EmailMessage)
    return list(parsed.iter_attachments())


def archive_of(raw: bytes) -> zipfile.ZipFile:
    for part in attachments(raw):
        if part.get_filename() == "IHE_XDM.ZIP":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return zipfile.ZipFile(io.BytesIO(payload))
    raise AssertionError("no IHE_XDM.ZIP")


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_a_document_message_round_trips_in_each_language(lang):
    raw = build(lang=lang)
    assert parse_document(raw) == MESSAGE


def test_the_message_is_strict_rfc5322_and_a_second_parser_reads_it():
    raw = build()
    parsed = email.message_from_bytes(raw, policy=STRICT)
    assert parsed["X-Pli-Type"] == "document"
    assert parsed["X-MSS-NIL"]
    other = mailparser.parse_from_bytes(raw)
    assert other.subject == document_subject(MESSAGE)
    assert [a["filename"] for a in other.attachments] == [
        "pli-document.json",
        "IHE_XDM.ZIP",
        "20261120_CR-consultation_DUPONT_Jeanne.pdf",
        "20261121_57833-6_DUPONT_Jeanne_D-77-2026.pdf",
    ]
    assert other.text_plain and "2 documents de santé pour Jeanne DUPONT" in other.text_plain[0]


def test_subject_and_trust_space_headers_follow_the_national_format():
    parsed = email.message_from_bytes(build(), policy=STRICT)
    assert parsed["Subject"] == (
        "XDM/1.0/DDM+Compte rendu de consultation, Ordonnance scannée DUPONT Jeanne 01/03/1980"
    )
    assert parsed["X-MSS-CODECDA"] == "11488-4"
    assert parsed["X-MSS-INS"] == "O"


def test_several_cda_documents_make_a_multi_valued_codecda_header():
    second = replace(CONSULTATION, type_code="34133-9", cda=cda(code="34133-9", doc_id="DOC-2"))
    parsed = email.message_from_bytes(
        build(replace(MESSAGE, documents=(CONSULTATION, second))), policy=STRICT
    )
    assert parsed["X-MSS-CODECDA"] == "11488-4,34133-9"


def test_a_cda_without_the_ins_gives_x_mss_ins_n():
    anonymous = replace(CONSULTATION, cda=cda(with_ins=False))
    message = replace(MESSAGE, documents=(anonymous,))
    raw = build(message)
    assert email.message_from_bytes(raw, policy=STRICT)["X-MSS-INS"] == "N"
    assert parse_document(raw) == message


def test_pdf_only_messages_carry_no_cda_headers():
    message = replace(MESSAGE, documents=(SCAN,))
    parsed = email.message_from_bytes(build(message), policy=STRICT)
    assert "X-MSS-CODECDA" not in parsed
    assert "X-MSS-INS" not in parsed


def test_the_archive_has_the_xdm_layout_with_ins_hashes_and_sizes():
    archive = archive_of(build())
    assert archive.namelist() == [
        "INDEX.HTM",
        "README.TXT",
        "IHE_XDM/SUBSET01/METADATA.XML",
        "IHE_XDM/SUBSET01/DOC0001.XML",
        "IHE_XDM/SUBSET01/DOC0002.PDF",
    ]
    metadata = archive.read("IHE_XDM/SUBSET01/METADATA.XML").decode()
    assert "lcm:SubmitObjectsRequest" in metadata
    assert f"{JEANNE.ins}^^^&amp;{INS_NIR_OID}&amp;ISO^NH" in metadata
    assert CONSULTATION.cda is not None
    assert hashlib.sha1(CONSULTATION.cda).hexdigest() in metadata  # noqa: S324
    assert f"<rim:Value>{len(CONSULTATION.cda)}</rim:Value>" in metadata
    assert "MASQUE_PS" in metadata and "INVISIBLE_REP_LEGAUX" in metadata
    assert archive.read("IHE_XDM/SUBSET01/DOC0002.PDF") == SCAN.pdf


def test_the_structured_part_carries_restrictions_and_versions():
    parsed = [p for p in attachments(build()) if p.get_filename() == "pli-document.json"][0]
    assert parsed.get_content_type() == "application/vnd.pli.document+json"
    assert parsed.get_param("version") == "1"
    payload = parsed.get_payload(decode=True)
    assert isinstance(payload, bytes)
    assert b'"restrictions":["INVISIBLE_REP_LEGAUX","MASQUE_PS"]' in payload


@pytest.mark.parametrize("subset", ["SUBSET01", "SS000001", "ss000001"])
def test_an_archive_from_another_operator_is_read_from_any_subset_folder(subset):
    # Another operator's client sends the archive and the PDFs, without Pli's structured part.
    built = build()
    xdm = archive_of(built)
    payload = _rename_subset(_zip_bytes(xdm), subset)
    foreign = mail(
        [
            ("IHE_XDM.ZIP", payload, "application/zip"),
            ("a.pdf", CONSULTATION.pdf, "application/pdf"),
            ("b.pdf", SCAN.pdf, "application/pdf"),
        ],
        headers=(("X-MSS-CODECDA", "11488-4"), ("X-MSS-INS", "O")),
    )
    assert read_xdm(payload).subset == subset
    parsed = parse_document(foreign)
    assert parsed.patient == JEANNE
    assert parsed.comment == "Bonjour,"
    # Record numbers travel only in Pli's structured part; everything else is in the archive.
    assert parsed.documents == (CONSULTATION, replace(SCAN, record_number=""))


def _zip_bytes(archive: zipfile.ZipFile) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        for info in archive.infolist():
            out.writestr(info.filename, archive.read(info))
    return buffer.getvalue()


def test_pdf_names_are_ascii_with_the_optional_record_number():
    assert pdf_filename(PAUL, SCAN) == "20261121_57833-6_LEGER_Paul-Emile_D-77-2026.pdf"
    assert pdf_filename(JEANNE, CONSULTATION) == "20261120_CR-consultation_DUPONT_Jeanne.pdf"


def test_test_identities_use_test_oids_and_are_refused_unless_allowed():
    message = replace(MESSAGE, test_ins=True)
    raw = build(message)
    assert INS_NIR_TEST_OID in archive_of(raw).read("IHE_XDM/SUBSET01/METADATA.XML").decode()
    with pytest.raises(InvalidMessage) as refused:
        parse_document(raw)
    assert refused.value.code == "ins-oid"
    allowed = DocumentLimits(xdm=XdmLimits(allow_test_ins=True))
    assert parse_document(raw, limits=allowed) == message


def test_an_explicit_unique_id_of_a_pdf_survives_the_round_trip():
    message = replace(MESSAGE, documents=(replace(SCAN, unique_id="1.2.250.1.999.7.1"),))
    assert parse_document(build(message)) == message


def refused(message: DocumentMessage) -> str:
    with pytest.raises(InvalidMessage) as caught:
        build(message)
    return caught.value.code


def test_building_refuses_a_readable_pdf_that_is_not_a_pdf():
    fake = replace(SCAN, pdf=b"<html>not a pdf</html>")
    assert refused(replace(MESSAGE, documents=(fake,))) == "content-not-pdf"


def test_building_refuses_a_cda_whose_code_is_not_the_document_type():
    wrong = replace(CONSULTATION, type_code="34133-9")
    assert refused(replace(MESSAGE, documents=(wrong,))) == "cda-code-mismatch"


def test_building_refuses_a_cda_about_another_patient():
    other = replace(CONSULTATION, cda=cda(PAUL))
    assert refused(replace(MESSAGE, documents=(other,))) == "xdm-multiple-patients"


def test_building_refuses_a_cda_renamed_from_a_pdf():
    renamed = replace(CONSULTATION, cda=pdf())
    assert refused(replace(MESSAGE, documents=(renamed,))) == "content-not-xml"


def test_building_refuses_an_empty_message_and_the_same_document_twice():
    assert refused(replace(MESSAGE, documents=())) == "document-empty"
    assert refused(replace(MESSAGE, documents=(SCAN, SCAN))) == "document-unique-id"
    assert refused(replace(MESSAGE, recipients=())) == "document-field-missing"


def test_building_refuses_titles_that_would_break_headers():
    assert refused(replace(MESSAGE, documents=(replace(SCAN, title="a\r\nBcc: x@y"),))) == (
        "document-field-invalid"
    )
    assert refused(replace(MESSAGE, documents=(replace(SCAN, title=" "),))) == (
        "document-field-missing"
    )


def test_building_refuses_too_many_documents():
    limits = DocumentLimits(max_documents=1)
    with pytest.raises(InvalidMessage) as caught:
        build(limits=limits)
    assert caught.value.code == "document-too-many"


def test_reading_refuses_a_missing_readable_pdf():
    raw = build(replace(MESSAGE, documents=(SCAN,)))
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    xdm = [p for p in parsed.iter_attachments() if p.get_filename() == "IHE_XDM.ZIP"][0]
    payload = xdm.get_payload(decode=True)
    assert isinstance(payload, bytes)
    with pytest.raises(InvalidMessage) as caught:
        parse_document(mail([("IHE_XDM.ZIP", payload, "application/zip")]))
    assert caught.value.code == "document-pdf-count"


def test_reading_refuses_a_readable_pdf_that_is_not_the_archived_one():
    raw = build(replace(MESSAGE, documents=(SCAN,)))
    payload = _zip_bytes(archive_of(raw))
    swapped = mail(
        [("IHE_XDM.ZIP", payload, "application/zip"), ("x.pdf", pdf("?"), "application/pdf")]
    )
    with pytest.raises(InvalidMessage) as caught:
        parse_document(swapped)
    assert caught.value.code == "document-pdf-mismatch"


def test_reading_refuses_unexpected_attachments_and_a_wrong_subject():
    payload = _zip_bytes(archive_of(build(replace(MESSAGE, documents=(SCAN,)))))
    files = [("IHE_XDM.ZIP", payload, "application/zip"), ("x.pdf", SCAN.pdf, "application/pdf")]
    with pytest.raises(InvalidMessage) as caught:
        parse_document(mail([*files, ("notes.txt", b"hello\n", "text/plain")]))
    assert caught.value.code == "document-unexpected-attachment"
    with pytest.raises(InvalidMessage) as caught:
        parse_document(mail(files, subject="Compte rendu"))
    assert caught.value.code == "document-subject"
    with pytest.raises(InvalidMessage) as caught:
        parse_document(mail([*files, ("IHE_XDM.ZIP", b"not a zip", "application/zip")]))
    assert caught.value.code == "content-not-zip"
    with pytest.raises(InvalidMessage) as caught:
        parse_document(mail([*files, ("copy.zip", payload, "application/zip")]))
    assert caught.value.code == "xdm-multiple"


def test_reading_refuses_another_kind_and_oversized_messages():
    raw = build()
    with pytest.raises(InvalidMessage) as caught:
        parse_document(raw.replace(b"X-Pli-Type: document", b"X-Pli-Type: note"))
    assert caught.value.code == "kind-mismatch"
    with pytest.raises(InvalidMessage) as caught:
        parse_document(raw, limits=DocumentLimits(max_message_bytes=1000))
    assert caught.value.code == "too-large"


def test_a_document_message_is_recognised_by_subject_part_or_archive_name():
    parsed = email.message_from_bytes(build(), policy=email.policy.default)
    assert SPEC.kind is MessageKind.DOCUMENT
    assert SPEC.recognises(parsed)
    foreign = email.message_from_bytes(
        mail([("ihe_xdm.zip", b"x", "application/zip")], subject="CR"),
        policy=email.policy.default,
    )
    assert SPEC.recognises(foreign)
    plain = email.message_from_bytes(mail([], subject="Bonjour"), policy=email.policy.default)
    assert not SPEC.recognises(plain)


def test_a_pli_document_message_that_lost_its_structured_part_is_refused():
    payload = _zip_bytes(archive_of(build(replace(MESSAGE, documents=(SCAN,)))))
    files = [("IHE_XDM.ZIP", payload, "application/zip"), ("x.pdf", SCAN.pdf, "application/pdf")]
    with pytest.raises(InvalidMessage) as caught:
        parse_document(mail(files, kind="document"))
    assert caught.value.code == "structured-missing"

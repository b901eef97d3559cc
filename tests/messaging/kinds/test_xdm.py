from __future__ import annotations

import io
import zipfile
from dataclasses import replace
from datetime import date

import pytest

from messaging.errors import InvalidMessage
from messaging.healthid import INS_NIR_OID
from messaging.xdm import (
    RESTRICTION_OID,
    PatientTraits,
    Restriction,
    XdmDocument,
    XdmSubmission,
    read_xdm,
    write_xdm,
)
from tests.messaging.kinds.corpus_cases import _edit_metadata, _rename_subset, _zip
from tests.messaging.kinds.samples import DATE, JEANNE, cda, pdf

DOCUMENT = XdmDocument(
    filename="DOC0001.XML",
    data=cda(),
    mime_type="text/xml",
    unique_id="1.2.250.1.999.1^DOC-1",
    title='CR <script>alert("x")</script> & co',
    type_code="11488-4",
    type_display="Compte rendu",
    service_date=date(2026, 11, 20),
    creation_time=DATE,
    restrictions=frozenset({Restriction.MASQUE_PS, Restriction.INVISIBLE_PATIENT}),
)
SUBMISSION = XdmSubmission(
    patient=JEANNE.ins,
    patient_oid=INS_NIR_OID,
    documents=(
        DOCUMENT,
        replace(
            DOCUMENT,
            filename="DOC0002.PDF",
            data=pdf(),
            mime_type="application/pdf",
            unique_id="2.25.7",
            restrictions=frozenset(),
        ),
    ),
    unique_id="2.25.99",
    source_id="2.25.1",
    submission_time=DATE,
    traits=PatientTraits("DU^PONT|&~\\", "Jeanne", date(1980, 3, 1), "F"),
    author_address="sophie.martin@medecin.pli.test",
    recipients=("a@pli.test", "b@pli.test"),
    title="Documents",
)


@pytest.mark.parametrize("subset", ["SUBSET01", "SS000001"])
def test_a_submission_round_trips_through_any_subset_folder(subset):
    archive = read_xdm(_rename_subset(write_xdm(SUBMISSION), subset))
    assert archive.subset == subset
    assert archive.submission == SUBMISSION


def test_writing_under_another_subset_name_reads_back():
    assert read_xdm(write_xdm(SUBMISSION, subset="SS000001")).subset == "SS000001"


def test_the_index_escapes_titles():
    with zipfile.ZipFile(io.BytesIO(write_xdm(SUBMISSION))) as archive:
        index = archive.read("INDEX.HTM").decode()
        assert "<script>" not in index
        assert "&lt;script&gt;" in index
        assert archive.read("README.TXT").startswith(b"IHE XDM")


def test_restrictions_are_confidentiality_codes_of_the_ans_table():
    with zipfile.ZipFile(io.BytesIO(write_xdm(SUBMISSION))) as archive:
        metadata = archive.read("IHE_XDM/SUBSET01/METADATA.XML").decode()
    assert metadata.count(f"<rim:Value>{RESTRICTION_OID}</rim:Value>") == 2
    assert 'nodeRepresentation="N"' in metadata


def code_of(data: bytes) -> str:
    with pytest.raises(InvalidMessage) as caught:
        read_xdm(data)
    return caught.value.code


def test_an_unknown_restriction_is_refused_rather_than_dropped():
    data = _edit_metadata(write_xdm(SUBMISSION), lambda m: m.replace(b'"MASQUE_PS"', b'"SECRET"'))
    assert code_of(data) == "xdm-unknown-restriction"


@pytest.mark.parametrize(
    ("old", "new", "code"),
    [
        (
            b"<rim:Value>DOC0002.PDF</rim:Value>",
            b"<rim:Value>DOC0009.PDF</rim:Value>",
            "xdm-missing-document",
        ),
        (
            b"<rim:Value>DOC0002.PDF</rim:Value>",
            b"<rim:Value>../x</rim:Value>",
            "zip-path-traversal",
        ),
        (
            b'name="size"><rim:ValueList><rim:Value>',
            b'name="size"><rim:ValueList><rim:Value>1',
            "xdm-size-mismatch",
        ),
        (
            b"<rim:Value>20261122103000</rim:Value>",
            b"<rim:Value>yesterday</rim:Value>",
            "xdm-metadata-invalid",
        ),
        (b"PID-7|19800301", b"PID-7|19810301", "xdm-multiple-patients"),
        (b"urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab", b"urn:uuid:0", "xdm-metadata-invalid"),
    ],
)
def test_metadata_that_does_not_match_the_archive_is_refused(old, new, code):
    data = _edit_metadata(write_xdm(SUBMISSION), lambda m: m.replace(old, new, 1))
    assert code_of(data) == code


def test_metadata_of_another_ebrim_request_is_refused():
    data = _edit_metadata(
        write_xdm(SUBMISSION), lambda m: m.replace(b"SubmitObjectsRequest", b"RemoveObjectsRequest")
    )
    assert code_of(data) == "xdm-metadata-invalid"


def test_a_submission_without_documents_is_refused_both_ways():
    with pytest.raises(InvalidMessage) as caught:
        write_xdm(replace(SUBMISSION, documents=()))
    assert caught.value.code == "xdm-no-documents"
    only_metadata = _zip(("IHE_XDM/SUBSET01/METADATA.XML", _metadata_without_documents()))
    assert code_of(only_metadata) == "xdm-no-documents"


def _metadata_without_documents() -> bytes:
    with zipfile.ZipFile(io.BytesIO(write_xdm(SUBMISSION))) as archive:
        metadata = archive.read("IHE_XDM/SUBSET01/METADATA.XML")
    start = metadata.index(b"<rim:ExtrinsicObject")
    end = metadata.rindex(b"</rim:ExtrinsicObject>") + len(b"</rim:ExtrinsicObject>")
    return metadata[:start] + metadata[end:]

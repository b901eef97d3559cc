from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from messaging.cda import parse_hl7_time, read_cda
from messaging.errors import InvalidMessage
from messaging.healthid import INS_NIA_OID, INS_NIR_OID, INS_NIR_TEST_OID
from messaging.ins import Ins, QualifiedIdentity, Sex, nir_key
from tests.messaging.kinds.samples import JEANNE, cda


def code_of(data: bytes, *, allow_test_ins: bool = False) -> str:
    with pytest.raises(InvalidMessage) as caught:
        read_cda(data, allow_test_ins=allow_test_ins)
    return caught.value.code


def test_the_header_fields_are_read():
    document = read_cda(cda())
    assert document.document_id == "1.2.250.1.999.1^DOC-1"
    assert (document.code, document.code_system) == ("11488-4", "2.16.840.1.113883.6.1")
    assert document.title == "Compte rendu de consultation"
    assert document.effective_time == datetime(
        2026, 11, 22, 10, 30, tzinfo=timezone(timedelta(hours=1))
    )
    patient = document.patient
    assert (patient.ins, patient.ins_oid) == (JEANNE.ins, INS_NIR_OID)
    assert (patient.birth_name, patient.first_given_name) == ("DUPONT", "Jeanne")
    assert (patient.birth_date, patient.sex) == (date(1980, 3, 1), "F")


def test_a_local_patient_number_beside_no_ins_gives_no_ins():
    assert read_cda(cda(with_ins=False)).patient.ins is None


def test_a_nia_is_read_under_its_own_oid():
    nia = Ins("7800375123456", nir_key("7800375123456"))
    person = QualifiedIdentity(nia, "X", "Y", date(1980, 3, 1), Sex.MALE)
    assert read_cda(cda(person, ins_oid=INS_NIA_OID)).patient.ins == nia
    assert code_of(cda(person, ins_oid=INS_NIR_OID)) == "ins-oid"


def test_test_oids_need_permission():
    data = cda(ins_oid=INS_NIR_TEST_OID)
    assert code_of(data) == "ins-oid"
    assert read_cda(data, allow_test_ins=True).patient.ins_oid == INS_NIR_TEST_OID


@pytest.mark.parametrize(
    ("edit", "code"),
    [
        ((b'<id root="1.2.250.1.999.1" extension="DOC-1"/>', b""), "cda-missing-id"),
        ((b'<effectiveTime value="20261122103000+0100"/>', b""), "cda-missing-effective-time"),
        ((b'value="20261122103000+0100"', b'value="2026-11-22"'), "cda-bad-time"),
        ((b'<birthTime value="19800301"/>', b'<birthTime value="19801301"/>'), "cda-bad-time"),
        ((b'code="11488-4"', b'code="1,2"'), "cda-missing-code"),
        ((b"<patientRole>", b"<patientRolf>"), "xml-malformed"),
    ],
)
def test_malformed_headers_are_refused_with_their_code(edit, code):
    old, new = edit
    data = cda()
    assert old in data
    assert code_of(data.replace(old, new)) == code


def test_a_record_target_without_patient_role_is_refused():
    data = cda().replace(b"<patientRole>", b"<x>").replace(b"</patientRole>", b"</x>")
    assert code_of(data) == "cda-missing-patient"
    assert code_of(cda(patient=None)) == "cda-missing-patient"


def test_two_ins_for_one_patient_are_refused():
    other = str(Ins("1750775123456", nir_key("1750775123456")))
    data = (
        cda()
        .replace(b"</patientRole>", b"")
        .replace(b"<patient>", f'<id root="{INS_NIR_OID}" extension="{other}"/><patient>'.encode())
    )
    assert code_of(data.replace(b"</recordTarget>", b"</patientRole></recordTarget>")) == (
        "cda-multiple-patients"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026", datetime(2026, 1, 1)),
        ("202611", datetime(2026, 11, 1)),
        ("20261122", datetime(2026, 11, 22)),
        ("202611221030", datetime(2026, 11, 22, 10, 30)),
        ("20261122103005.123", datetime(2026, 11, 22, 10, 30, 5)),
        ("20261122103005+0000", datetime(2026, 11, 22, 10, 30, 5, tzinfo=UTC)),
        (
            "20261122103005-0230",
            datetime(2026, 11, 22, 10, 30, 5, tzinfo=timezone(-timedelta(hours=2, minutes=30))),
        ),
    ],
)
def test_hl7_times_of_every_precision_are_read(text, expected):
    assert parse_hl7_time(text) == expected


@pytest.mark.parametrize(
    "text", ["", "26", "2026-11-22", "20261322", "20261122T10", "2026112210300"]
)
def test_invalid_hl7_times_are_refused(text):
    with pytest.raises(ValueError, match="TS|month|day|hour|minute|second"):
        parse_hl7_time(text)

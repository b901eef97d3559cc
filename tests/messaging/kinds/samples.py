"""Sample identities, PDFs and CDA documents for the tests of typed health messages."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime
from xml.sax.saxutils import escape, quoteattr

from messaging.healthid import INS_NIR_OID
from messaging.ins import Ins, QualifiedIdentity, Sex, nir_key
from messaging.types import Address

DATE = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
SENDER = Address.parse("sophie.martin@medecin.pli.test")
HOSPITAL_APP = Address.parse("labo-resultats@ch-exemple.pli.test")


def ins(nir: str) -> Ins:
    return Ins(nir, nir_key(nir))


# A woman born in March 1980 in department 75; a man born in July 1975 in Corsica (2B).
JEANNE = QualifiedIdentity(ins("2800375123456"), "DUPONT", "Jeanne", date(1980, 3, 1), Sex.FEMALE)
PAUL = QualifiedIdentity(ins("175072B123456"), "LÉGER", "Paul-Émile", date(1975, 7, 14), Sex.MALE)
PATIENT_ADDRESS = Address.parse(f"{JEANNE.ins}@patient.pli.test")


def pdf(text: str = "Compte rendu") -> bytes:
    """A small, well-formed one-page PDF (what libmagic and PDF readers both accept)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    ).encode()
    return bytes(out)


def cda(
    patient: QualifiedIdentity | None = JEANNE,
    *,
    code: str = "11488-4",
    doc_id: str = "DOC-1",
    ins_value: str | None = None,
    ins_oid: str = INS_NIR_OID,
    body: bytes | None = None,
    extra_patients: int = 0,
    effective_time: str = "20261122103000+0100",
    with_ins: bool = True,
) -> bytes:
    """An HL7 CDA R2 document (French CI-SIS header shape) with a PDF body."""
    target = ""
    if patient is not None:
        value = ins_value if ins_value is not None else str(patient.ins)
        ins_id = f"<id root={quoteattr(ins_oid)} extension={quoteattr(value)}/>"
        target = (
            "<recordTarget><patientRole>"
            '<id root="1.2.250.1.999.9" extension="IPP-42"/>'
            f"{ins_id if with_ins else ''}"
            "<patient><name>"
            f"<given>{escape(patient.first_given_name)}</given>"
            f'<family qualifier="BR">{escape(patient.birth_name)}</family>'
            "</name>"
            f'<administrativeGenderCode code="{patient.sex.value}" '
            'codeSystem="2.16.840.1.113883.5.1"/>'
            f'<birthTime value="{patient.birth_date.strftime("%Y%m%d")}"/>'
            "</patient></patientRole></recordTarget>"
        )
    target *= 1 + extra_patients
    embedded = base64.b64encode(body or pdf()).decode()
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<ClinicalDocument xmlns="urn:hl7-org:v3">'
        '<typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>'
        f'<id root="1.2.250.1.999.1" extension={quoteattr(doc_id)}/>'
        f'<code code={quoteattr(code)} codeSystem="2.16.840.1.113883.6.1" '
        'displayName="Compte rendu de consultation"/>'
        "<title>Compte rendu de consultation</title>"
        f'<effectiveTime value="{effective_time}"/>'
        '<confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/>'
        f"{target}"
        '<component><nonXMLBody><text mediaType="application/pdf" representation="B64">'
        f"{embedded}</text></nonXMLBody></component>"
        "</ClinicalDocument>\n"
    ).encode()

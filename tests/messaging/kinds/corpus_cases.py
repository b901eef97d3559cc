"""The negative corpus: hostile or broken inputs, each with the reader and the code it must get.

``make_corpus.py`` writes every case to ``corpus/<name>``; ``test_negative_corpus.py`` reads
the files back (and rebuilds the cases in memory) and checks each refusal code. Everything is
built from fixed inputs and a fixed, test-only signing key.
"""

from __future__ import annotations

import base64
import email.policy
import io
import json
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from email.message import EmailMessage

import crypto
from messaging.agenda import ReceivedAppointment, check_appointment, derive_agenda
from messaging.cda import read_cda
from messaging.errors import RuleViolation
from messaging.healthid import INS_NIR_OID
from messaging.kinds import appointment as appointment_kind
from messaging.kinds import certificate as cert_kind
from messaging.kinds import consent as consent_kind
from messaging.kinds import document as doc_kind
from messaging.kinds import prescription as rx_kind
from messaging.kinds.issuer import Issuer, check_prescriber
from messaging.mime import KIND_HEADER, NIL_HEADER
from messaging.types import Address, MailboxKind
from messaging.xdm import (
    PatientTraits,
    Restriction,
    XdmDocument,
    XdmSubmission,
    patient_cx,
    read_xdm,
    write_xdm,
)
from messaging.ziputil import read_zip
from tests.messaging.kinds.samples import (
    DATE,
    JEANNE,
    PATIENT_ADDRESS,
    PAUL,
    SENDER,
    cda,
    ins,
    pdf,
)

CORPUS_KEY = crypto.SigningKey(bytes(range(32)))
"""A fixed, test-only key: the corpus files are signed with it."""

DOCTOR = Issuer("10003578209", "Dr Sophie MARTIN", "10", "Médecine générale")
PRESCRIPTION = rx_kind.PrescriptionMessage(
    SENDER,
    (PATIENT_ADDRESS,),
    rx_kind.Prescription(
        DOCTOR,
        JEANNE,
        date(2026, 11, 22),
        (rx_kind.MedicationLine("Amoxicilline 1 g", "1 comprimé matin et soir", "7 jours"),),
        reference="urn:uuid:00000000-0000-4000-8000-000000000001",
    ),
)
CERTIFICATE = cert_kind.CertificateMessage(
    SENDER,
    (PATIENT_ADDRESS,),
    cert_kind.Certificate(
        DOCTOR,
        JEANNE,
        date(2026, 11, 22),
        "Non contre-indication au sport",
        "Je certifie avoir examiné la patiente ce jour.",
        reference="urn:uuid:00000000-0000-4000-8000-000000000002",
    ),
)


@dataclass(frozen=True)
class Case:
    name: str
    reader: str
    code: str
    build: Callable[[], bytes]
    why: str


# --- zip archives ---------------------------------------------------------------------------


def _zip(*entries: tuple[zipfile.ZipInfo | str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def _symlink(name: str, target: bytes) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target


def zip_duplicate() -> bytes:
    # zipfile warns about the duplicate it is asked to write: that is the point here.
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _zip(("README.TXT", b"one"), ("readme.txt", b"two"))


# --- XML -------------------------------------------------------------------------------------

BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE ClinicalDocument [\n <!ENTITY lol "lol">\n'
    + b"".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'.encode()
        for i in range(1, 10)
    )
    + b']>\n<ClinicalDocument xmlns="urn:hl7-org:v3">&lol9;</ClinicalDocument>\n'
)
XXE = (
    b'<?xml version="1.0"?>\n<!DOCTYPE ClinicalDocument [\n'
    b' <!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>\n'
    b'<ClinicalDocument xmlns="urn:hl7-org:v3"><title>&xxe;</title></ClinicalDocument>\n'
)
EXTERNAL_DTD = (
    b'<?xml version="1.0"?>\n<!DOCTYPE ClinicalDocument SYSTEM "http://evil.example/cda.dtd">\n'
    b'<ClinicalDocument xmlns="urn:hl7-org:v3"/>\n'
)
DEEP = (
    b'<?xml version="1.0"?>\n<ClinicalDocument xmlns="urn:hl7-org:v3">'
    + b"<section>" * 500
    + b"</section>" * 500
    + b"</ClinicalDocument>\n"
)


def cda_without_code() -> bytes:
    return cda().replace(b'<code code="11488-4"', b'<code nullFlavor="NI"')


def cda_malformed() -> bytes:
    return cda().replace(b"</title>", b"</titel>")


def cda_not_cda() -> bytes:
    return b'<?xml version="1.0"?>\n<Invoice xmlns="urn:example:billing"><id root="1"/></Invoice>\n'


def bad_key(value: str) -> str:
    return value[:13] + f"{(int(value[13:]) + 1) % 100:02d}"


# --- XDM archives ------------------------------------------------------------------------------


def _submission(*documents: XdmDocument, patient: str = str(JEANNE.ins)) -> XdmSubmission:
    return XdmSubmission(
        patient=ins(patient[:13]),
        patient_oid=INS_NIR_OID,
        documents=documents,
        unique_id="2.25.1234",
        source_id="2.25.42",
        submission_time=DATE,
        traits=PatientTraits(
            JEANNE.birth_name, JEANNE.first_given_name, JEANNE.birth_date, JEANNE.sex.value
        ),
        author_address=str(SENDER),
        recipients=(str(PATIENT_ADDRESS),),
        title="Compte rendu",
    )


def _pdf_entry(number: int = 1, data: bytes | None = None) -> XdmDocument:
    return XdmDocument(
        filename=f"DOC000{number}.PDF",
        data=data or pdf(f"document {number}"),
        mime_type="application/pdf",
        unique_id=f"2.25.{number}",
        title=f"Document {number}",
        type_code="11488-4",
        service_date=date(2026, 11, 20),
    )


def _cda_entry(data: bytes, number: int = 1) -> XdmDocument:
    return XdmDocument(
        filename=f"DOC000{number}.XML",
        data=data,
        mime_type="text/xml",
        unique_id="1.2.250.1.999.1^DOC-1",
        title="Compte rendu de consultation",
        type_code="11488-4",
        service_date=date(2026, 11, 20),
    )


def _edit_metadata(archive: bytes, edit: Callable[[bytes], bytes]) -> bytes:
    with zipfile.ZipFile(io.BytesIO(archive)) as source:
        entries = [(info.filename, source.read(info)) for info in source.infolist()]
    return _zip(*[(n, edit(d) if n.endswith("METADATA.XML") else d) for n, d in entries])


def _rename_subset(archive: bytes, subset: str) -> bytes:
    with zipfile.ZipFile(io.BytesIO(archive)) as source:
        entries = [(info.filename, source.read(info)) for info in source.infolist()]
    return _zip(*[(n.replace("/SUBSET01/", f"/{subset}/"), d) for n, d in entries])


def xdm_two_patients() -> bytes:
    archive = write_xdm(_submission(_pdf_entry(1), _pdf_entry(2)))
    jeanne = patient_cx(JEANNE.ins, INS_NIR_OID).replace("&", "&amp;").encode()
    paul = patient_cx(PAUL.ins, INS_NIR_OID).replace("&", "&amp;").encode()

    def edit(metadata: bytes) -> bytes:
        # The last occurrence is the second document's XDSDocumentEntry.patientId.
        head, _, tail = metadata.rpartition(jeanne)
        return head + paul + tail

    return _edit_metadata(archive, edit)


def xdm_patient_id(value: str) -> bytes:
    archive = write_xdm(_submission(_pdf_entry(1)))
    jeanne = patient_cx(JEANNE.ins, INS_NIR_OID).replace("&", "&amp;").encode()
    return _edit_metadata(archive, lambda m: m.replace(jeanne, value.encode()))


def xdm_hash_mismatch() -> bytes:
    archive = write_xdm(_submission(_pdf_entry(1)))
    with zipfile.ZipFile(io.BytesIO(archive)) as source:
        entries = [(info.filename, source.read(info)) for info in source.infolist()]
    swapped = pdf("another document")
    return _zip(*[(n, swapped if n.endswith(".PDF") else d) for n, d in entries])


def xdm_metadata_bomb() -> bytes:
    archive = write_xdm(_submission(_pdf_entry(1)))
    return _edit_metadata(archive, lambda _m: BILLION_LAUGHS)


# --- document messages -----------------------------------------------------------------------


def mail(
    files: list[tuple[str, bytes, str]],
    *,
    subject: str = "XDM/1.0/DDM+Compte rendu DUPONT Jeanne 01/03/1980",
    headers: tuple[tuple[str, str], ...] = (),
    kind: str = "",
    structured: tuple[str, bytes] | None = None,
) -> bytes:
    """A message as another operator's client could send it (no structured part unless asked)."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = str(SENDER)
    msg["To"] = str(PATIENT_ADDRESS)
    msg["Subject"] = subject
    msg["Date"] = "Sun, 22 Nov 2026 10:30:00 +0000"
    msg["Message-ID"] = "<corpus@pli.test>"
    msg[NIL_HEADER] = "Corpus/1"
    if kind:
        msg[KIND_HEADER] = kind
    for name, value in headers:
        msg[name] = value
    msg.set_content("Bonjour,\n", cte="quoted-printable")
    if structured is not None:
        maintype, _, subtype = structured[0].partition("/")
        msg.add_attachment(
            structured[1],
            maintype=maintype,
            subtype=subtype,
            filename="pli.json",
            params={"version": "1"},
        )
    for filename, data, content_type in files:
        maintype, _, subtype = content_type.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def _xdm_mail(archive: bytes, pdfs: list[bytes], **kw: object) -> bytes:
    files = [("IHE_XDM.ZIP", archive, "application/zip")]
    files += [
        (f"20261120_CR_DUPONT_Jeanne_{i}.pdf", p, "application/pdf") for i, p in enumerate(pdfs)
    ]
    return mail(files, **kw)  # type: ignore[arg-type]


def document_pdf_named_xml() -> bytes:
    fake = pdf("not a CDA")
    return _xdm_mail(write_xdm(_submission(_cda_entry(fake))), [pdf()])


def document_fake_pdf() -> bytes:
    archive_pdf = pdf()
    files = [
        ("IHE_XDM.ZIP", write_xdm(_submission(_pdf_entry(1, archive_pdf))), "application/zip"),
        ("20261120_CR_DUPONT_Jeanne.pdf", b"This is plain text, not a PDF.\n", "application/pdf"),
    ]
    return mail(files)


def document_two_patients() -> bytes:
    return _xdm_mail(write_xdm(_submission(_cda_entry(cda(PAUL)))), [pdf()])


def good_document(**changes: object) -> doc_kind.DocumentMessage:
    message = doc_kind.DocumentMessage(
        SENDER,
        (PATIENT_ADDRESS,),
        JEANNE,
        (
            doc_kind.HealthDocument(
                "Compte rendu de consultation",
                "11488-4",
                pdf(),
                date(2026, 11, 20),
                cda=cda(),
                restrictions=frozenset({Restriction.INVISIBLE_REP_LEGAUX}),
            ),
        ),
    )
    return replace(message, **changes)  # type: ignore[arg-type]


def good_document_bytes() -> bytes:
    return doc_kind.build_document(good_document(), message_id="<doc@pli.test>", date=DATE)


def document_header_lie() -> bytes:
    raw = good_document_bytes()
    return raw.replace(b"X-MSS-CODECDA: 11488-4", b"X-MSS-CODECDA: 34133-9", 1)


def document_structured_lie() -> bytes:
    """The structured part drops the restriction that the archive carries."""
    raw = good_document_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    for part in parsed.iter_attachments():
        if part.get_content_type() == doc_kind.STRUCTURED_TYPE:
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            data = json.loads(payload)
            data["documents"][0]["restrictions"] = []
            part.set_payload(base64.encodebytes(json.dumps(data).encode()).decode())
    return parsed.as_bytes(policy=email.policy.SMTP)


def document_without_xdm() -> bytes:
    return mail([("20261120_CR_DUPONT_Jeanne.pdf", pdf(), "application/pdf")])


# --- signed kinds --------------------------------------------------------------------------


def _structured_of(
    raw: bytes, content_type: str
) -> tuple[EmailMessage, EmailMessage, dict[str, object]]:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    for part in parsed.iter_attachments():
        if part.get_content_type() == content_type:
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return parsed, part, json.loads(payload)
    raise AssertionError("no structured part")


def _with_structured(
    raw: bytes, content_type: str, edit: Callable[[dict[str, object]], None]
) -> bytes:
    parsed, part, data = _structured_of(raw, content_type)
    edit(data)
    part.set_payload(base64.encodebytes(json.dumps(data).encode()).decode())
    return parsed.as_bytes(policy=email.policy.SMTP)


def _resign(data: dict[str, object], kind: str) -> None:
    from messaging.kinds.issuer import signed_bytes
    from messaging.types import MessageKind

    content = data["content"]
    assert isinstance(content, dict)
    signature = CORPUS_KEY.sign(signed_bytes(MessageKind(kind), content))
    data["signature"] = {
        "algorithm": "Ed25519",
        "value": base64.urlsafe_b64encode(signature).rstrip(b"=").decode(),
    }


def prescription_bytes() -> bytes:
    return rx_kind.build_prescription(
        PRESCRIPTION, CORPUS_KEY, message_id="<rx@pli.test>", date=DATE
    )


def certificate_bytes() -> bytes:
    return cert_kind.build_certificate(
        CERTIFICATE, CORPUS_KEY, message_id="<cert@pli.test>", date=DATE
    )


def _content(data: dict[str, object]) -> dict[str, object]:
    content = data["content"]
    assert isinstance(content, dict)
    return content


def prescription_forged() -> bytes:
    """Someone changed the dosage after the prescriber signed."""

    def edit(data: dict[str, object]) -> None:
        items = _content(data)["items"]
        assert isinstance(items, list)
        items[0]["dosage"] = "3 comprimés matin, midi et soir"

    return _with_structured(prescription_bytes(), rx_kind.STRUCTURED_TYPE, edit)


def _drop(data: dict[str, object], key: str) -> None:
    del data[key]


def prescription_unsigned() -> bytes:
    return _with_structured(
        prescription_bytes(), rx_kind.STRUCTURED_TYPE, lambda d: _drop(d, "signature")
    )


def prescription_without_items() -> bytes:
    def edit(data: dict[str, object]) -> None:
        _content(data)["items"] = []
        _resign(data, "prescription")

    return _with_structured(prescription_bytes(), rx_kind.STRUCTURED_TYPE, edit)


def prescription_without_rpps() -> bytes:
    def edit(data: dict[str, object]) -> None:
        prescriber = _content(data)["prescriber"]
        assert isinstance(prescriber, dict)
        prescriber["rpps"] = ""
        _resign(data, "prescription")

    return _with_structured(prescription_bytes(), rx_kind.STRUCTURED_TYPE, edit)


def prescription_bad_rpps() -> bytes:
    def edit(data: dict[str, object]) -> None:
        prescriber = _content(data)["prescriber"]
        assert isinstance(prescriber, dict)
        prescriber["rpps"] = "10003578208"  # the Luhn key of 1000357820 is 9
        _resign(data, "prescription")

    return _with_structured(prescription_bytes(), rx_kind.STRUCTURED_TYPE, edit)


def prescription_bad_ins_key() -> bytes:
    def edit(data: dict[str, object]) -> None:
        patient = _content(data)["patient"]
        assert isinstance(patient, dict)
        patient["ins"] = bad_key(str(JEANNE.ins))
        _resign(data, "prescription")

    return _with_structured(prescription_bytes(), rx_kind.STRUCTURED_TYPE, edit)


def prescription_text_altered() -> bytes:
    raw = prescription_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    body = parsed.get_body(preferencelist=("plain",))
    assert isinstance(body, EmailMessage)
    text = body.get_content().replace("7 jours", "30 jours")
    body.set_content(text, cte="quoted-printable", headers=["Content-Language: fr"])
    return parsed.as_bytes(policy=email.policy.SMTP)


def certificate_without_statement() -> bytes:
    def edit(data: dict[str, object]) -> None:
        del _content(data)["statement"]
        _resign(data, "certificate")

    return _with_structured(certificate_bytes(), cert_kind.STRUCTURED_TYPE, edit)


def certificate_forged() -> bytes:
    def edit(data: dict[str, object]) -> None:
        _content(data)["valid_until"] = "2030-01-01"

    return _with_structured(certificate_bytes(), cert_kind.STRUCTURED_TYPE, edit)


CORPUS_PATIENT_KEY = crypto.SigningKey(bytes(range(32, 64)))
"""The patient's fixed, test-only key: consent answers in the corpus are judged against it."""
CONSENT_DOCTOR = Address.parse("sophie.martin@medecin.pli.test")
CONSENT_REQUEST = consent_kind.ConsentRequest(
    "req-corpus-1",
    CONSENT_DOCTOR,
    PATIENT_ADDRESS,
    consent_kind.Scope.record(),
    "Suivi cardiologique",
    30,
    datetime(2026, 11, 22, 9, 0, tzinfo=UTC),
)


def consent_response_unsigned() -> bytes:
    """Every field of a grant, and no signature: a client that forgot to sign."""
    answer = consent_kind.answer(
        CONSENT_REQUEST,
        consent_kind.Decision.GRANT,
        CORPUS_PATIENT_KEY,
        datetime(2026, 11, 22, 10, 0, tzinfo=UTC),
        response_id="resp-corpus-1",
    )
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = str(PATIENT_ADDRESS)
    msg["To"] = str(CONSENT_DOCTOR)
    msg["Subject"] = "Consentement accepté"
    msg["Message-ID"] = "<consent@pli.test>"
    msg[KIND_HEADER] = "consent-response"
    msg.set_content("J'accepte votre demande.")
    msg.add_attachment(
        consent_kind.canonical_json(answer.signed_body()),
        maintype="application",
        subtype="vnd.pli.consent-response+json",
        params={"version": "1"},
    )
    return msg.as_bytes()


def consent_response_forged() -> bytes:
    """A grant signed by a key that is not the patient's."""
    forger = crypto.SigningKey(bytes(range(64, 96)))
    answer = consent_kind.answer(
        CONSENT_REQUEST,
        consent_kind.Decision.GRANT,
        forger,
        datetime(2026, 11, 22, 10, 0, tzinfo=UTC),
        response_id="resp-corpus-2",
    )
    return consent_kind.build_response(answer, message_id="<consent2@pli.test>")


APPOINTMENT_ORGANIZER = Address.parse("sophie.martin@medecin.pli.test")


def appointment_reply_unknown_uid() -> bytes:
    """The patient answers an invitation the doctor never sent."""
    stray = appointment_kind.new_request(
        uid="never-sent@pli.test",
        organizer=APPOINTMENT_ORGANIZER,
        attendees=[PATIENT_ADDRESS],
        start=datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
        end=datetime(2026, 12, 1, 10, 0, tzinfo=UTC),
        summary="Consultation",
        dtstamp=datetime(2026, 11, 22, 9, 0, tzinfo=UTC),
    )
    reply = appointment_kind.reply_to(
        stray,
        PATIENT_ADDRESS,
        appointment_kind.PartStat.ACCEPTED,
        dtstamp=datetime(2026, 11, 22, 9, 5, tzinfo=UTC),
    )
    return appointment_kind.build_appointment(
        reply, message_id="<reply@pli.test>", date=datetime(2026, 11, 22, 9, 5, tzinfo=UTC)
    )


def _read_reply_to_organizer(raw: bytes) -> object:
    """What the organizer's mailbox does with an incoming answer: check it against the
    agenda derived from what it sent (here: nothing)."""
    appointment = appointment_kind.parse_appointment(raw)
    received = ReceivedAppointment(PATIENT_ADDRESS, appointment, "<reply@pli.test>")
    check_appointment(derive_agenda([], owner=APPOINTMENT_ORGANIZER), received)
    return appointment


NURSE = Issuer("10003578209", "Claire PETIT", "60", "Infirmier")


def prescription_from_nurse() -> bytes:
    """A well-formed, signed prescription whose issuer is a nurse (profession 60)."""
    message = replace(
        PRESCRIPTION, prescription=replace(PRESCRIPTION.prescription, prescriber=NURSE)
    )
    return rx_kind.build_prescription(message, CORPUS_KEY, message_id="<rx-n@pli.test>", date=DATE)


def _read_prescription_from_per(raw: bytes) -> object:
    """What delivery does with a prescription from a PER mailbox: read it, then check that
    its issuer's profession may prescribe."""
    message = rx_kind.parse_prescription(raw, CORPUS_KEY.public)
    refused = check_prescriber(
        MailboxKind.PER, message.prescription.prescriber.profession_code, False
    )
    if refused:
        raise RuleViolation(refused[0].code, refused[0].reason)
    return message


def _read_cda(raw: bytes) -> object:
    return read_cda(raw)


READERS: dict[str, Callable[[bytes], object]] = {
    "cda": _read_cda,
    "zip": read_zip,
    "xdm": read_xdm,
    "document": doc_kind.parse_document,
    "prescription": lambda raw: rx_kind.parse_prescription(raw, CORPUS_KEY.public),
    "certificate": lambda raw: cert_kind.parse_certificate(raw, CORPUS_KEY.public),
    "consent-response": lambda raw: consent_kind.parse_response(raw, [CORPUS_PATIENT_KEY.public]),
    "appointment-reply": _read_reply_to_organizer,
    "prescription-from-per": _read_prescription_from_per,
}
"""How each corpus file is read: the function that must refuse it."""

CASES: tuple[Case, ...] = (
    # CDA R2 read on its own
    Case("cda-malformed.xml", "cda", "xml-malformed", cda_malformed, "mismatched tags"),
    Case("cda-not-cda.xml", "cda", "cda-not-cda", cda_not_cda, "well-formed XML, not a CDA"),
    Case("cda-missing-code.xml", "cda", "cda-missing-code", cda_without_code, "no code/@code"),
    Case("cda-billion-laughs.xml", "cda", "xml-entity", lambda: BILLION_LAUGHS, "entity bomb"),
    Case("cda-xxe.xml", "cda", "xml-external-entity", lambda: XXE, "external entity"),
    Case("cda-external-dtd.xml", "cda", "xml-external-entity", lambda: EXTERNAL_DTD, "remote DTD"),
    Case("cda-deep.xml", "cda", "xml-too-deep", lambda: DEEP, "500 nested elements"),
    Case("cda-pdf-renamed.xml", "cda", "content-not-xml", pdf, "a PDF named .xml"),
    Case(
        "cda-two-patients.xml",
        "cda",
        "cda-multiple-patients",
        lambda: cda(extra_patients=1),
        "two recordTarget",
    ),
    Case(
        "cda-bad-ins-key.xml",
        "cda",
        "ins-key",
        lambda: cda(ins_value=bad_key(str(JEANNE.ins))),
        "INS with a wrong key",
    ),
    Case("cda-missing-ins.xml", "cda", "ins-missing", lambda: cda(ins_value=""), "empty INS"),
    # zip archives
    Case("zip-bomb.zip", "zip", "zip-bomb", lambda: _zip(("a.xml", b"\0" * (10 << 20))), "1000:1"),
    Case(
        "zip-traversal.zip",
        "zip",
        "zip-path-traversal",
        lambda: _zip(("IHE_XDM/../../etc/cron.d/x", b"x")),
        "'..' in a name",
    ),
    Case("zip-absolute.zip", "zip", "zip-path-traversal", lambda: _zip(("/etc/x", b"x")), "abs."),
    Case(
        "zip-backslash.zip",
        "zip",
        "zip-path-traversal",
        lambda: _zip(("IHE_XDM\\..\\x", b"x")),
        "backslash",
    ),
    Case(
        "zip-drive.zip", "zip", "zip-path-traversal", lambda: _zip(("C:/x", b"x")), "drive letter"
    ),
    Case(
        "zip-symlink.zip",
        "zip",
        "zip-symlink",
        lambda: _zip(_symlink("IHE_XDM/SUBSET01/DOC0001.XML", b"/etc/passwd")),
        "symlink entry",
    ),
    Case("zip-duplicate.zip", "zip", "zip-duplicate-entry", zip_duplicate, "same name twice"),
    Case(
        "zip-too-many.zip",
        "zip",
        "zip-too-many-entries",
        lambda: _zip(*[(f"f{i}", b"") for i in range(300)]),
        "300 entries",
    ),
    Case("zip-not-zip.zip", "zip", "zip-not-zip", pdf, "a PDF named .zip"),
    # XDM archives
    Case("xdm-two-patients.zip", "xdm", "xdm-multiple-patients", xdm_two_patients, "2 INS"),
    Case("xdm-missing-ins.zip", "xdm", "ins-missing", lambda: xdm_patient_id(""), "no patientId"),
    Case(
        "xdm-bad-ins-key.zip",
        "xdm",
        "ins-key",
        lambda: xdm_patient_id(
            patient_cx(JEANNE.ins, INS_NIR_OID)
            .replace(str(JEANNE.ins), bad_key(str(JEANNE.ins)))
            .replace("&", "&amp;")
        ),
        "INS with a wrong key",
    ),
    Case(
        "xdm-not-ins.zip",
        "xdm",
        "ins-oid",
        lambda: xdm_patient_id(f"{JEANNE.ins}^^^&amp;1.2.250.1.999&amp;ISO^PI"),
        "a local id instead of the INS",
    ),
    Case("xdm-hash-mismatch.zip", "xdm", "xdm-hash-mismatch", xdm_hash_mismatch, "swapped doc"),
    Case(
        "xdm-no-metadata.zip",
        "xdm",
        "xdm-missing-metadata",
        lambda: _zip(("README.TXT", b"x")),
        "no METADATA.XML",
    ),
    Case("xdm-metadata-bomb.zip", "xdm", "xml-entity", xdm_metadata_bomb, "bomb in metadata"),
    Case(
        "xdm-two-subsets.zip",
        "xdm",
        "xdm-multiple-subsets",
        lambda: _zip(
            ("IHE_XDM/SUBSET01/METADATA.XML", b"<a/>"), ("IHE_XDM/SUBSET02/METADATA.XML", b"<a/>")
        ),
        "two submissions",
    ),
    # document messages
    Case(
        "document-pdf-named-xml.eml",
        "document",
        "content-not-xml",
        document_pdf_named_xml,
        "a PDF declared text/xml in the archive",
    ),
    Case(
        "document-fake-pdf.eml",
        "document",
        "content-not-pdf",
        document_fake_pdf,
        "a text file named .pdf",
    ),
    Case(
        "document-two-patients.eml",
        "document",
        "xdm-multiple-patients",
        document_two_patients,
        "the CDA is about another patient than the archive",
    ),
    Case(
        "document-cda-bomb.eml",
        "document",
        "xml-entity",
        lambda: _xdm_mail(write_xdm(_submission(_cda_entry(BILLION_LAUGHS))), [pdf()]),
        "billion laughs inside the archive",
    ),
    Case(
        "document-zip-bomb.eml",
        "document",
        "zip-bomb",
        lambda: _xdm_mail(_zip(("IHE_XDM/SUBSET01/DOC0001.XML", b"\0" * (10 << 20))), [pdf()]),
        "zip bomb as IHE_XDM.ZIP",
    ),
    Case(
        "document-traversal.eml",
        "document",
        "zip-path-traversal",
        lambda: _xdm_mail(_zip(("../../INDEX.HTM", b"x")), [pdf()]),
        "path traversal in IHE_XDM.ZIP",
    ),
    Case(
        "document-missing-ins.eml",
        "document",
        "ins-missing",
        lambda: _xdm_mail(xdm_patient_id(""), [pdf("document 1")]),
        "no INS",
    ),
    Case(
        "document-bad-ins-key.eml",
        "document",
        "ins-key",
        lambda: _xdm_mail(
            xdm_patient_id(
                patient_cx(JEANNE.ins, INS_NIR_OID)
                .replace(str(JEANNE.ins), bad_key(str(JEANNE.ins)))
                .replace("&", "&amp;")
            ),
            [pdf("document 1")],
        ),
        "INS with a wrong key",
    ),
    Case(
        "document-header-lie.eml",
        "document",
        "document-header-mismatch",
        document_header_lie,
        "X-MSS-CODECDA names another code",
    ),
    Case(
        "document-structured-lie.eml",
        "document",
        "document-structured-mismatch",
        document_structured_lie,
        "the JSON drops a restriction",
    ),
    Case("document-no-xdm.eml", "document", "xdm-missing", document_without_xdm, "PDF only"),
    Case(
        "document-subset-ss000001-two-patients.eml",
        "document",
        "xdm-multiple-patients",
        lambda: _xdm_mail(_rename_subset(xdm_two_patients(), "SS000001"), [pdf(), pdf("2")]),
        "the refusal does not depend on the subset name",
    ),
    # prescriptions and certificates
    Case(
        "prescription-forged-signature.eml",
        "prescription",
        "signature-invalid",
        prescription_forged,
        "dosage changed after signing",
    ),
    Case(
        "prescription-unsigned.eml",
        "prescription",
        "signature-missing",
        prescription_unsigned,
        "no signature",
    ),
    Case(
        "prescription-no-items.eml",
        "prescription",
        "prescription-field-missing",
        prescription_without_items,
        "signed, without medication lines",
    ),
    Case(
        "prescription-no-rpps.eml",
        "prescription",
        "rpps-missing",
        prescription_without_rpps,
        "signed, without the prescriber's RPPS",
    ),
    Case(
        "prescription-bad-rpps.eml",
        "prescription",
        "rpps-invalid",
        prescription_bad_rpps,
        "signed, RPPS failing its Luhn key",
    ),
    Case(
        "prescription-bad-ins-key.eml",
        "prescription",
        "ins-key",
        prescription_bad_ins_key,
        "signed, patient INS with a wrong key",
    ),
    Case(
        "prescription-text-altered.eml",
        "prescription",
        "text-mismatch",
        prescription_text_altered,
        "readable part says 30 days, signed part 7",
    ),
    Case(
        "certificate-no-statement.eml",
        "certificate",
        "certificate-field-missing",
        certificate_without_statement,
        "signed, without its statement",
    ),
    Case(
        "certificate-forged-signature.eml",
        "certificate",
        "signature-invalid",
        certificate_forged,
        "validity extended after signing",
    ),
    Case(
        "consent-response-unsigned.eml",
        "consent-response",
        "consent-unsigned",
        consent_response_unsigned,
        "a grant without the patient's signature",
    ),
    Case(
        "consent-response-forged.eml",
        "consent-response",
        "consent-forged",
        consent_response_forged,
        "a grant signed by someone else's key",
    ),
    Case(
        "appointment-reply-unknown-uid.eml",
        "appointment-reply",
        "unknown-appointment",
        appointment_reply_unknown_uid,
        "a REPLY to an invitation never sent",
    ),
    Case(
        "prescription-from-nurse.eml",
        "prescription-from-per",
        "prescriber-not-allowed",
        prescription_from_nurse,
        "signed, but a nurse may not issue this prescription",
    ),
)

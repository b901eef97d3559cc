"""``document``: health documents for one patient's record, in the national e-mail format.

Standards: IHE ITI TF-1 §16 / TF-3 §4.3 (XDM on e-mail media, :mod:`messaging.xdm`), HL7 CDA R2
(:mod:`messaging.cda`), RFC 5322 / RFC 2045-2049 (:mod:`messaging.kinds.parts`), and the ANS
references for MSSanté clients (Référentiel socle MSSanté #2: ``XDM/1.0/DDM`` subject,
``X-MSS-CODECDA``, ``X-MSS-INS``, ``X-MSS-NIL``; CI-SIS for metadata and restriction codes).

A document message concerns exactly one patient, identified by a qualified INS. It carries:

- ``text/plain``: a summary in French (default) or English, and the sender's comment;
- ``application/vnd.pli.document+json; version=1``: the structured part (schema in
  ``docs/messages.md``), which repeats what the archive says so that Pli clients need not
  open it, and is checked against it on reading;
- ``IHE_XDM.ZIP`` (``application/zip``): ``INDEX.HTM``, ``README.TXT`` and
  ``IHE_XDM/SUBSET01/METADATA.XML`` with the documents beside it: the CDA when there is one,
  else the PDF itself;
- one readable PDF per document, named ``<date acte>_<type>_<NOM>_<prénom>[_<dossier>].pdf``.

Headers: subject ``XDM/1.0/DDM+<libellé> <NOM> <prénom> <date de naissance>``; with CDA
documents only, ``X-MSS-CODECDA: <code>[,<code>…]`` and ``X-MSS-INS: O|N`` (``O`` when every
CDA names the patient by the INS in its ``recordTarget``); ``X-MSS-NIL``; ``X-Pli-Type:
document``.

Implementation notes (invariants of :func:`parse_document`):

- every attachment is judged by its bytes (libmagic), never by its name or declared type; a
  name only makes the error more precise (``content-not-pdf`` for a ``.pdf`` that is not one);
- the archive is the source of truth: the patient, the documents and their restrictions come
  from ``METADATA.XML`` and the CDA headers; the structured part, when present, must say the
  same thing (``document-structured-mismatch``), and so must the ``X-MSS-*`` headers
  (``document-header-mismatch``). A message from another operator's software (no
  ``X-Pli-Type``, no structured part) is read from the archive alone; a message that declares
  ``X-Pli-Type: document`` must carry its structured part (``structured-missing``);
- one patient: the submission, every document entry, every CDA ``recordTarget`` and every
  set of identity traits must name the same person (``xdm-multiple-patients``).

Refusal codes of this module (others come from the modules above): ``document-empty``,
``document-too-many``, ``document-field-missing``, ``document-field-invalid``,
``document-subject``, ``document-unexpected-attachment``, ``content-not-pdf``,
``content-not-zip``, ``xdm-missing``, ``xdm-multiple``, ``document-unsupported-type``,
``document-pdf-count``, ``document-pdf-mismatch``, ``document-unique-id``,
``cda-code-mismatch``, ``xdm-multiple-patients``, ``ins-traits-missing``,
``ins-traits-mismatch``, ``document-structured-mismatch``, ``document-header-mismatch``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from email.message import Message

from messaging.cda import XML_TYPES, CdaDocument, read_cda
from messaging.content import detect_type
from messaging.errors import InvalidMessage
from messaging.healthid import TEST_INS_OIDS, ins_oid
from messaging.ins import Ins, InvalidINS, QualifiedIdentity, Sex
from messaging.kinds.base import KindSpec
from messaging.kinds.parts import (
    MIME_ERRORS,
    FilePart,
    build_typed_message,
    has_part_type,
    read_typed_message,
)
from messaging.safexml import XmlLimits
from messaging.types import Address, MessageKind
from messaging.xdm import (
    PatientTraits,
    Restriction,
    XdmDocument,
    XdmLimits,
    XdmSubmission,
    read_xdm,
    write_xdm,
)

__all__ = [
    "SPEC",
    "STRUCTURED_TYPE",
    "SCHEMA_VERSION",
    "XDM_FILENAME",
    "SUBJECT_PREFIX",
    "CODECDA_HEADER",
    "INS_HEADER",
    "DEFAULT_SOURCE_ID",
    "Restriction",
    "HealthDocument",
    "DocumentMessage",
    "DocumentLimits",
    "build_document",
    "parse_document",
    "document_subject",
    "pdf_filename",
    "render_text",
]

STRUCTURED_TYPE = "application/vnd.pli.document+json"
SCHEMA_VERSION = 1
XDM_FILENAME = "IHE_XDM.ZIP"
SUBJECT_PREFIX = "XDM/1.0/DDM"
CODECDA_HEADER = "X-MSS-CODECDA"
INS_HEADER = "X-MSS-INS"
DEFAULT_SOURCE_ID = f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, 'urn:pli:xdm-source').int}"
"""XDS ``sourceId`` of Pli's submissions; an operator with a registered OID passes its own."""

_PDF = "application/pdf"
_ZIP = "application/zip"
_STRUCTURED_FILENAME = "pli-document.json"
_PDF_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:pli:pdf-document")
_TOKEN_RE = re.compile(r"[^A-Za-z0-9]+")


@dataclass(frozen=True, slots=True)
class HealthDocument:
    """One health document: a readable PDF and, when the sender has it, its CDA R2.

    ``date`` is the date of the act (``serviceStartTime``). ``unique_id`` is left empty to let
    Pli derive it: the CDA's ``id`` (``root^extension``), or a UUID OID (``2.25.…``) named by
    the PDF's SHA-256, so that the same PDF always has the same XDS ``uniqueId``.
    """

    title: str
    type_code: str
    pdf: bytes
    date: date
    cda: bytes | None = None
    type_label: str = ""
    restrictions: frozenset[Restriction] = frozenset()
    record_number: str = ""
    unique_id: str = ""


@dataclass(frozen=True, slots=True)
class DocumentMessage:
    """A document message: one patient, their documents, who sends them to whom.

    ``test_ins`` writes the test INS OIDs (demonstration platforms); reading sets it when the
    archive used them.
    """

    sender: Address
    recipients: tuple[Address, ...]
    patient: QualifiedIdentity
    documents: tuple[HealthDocument, ...]
    sender_name: str = ""
    comment: str = ""
    test_ins: bool = False


@dataclass(frozen=True, slots=True)
class DocumentLimits:
    """Bounds and switches of :func:`build_document` and :func:`parse_document`."""

    max_message_bytes: int = 25 * 1024 * 1024
    """*Mon espace santé* refuses messages over 25 MB (DOMAIN.md)."""
    max_documents: int = 50
    structured_max_bytes: int = 1024 * 1024
    xdm: XdmLimits = field(default_factory=XdmLimits)
    cda: XmlLimits = field(default_factory=XmlLimits)


# --- names, subject, text ---------------------------------------------------------------


def _token(text: str) -> str:
    # File names stay ASCII: RFC 2231 names are shown badly by some clients and file systems.
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _TOKEN_RE.sub("-", folded).strip("-")


def pdf_filename(patient: QualifiedIdentity, document: HealthDocument) -> str:
    """``<date acte>_<type>_<NOM>_<prénom>[_<dossier>].pdf``, in ASCII."""
    parts = [
        document.date.strftime("%Y%m%d"),
        _token(document.type_label or document.type_code) or "document",
        _token(patient.birth_name).upper() or "X",
        _token(patient.first_given_name) or "X",
    ]
    if _token(document.record_number):
        parts.append(_token(document.record_number))
    return "_".join(parts) + ".pdf"


def _label(message: DocumentMessage) -> str:
    return ", ".join(d.title for d in message.documents)


def document_subject(message: DocumentMessage) -> str:
    """``XDM/1.0/DDM+<libellé> <NOM> <prénom> <date de naissance>``."""
    patient = message.patient
    return (
        f"{SUBJECT_PREFIX}+{_label(message)} {patient.birth_name.upper()} "
        f"{patient.first_given_name} {patient.birth_date.strftime('%d/%m/%Y')}"
    )


def render_text(message: DocumentMessage, lang: str = "fr") -> str:
    """The human-readable part in ``lang`` (``fr`` or ``en``)."""
    patient = message.patient
    name = f"{patient.first_given_name} {patient.birth_name.upper()}"
    count = len(message.documents)
    lines: list[str] = []
    if lang == "fr":
        born = "née" if patient.sex is Sex.FEMALE else "né"
        plural = "s" if count > 1 else ""
        lines.append(
            f"{count} document{plural} de santé pour {name}, {born} le "
            f"{patient.birth_date.strftime('%d/%m/%Y')}."
        )
    else:
        plural = "s" if count > 1 else ""
        lines.append(
            f"{count} health document{plural} for {name}, born {patient.birth_date.isoformat()}."
        )
    lines.append("")
    for document in message.documents:
        kind = document.type_label or document.type_code
        filename = pdf_filename(patient, document)
        if lang == "fr":
            lines.append(
                f"- {document.title} ({kind}), acte du {document.date.strftime('%d/%m/%Y')}"
            )
            lines.append(f"  Fichier : {filename}")
            if document.restrictions:
                labels = ", ".join(r.label_fr for r in sorted(document.restrictions))
                lines.append(f"  Restrictions : {labels}")
        else:
            lines.append(f"- {document.title} ({kind}), dated {document.date.isoformat()}")
            lines.append(f"  File: {filename}")
            if document.restrictions:
                labels = ", ".join(r.label_en for r in sorted(document.restrictions))
                lines.append(f"  Restrictions: {labels}")
    if message.comment:
        lines += ["", message.comment]
    lines.append("")
    if lang == "fr":
        lines.append(
            f"Les documents sont joints au format IHE XDM ({XDM_FILENAME}) et en PDF lisible."
        )
    else:
        lines.append(f"The documents are attached as IHE XDM ({XDM_FILENAME}) and as readable PDF.")
    return "\n".join(lines) + "\n"


# --- checks shared by building and reading ------------------------------------------------


def _pdf_unique_id(pdf: bytes) -> str:
    return f"2.25.{uuid.uuid5(_PDF_ID_NAMESPACE, hashlib.sha256(pdf).hexdigest()).int}"


def _check_pdf(data: bytes, what: str) -> None:
    found = detect_type(data)
    if found != _PDF:
        raise InvalidMessage(f"{what} must be a PDF; its content is {found}", "content-not-pdf")


def _check_same_patient(patient: QualifiedIdentity, cda: CdaDocument, title: str) -> None:
    # The CDA header may name the patient too; it must be the message's patient.
    other = cda.patient
    if other.ins is not None and other.ins != patient.ins:
        raise InvalidMessage(
            f"document {title!r} is about INS {other.ins}, not {patient.ins}",
            "xdm-multiple-patients",
        )
    if other.birth_date is not None and other.birth_date != patient.birth_date:
        raise InvalidMessage(
            f"document {title!r} gives another birth date for its patient", "xdm-multiple-patients"
        )
    if other.sex in ("M", "F") and other.sex != patient.sex.value:
        raise InvalidMessage(
            f"document {title!r} gives another sex for its patient", "xdm-multiple-patients"
        )


def _printable(value: str, what: str, *, required: bool = True) -> None:
    if required and not value.strip():
        raise InvalidMessage(f"the {what} is missing", "document-field-missing")
    if not value.isprintable():
        raise InvalidMessage(f"the {what} has control characters", "document-field-invalid")
    if value != value.strip():
        # XML attribute and HL7 v2 readers trim values: what is sent must be what is read.
        raise InvalidMessage(f"the {what} starts or ends with a space", "document-field-invalid")


def _check_message(message: DocumentMessage, limits: DocumentLimits) -> list[CdaDocument | None]:
    if not message.documents:
        raise InvalidMessage("a document message needs at least one document", "document-empty")
    if len(message.documents) > limits.max_documents:
        raise InvalidMessage(
            f"{len(message.documents)} documents; at most {limits.max_documents} per message",
            "document-too-many",
        )
    if not message.recipients:
        raise InvalidMessage("a document message needs a recipient", "document-field-missing")
    patient = message.patient
    _printable(patient.birth_name, "patient's birth name")
    _printable(patient.first_given_name, "patient's first given name")
    cdas: list[CdaDocument | None] = []
    for document in message.documents:
        _printable(document.title, "document title")
        _printable(document.type_code, "document type code")
        _printable(document.type_label, "document type label", required=False)
        _printable(document.record_number, "record number", required=False)
        if any(c in document.type_code for c in ",^&|~\\"):
            raise InvalidMessage(
                f"type code {document.type_code!r} has a separator character",
                "document-field-invalid",
            )
        for restriction in document.restrictions:
            if not isinstance(restriction, Restriction):
                raise InvalidMessage(
                    f"restriction {restriction!r} is not one of {[r.value for r in Restriction]}",
                    "document-field-invalid",
                )
        _check_pdf(document.pdf, f"the readable PDF of {document.title!r}")
        if document.cda is None:
            cdas.append(None)
            continue
        cda = read_cda(document.cda, limits.cda, allow_test_ins=limits.xdm.allow_test_ins)
        if cda.code != document.type_code:
            raise InvalidMessage(
                f"document {document.title!r} has type {document.type_code} but its CDA code "
                f"is {cda.code}",
                "cda-code-mismatch",
            )
        if document.unique_id and document.unique_id != cda.document_id:
            raise InvalidMessage(
                f"document {document.title!r} has unique id {document.unique_id} but its CDA id "
                f"is {cda.document_id}",
                "document-unique-id",
            )
        _check_same_patient(patient, cda, document.title)
        cdas.append(cda)
    ids = [_full_unique_id(d, c) for d, c in zip(message.documents, cdas, strict=True)]
    if len(set(ids)) != len(ids):
        # XDS: a uniqueId names one document; the same document twice is a sender's mistake.
        raise InvalidMessage("two documents have the same unique id", "document-unique-id")
    return cdas


def _full_unique_id(document: HealthDocument, cda: CdaDocument | None) -> str:
    if cda is not None:
        return cda.document_id
    return document.unique_id or _pdf_unique_id(document.pdf)


def _headers(message: DocumentMessage, cdas: list[CdaDocument | None]) -> list[tuple[str, str]]:
    present = [c for c in cdas if c is not None]
    if not present:
        return []
    codes = list(dict.fromkeys(c.code for c in present))
    qualified = all(c.patient.ins == message.patient.ins for c in present)
    return [(CODECDA_HEADER, ",".join(codes)), (INS_HEADER, "O" if qualified else "N")]


def _structured(
    message: DocumentMessage, cdas: list[CdaDocument | None], xdm: bytes
) -> dict[str, object]:
    patient = message.patient
    return {
        "type": MessageKind.DOCUMENT.value,
        "version": SCHEMA_VERSION,
        "patient": {
            "ins": str(patient.ins),
            "ins_oid": ins_oid(patient.ins, test=message.test_ins),
            "birth_name": patient.birth_name,
            "first_given_name": patient.first_given_name,
            "birth_date": patient.birth_date.isoformat(),
            "sex": patient.sex.value,
        },
        "comment": message.comment,
        "xdm": {
            "filename": XDM_FILENAME,
            "sha256": hashlib.sha256(xdm).hexdigest(),
            "size": len(xdm),
        },
        "documents": [
            {
                "unique_id": _full_unique_id(document, cda),
                "title": document.title,
                "type_code": document.type_code,
                "type_label": document.type_label,
                "date": document.date.isoformat(),
                "restrictions": sorted(r.value for r in document.restrictions),
                "record_number": document.record_number,
                "cda_code": cda.code if cda is not None else None,
                "pdf": {
                    "filename": pdf_filename(patient, document),
                    "sha256": hashlib.sha256(document.pdf).hexdigest(),
                    "size": len(document.pdf),
                },
            }
            for document, cda in zip(message.documents, cdas, strict=True)
        ],
    }


# --- building ------------------------------------------------------------------------------


def _submission(
    message: DocumentMessage,
    cdas: list[CdaDocument | None],
    *,
    message_id: str,
    date: datetime,
    source_id: str,
) -> XdmSubmission:
    patient = message.patient
    documents = []
    for number, (document, cda) in enumerate(zip(message.documents, cdas, strict=True), start=1):
        documents.append(
            XdmDocument(
                # 8.3 names, as XDM media keep ISO 9660 compatibility.
                filename=f"DOC{number:04d}." + ("XML" if document.cda is not None else "PDF"),
                data=document.cda if document.cda is not None else document.pdf,
                mime_type="text/xml" if document.cda is not None else _PDF,
                unique_id=_full_unique_id(document, cda),
                title=document.title,
                type_code=document.type_code,
                type_display=document.type_label,
                service_date=document.date,
                creation_time=date,
                restrictions=frozenset(document.restrictions),
            )
        )
    return XdmSubmission(
        patient=patient.ins,
        patient_oid=ins_oid(patient.ins, test=message.test_ins),
        documents=tuple(documents),
        # Derived from the Message-ID: one message, one submission, same bytes every time.
        unique_id=f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, 'urn:pli:submission:' + message_id).int}",
        source_id=source_id,
        submission_time=date,
        traits=PatientTraits(
            patient.birth_name, patient.first_given_name, patient.birth_date, patient.sex.value
        ),
        author_address=str(message.sender),
        recipients=tuple(str(r) for r in message.recipients),
        title=_label(message),
    )


def build_document(
    message: DocumentMessage,
    *,
    message_id: str,
    date: datetime,
    lang: str = "fr",
    source_id: str = DEFAULT_SOURCE_ID,
    limits: DocumentLimits | None = None,
) -> bytes:
    """The RFC 5322 bytes of ``message``; :class:`InvalidMessage` when it is not acceptable."""
    limits = limits or DocumentLimits()
    cdas = _check_message(message, limits)
    xdm = write_xdm(
        _submission(message, cdas, message_id=message_id, date=date, source_id=source_id)
    )
    files = [FilePart(XDM_FILENAME, xdm, _ZIP)]
    files += [FilePart(pdf_filename(message.patient, d), d.pdf, _PDF) for d in message.documents]
    raw = build_typed_message(
        kind=MessageKind.DOCUMENT,
        sender=message.sender,
        sender_name=message.sender_name,
        recipients=message.recipients,
        subject=document_subject(message),
        text=render_text(message, lang),
        language=lang,
        structured=_structured(message, cdas, xdm),
        structured_type=STRUCTURED_TYPE,
        structured_version=SCHEMA_VERSION,
        structured_filename=_STRUCTURED_FILENAME,
        files=files,
        message_id=message_id,
        date=date,
        extra_headers=_headers(message, cdas),
    )
    if len(raw) > limits.max_message_bytes:
        raise InvalidMessage(
            f"message of {len(raw)} bytes exceeds {limits.max_message_bytes}", "too-large"
        )
    return raw


# --- reading -------------------------------------------------------------------------------


def _sort_attachments(files: tuple[FilePart, ...]) -> tuple[FilePart, list[FilePart]]:
    archives: list[FilePart] = []
    pdfs: list[FilePart] = []
    for part in files:
        found = detect_type(part.data)
        if found == _ZIP:
            archives.append(part)
        elif found == _PDF:
            pdfs.append(part)
        elif part.content_type == _PDF or part.filename.lower().endswith(".pdf"):
            raise InvalidMessage(
                f"attachment {part.filename!r} is presented as a PDF but its content is {found}",
                "content-not-pdf",
            )
        elif part.content_type == _ZIP or part.filename.lower().endswith(".zip"):
            raise InvalidMessage(
                f"attachment {part.filename!r} is presented as a zip but its content is {found}",
                "content-not-zip",
            )
        else:
            raise InvalidMessage(
                f"attachment {part.filename!r} ({found}) has no place in a document message",
                "document-unexpected-attachment",
            )
    if not archives:
        raise InvalidMessage(f"the message has no {XDM_FILENAME} archive", "xdm-missing")
    if len(archives) > 1:
        raise InvalidMessage("the message has more than one zip archive", "xdm-multiple")
    return archives[0], pdfs


def _identity(
    traits: PatientTraits | None, cdas: list[CdaDocument | None], ins: Ins
) -> QualifiedIdentity:
    if traits is None:
        # Another operator's archive may leave the traits to the CDA headers.
        for cda in cdas:
            p = cda.patient if cda is not None else None
            if p and p.birth_name and p.first_given_name and p.birth_date and p.sex:
                traits = PatientTraits(p.birth_name, p.first_given_name, p.birth_date, p.sex)
                break
    if traits is None or traits.sex not in ("M", "F"):
        raise InvalidMessage(
            "the archive does not give the patient's identity traits (birth name, first given "
            "name, birth date, sex) that qualify the INS",
            "ins-traits-missing",
        )
    try:
        return QualifiedIdentity(
            ins=ins,
            birth_name=traits.birth_name,
            first_given_name=traits.first_given_name,
            birth_date=traits.birth_date,
            sex=Sex(traits.sex),
        )
    except InvalidINS as exc:
        raise InvalidMessage(str(exc), "ins-traits-mismatch") from None


def _structured_extras(structured: dict[str, object], count: int) -> tuple[str, list[str]]:
    comment = structured.get("comment", "")
    documents = structured.get("documents")
    if not isinstance(comment, str) or not isinstance(documents, list) or len(documents) != count:
        raise InvalidMessage(
            "the structured part does not describe the archive's documents",
            "document-structured-mismatch",
        )
    numbers: list[str] = []
    for entry in documents:
        number = entry.get("record_number", "") if isinstance(entry, dict) else None
        if not isinstance(number, str):
            raise InvalidMessage(
                "the structured part has a malformed document entry", "document-structured-mismatch"
            )
        numbers.append(number)
    return comment, numbers


def _check_headers(headers: dict[str, tuple[str, ...]], expected: list[tuple[str, str]]) -> None:
    wanted = dict(expected)
    for name in (CODECDA_HEADER, INS_HEADER):
        values = headers.get(name.lower(), ())
        if not values:
            continue  # absent: Pli recomputes them; present, they must tell the truth
        if len(values) > 1:
            raise InvalidMessage(f"{name} appears {len(values)} times", "document-header-mismatch")
        if name not in wanted:
            raise InvalidMessage(
                f"{name} is set but the archive has no CDA document", "document-header-mismatch"
            )
        got = values[0].strip()
        if name == CODECDA_HEADER:
            same = {c.strip() for c in got.split(",")} == set(wanted[name].split(","))
        else:
            same = got.upper() == wanted[name]
        if not same:
            raise InvalidMessage(
                f"{name} says {got!r} but the archive says {wanted[name]!r}",
                "document-header-mismatch",
            )


def parse_document(raw: bytes, *, limits: DocumentLimits | None = None) -> DocumentMessage:
    """Read a document message back; :class:`InvalidMessage` with a precise code otherwise.

    Accepts the archive's subset under any folder name, and messages without the structured
    part (other operators' software).
    """
    limits = limits or DocumentLimits()
    parts = read_typed_message(
        raw,
        kind=MessageKind.DOCUMENT,
        structured_type=STRUCTURED_TYPE,
        structured_version=SCHEMA_VERSION,
        max_bytes=limits.max_message_bytes,
        structured_max_bytes=limits.structured_max_bytes,
        require_structured=False,
    )
    if parts.kind and parts.structured is None:
        # X-Pli-Type promises Pli's schema; without it the message would silently read as a
        # foreign one and lose what only the structured part carries.
        raise InvalidMessage(
            f"the message declares kind {parts.kind!r} but has no {STRUCTURED_TYPE} part",
            "structured-missing",
        )
    if not parts.subject.upper().startswith(SUBJECT_PREFIX):
        raise InvalidMessage(
            f"a document message's subject starts with {SUBJECT_PREFIX}", "document-subject"
        )
    archive_part, pdfs = _sort_attachments(parts.files)
    submission = read_xdm(archive_part.data, limits.xdm).submission
    entries = submission.documents
    if len(entries) > limits.max_documents:
        raise InvalidMessage(
            f"{len(entries)} documents; at most {limits.max_documents} per message",
            "document-too-many",
        )
    if len(pdfs) != len(entries):
        raise InvalidMessage(
            f"{len(entries)} documents but {len(pdfs)} readable PDF attachments",
            "document-pdf-count",
        )
    allow_test = limits.xdm.allow_test_ins
    cdas: list[CdaDocument | None] = []
    for entry in entries:
        if entry.mime_type in XML_TYPES:
            cdas.append(read_cda(entry.data, limits.cda, allow_test_ins=allow_test))
        elif entry.mime_type == _PDF:
            _check_pdf(entry.data, f"archived document {entry.filename!r}")
            cdas.append(None)
        else:
            raise InvalidMessage(
                f"archived document {entry.filename!r} is {entry.mime_type}; "
                "a document is a CDA (text/xml) or a PDF",
                "document-unsupported-type",
            )
    patient = _identity(submission.traits, cdas, submission.patient)
    comment, numbers = parts.text.strip(), [""] * len(entries)
    if parts.structured is not None:
        comment, numbers = _structured_extras(parts.structured, len(entries))
    documents: list[HealthDocument] = []
    for entry, cda, pdf, number in zip(entries, cdas, pdfs, numbers, strict=True):
        if cda is None and pdf.data != entry.data:
            raise InvalidMessage(
                f"the readable PDF {pdf.filename!r} is not the archived {entry.filename!r}",
                "document-pdf-mismatch",
            )
        if cda is not None:
            _check_same_patient(patient, cda, entry.title)
            if entry.unique_id != cda.document_id:
                raise InvalidMessage(
                    f"archived {entry.filename!r} has uniqueId {entry.unique_id} but its CDA id "
                    f"is {cda.document_id}",
                    "document-unique-id",
                )
        service_date = entry.service_date or (
            entry.creation_time.date() if entry.creation_time else None
        )
        if service_date is None:
            raise InvalidMessage(
                f"archived {entry.filename!r} has neither serviceStartTime nor creationTime",
                "xdm-metadata-invalid",
            )
        document = HealthDocument(
            title=entry.title,
            type_code=entry.type_code,
            type_label="" if entry.type_display == entry.type_code else entry.type_display,
            pdf=pdf.data,
            cda=entry.data if cda is not None else None,
            date=service_date,
            restrictions=entry.restrictions,
            record_number=number,
        )
        # An id Pli would have derived reads back as "derived", so round trips are exact.
        if cda is None and entry.unique_id != _pdf_unique_id(pdf.data):
            document = replace(document, unique_id=entry.unique_id)
        documents.append(document)
    message = DocumentMessage(
        sender=parts.sender,
        recipients=parts.recipients,
        patient=patient,
        documents=tuple(documents),
        sender_name=parts.sender_name,
        comment=comment,
        test_ins=submission.patient_oid in TEST_INS_OIDS,
    )
    _check_headers(dict(parts.headers), _headers(message, cdas))
    if parts.structured is not None and parts.structured != _structured(
        message, cdas, archive_part.data
    ):
        raise InvalidMessage(
            "the structured part does not say what the archive says",
            "document-structured-mismatch",
        )
    return message


# --- registry --------------------------------------------------------------------------------


def _recognises(msg: Message) -> bool:
    # Recognising is not trusting: the subject or a file name only routes the message to
    # parse_document, which then judges every attachment by its content.
    try:
        if str(msg.get("Subject", "")).upper().startswith(SUBJECT_PREFIX):
            return True
        if has_part_type(msg, STRUCTURED_TYPE):
            return True
        return any((part.get_filename() or "").upper() == XDM_FILENAME for part in msg.walk())
    except MIME_ERRORS:
        return False


SPEC = KindSpec(
    kind=MessageKind.DOCUMENT,
    schema_version=SCHEMA_VERSION,
    description_fr="Document de santé",
    description_en="Health document",
    recognises=_recognises,
)

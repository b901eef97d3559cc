"""IHE XDM archives: the ``IHE_XDM.ZIP`` that carries health documents by e-mail.

IHE ITI TF-1 §16 (Cross-Enterprise Document Media Interchange) and TF-3 §4.3 (metadata on
media), with the XDS metadata of TF-3 §4.2 in ebRIM 3.0 (OASIS ebXML Registry Information
Model) and the French conventions of the ANS (CI-SIS, Référentiel socle MSSanté #2):

- layout: ``INDEX.HTM`` and ``README.TXT`` at the root, ``IHE_XDM/<subset>/METADATA.XML`` and
  the documents beside it. Pli writes ``SUBSET01``; it reads any subset folder name (the ANS
  examples use ``SS000001``), but exactly one subset per archive: one message is one
  submission about one patient;
- ``METADATA.XML`` is an ``lcm:SubmitObjectsRequest``: one submission set (``RegistryPackage``)
  and one ``ExtrinsicObject`` per document, each with the patient's INS as ``patientId``
  (``<INS>^^^&<OID>&ISO^NH``), the document's SHA-1 ``hash`` (XDS requires SHA-1), ``size``
  and ``URI`` (its file name relative to ``METADATA.XML``), and the patient's traits in
  ``sourcePatientInfo`` (HL7 v2 PID-3, PID-5, PID-7, PID-8);
- restriction codes (ANS TRE_A07 StatutVisibiliteDocument, OID ``1.2.250.1.213.1.1.4.13``:
  ``MASQUE_PS``, ``INVISIBLE_PATIENT``, ``INVISIBLE_REP_LEGAUX``) travel as extra
  ``confidentialityCode`` classifications beside the HL7 ``N`` (normal) code.

Reading goes through :func:`messaging.ziputil.read_zip` and :func:`messaging.safexml.parse_xml`
with their limits and codes, then checks, with these codes:

==========================  ===============================================================
``xdm-missing-metadata``    no ``IHE_XDM/<subset>/METADATA.XML``
``xdm-multiple-subsets``    more than one subset folder with metadata
``xdm-metadata-invalid``    not a SubmitObjectsRequest, or a required attribute is missing
``xdm-no-documents``        a submission without any document
``xdm-missing-document``    a document's ``URI`` names no file of the archive
``xdm-hash-mismatch``       a document's SHA-1 is not its metadata ``hash``
``xdm-size-mismatch``       a document's size is not its metadata ``size``
``xdm-multiple-patients``   two different patients (patientId or traits) in one archive
``xdm-unknown-restriction``  a TRE_A07 restriction code Pli does not know, so cannot honour
``ins-missing`` …           the ``ins-*`` codes of :mod:`messaging.healthid` for patientId
==========================  ===============================================================

Documents are returned as bytes with their declared MIME type; checking that content matches
the declared type (and reading a CDA) is the caller's job, because it knows which types a
message kind accepts.
"""

from __future__ import annotations

import hashlib
import html
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from xml.etree.ElementTree import (  # noqa: S405 - building only; parsing is defused
    Element,
    SubElement,
    register_namespace,
    tostring,
)

from messaging.errors import InvalidMessage
from messaging.healthid import check_ins_oid, checked_ins
from messaging.ins import Ins
from messaging.safexml import XmlLimits, parse_xml
from messaging.ziputil import ZipEntry, ZipLimits, check_entry_name, read_zip, write_zip

__all__ = [
    "DEFAULT_SUBSET",
    "LOINC_OID",
    "RESTRICTION_OID",
    "Restriction",
    "PatientTraits",
    "XdmDocument",
    "XdmSubmission",
    "XdmArchive",
    "XdmLimits",
    "write_xdm",
    "read_xdm",
    "patient_cx",
]

DEFAULT_SUBSET = "SUBSET01"
LOINC_OID = "2.16.840.1.113883.6.1"
RESTRICTION_OID = "1.2.250.1.213.1.1.4.13"
"""ANS TRE_A07 StatutVisibiliteDocument."""
CONFIDENTIALITY_OID = "2.16.840.1.113883.5.25"
"""HL7 v3 Confidentiality: ``N`` (normal) on every document."""
FORMAT_OID = "1.3.6.1.4.1.19376.1.2.3"
FORMAT_MIME_SUFFICIENT = "urn:ihe:iti:xds:2017:mimeTypeSufficient"
"""IHE format code saying the MIME type describes the document well enough."""

_LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
_RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
_OBJ = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:"
_DOCUMENT_ENTRY = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
_SUBMISSION_SET_NODE = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
_HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
# Classification and identification schemes of IHE ITI TF-3 §4.2.5.
_DE_CONFIDENTIALITY = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
_DE_FORMAT = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
_DE_TYPE = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
_DE_PATIENT_ID = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
_DE_UNIQUE_ID = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
_SS_AUTHOR = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
_SS_PATIENT_ID = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
_SS_SOURCE_ID = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
_SS_UNIQUE_ID = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"

# The prefixes every XDS example uses, so that people reading METADATA.XML see lcm: and rim:
# rather than ns0: and ns1: (the registry is ElementTree's, keyed by namespace URI).
register_namespace("lcm", _LCM)
register_namespace("rim", _RIM)

_HL7V2_ESCAPES = (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\"))


class Restriction(StrEnum):
    """Audience restrictions of a document (ANS TRE_A07, MetaDMPMSS)."""

    MASQUE_PS = "MASQUE_PS"
    """Hidden from health professionals."""
    INVISIBLE_PATIENT = "INVISIBLE_PATIENT"
    """Not visible to the patient (until a professional has told them)."""
    INVISIBLE_REP_LEGAUX = "INVISIBLE_REP_LEGAUX"
    """Not visible to the patient's legal representatives."""

    @property
    def label_fr(self) -> str:
        return _RESTRICTION_LABELS[self][0]

    @property
    def label_en(self) -> str:
        return _RESTRICTION_LABELS[self][1]


_RESTRICTION_LABELS = {
    Restriction.MASQUE_PS: ("masqué aux professionnels de santé", "hidden from professionals"),
    Restriction.INVISIBLE_PATIENT: ("non visible par le patient", "not visible to the patient"),
    Restriction.INVISIBLE_REP_LEGAUX: (
        "non visible par les représentants légaux",
        "not visible to legal representatives",
    ),
}


@dataclass(frozen=True, slots=True)
class PatientTraits:
    """The identity traits of ``sourcePatientInfo`` (PID-5 birth name and given name, PID-7
    birth date, PID-8 sex ``M``/``F``)."""

    birth_name: str
    first_given_name: str
    birth_date: date
    sex: str


@dataclass(frozen=True, slots=True)
class XdmDocument:
    """One document of a submission and the metadata Pli writes and reads for it."""

    filename: str
    data: bytes
    mime_type: str
    unique_id: str
    title: str
    type_code: str
    type_display: str = ""
    type_code_system: str = LOINC_OID
    service_date: date | None = None
    creation_time: datetime | None = None
    restrictions: frozenset[Restriction] = frozenset()
    language: str = "fr-FR"


@dataclass(frozen=True, slots=True)
class XdmSubmission:
    """One submission set: one patient, its documents, who sent it to whom."""

    patient: Ins
    patient_oid: str
    documents: tuple[XdmDocument, ...]
    unique_id: str
    source_id: str
    submission_time: datetime
    traits: PatientTraits | None = None
    author_address: str | None = None
    recipients: tuple[str, ...] = ()
    title: str = ""


@dataclass(frozen=True, slots=True)
class XdmArchive:
    """What :func:`read_xdm` found: the submission and the subset folder it came from."""

    submission: XdmSubmission
    subset: str


@dataclass(frozen=True, slots=True)
class XdmLimits:
    zip: ZipLimits = field(default_factory=ZipLimits)
    xml: XmlLimits = field(default_factory=lambda: XmlLimits(max_bytes=4 * 1024 * 1024))
    allow_test_ins: bool = False
    """Accept the test INS OIDs (test and demonstration platforms only)."""


# --- writing ----------------------------------------------------------------------------


def _hl7v2_escape(text: str) -> str:
    for raw, escaped in _HL7V2_ESCAPES:
        text = text.replace(raw, escaped)
    return text


def _hl7v2_unescape(text: str) -> str:
    for raw, escaped in reversed(_HL7V2_ESCAPES):
        text = text.replace(escaped, raw)
    return text


def patient_cx(ins: Ins, oid: str) -> str:
    """The HL7 v2 CX form of an INS: ``<INS>^^^&<OID>&ISO^NH``."""
    return f"{ins}^^^&{oid}&ISO^NH"


def _dtm(moment: datetime) -> str:
    # XDS times are UTC (ITI TF-3 §4.2.3.1.5); a naive time is taken to be UTC already.
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y%m%d%H%M%S")


def _rim(parent: Element, tag: str, **attributes: str) -> Element:
    return SubElement(parent, f"{{{_RIM}}}{tag}", attributes)


def _slot(parent: Element, name: str, values: Iterable[str]) -> None:
    slot = _rim(parent, "Slot", name=name)
    value_list = _rim(slot, "ValueList")
    for value in values:
        _rim(value_list, "Value").text = value


def _name(parent: Element, text: str) -> None:
    _rim(_rim(parent, "Name"), "LocalizedString", value=text)


def _classification(
    parent: Element,
    *,
    ident: str,
    scheme: str,
    obj: str,
    code: str,
    coding_scheme: str,
    display: str,
) -> None:
    element = _rim(
        parent,
        "Classification",
        id=ident,
        objectType=_OBJ + "Classification",
        classificationScheme=scheme,
        classifiedObject=obj,
        nodeRepresentation=code,
    )
    _slot(element, "codingScheme", [coding_scheme])
    _name(element, display or code)


def _external_id(
    parent: Element, *, ident: str, scheme: str, obj: str, value: str, name: str
) -> None:
    element = _rim(
        parent,
        "ExternalIdentifier",
        id=ident,
        objectType=_OBJ + "ExternalIdentifier",
        identificationScheme=scheme,
        registryObject=obj,
        value=value,
    )
    _name(element, name)


def _source_patient_info(submission: XdmSubmission) -> list[str]:
    info = [f"PID-3|{patient_cx(submission.patient, submission.patient_oid)}"]
    traits = submission.traits
    if traits is not None:
        info += [
            f"PID-5|{_hl7v2_escape(traits.birth_name)}^{_hl7v2_escape(traits.first_given_name)}"
            "^^^^^L",
            f"PID-7|{traits.birth_date.strftime('%Y%m%d')}",
            f"PID-8|{traits.sex}",
        ]
    return info


def _metadata(submission: XdmSubmission) -> bytes:
    ids = _IdMaker(submission.unique_id)
    root = Element(f"{{{_LCM}}}SubmitObjectsRequest")
    objects = _rim(root, "RegistryObjectList")
    cx = patient_cx(submission.patient, submission.patient_oid)
    set_id = ids.next()
    package = _rim(objects, "RegistryPackage", id=set_id, objectType=_OBJ + "RegistryPackage")
    _slot(package, "submissionTime", [_dtm(submission.submission_time)])
    if submission.recipients:
        # XON|XCN|XTN: a recipient known only by its mailbox (ITI TF-3 §4.2.3.3.10).
        _slot(package, "intendedRecipient", [f"|||^^Internet^{r}" for r in submission.recipients])
    _name(package, submission.title or "Documents")
    if submission.author_address:
        author = _rim(
            package,
            "Classification",
            id=ids.next(),
            objectType=_OBJ + "Classification",
            classificationScheme=_SS_AUTHOR,
            classifiedObject=set_id,
            nodeRepresentation="",
        )
        _slot(author, "authorTelecommunication", [f"^^Internet^{submission.author_address}"])
    for scheme, value, label in (
        (_SS_PATIENT_ID, cx, "XDSSubmissionSet.patientId"),
        (_SS_SOURCE_ID, submission.source_id, "XDSSubmissionSet.sourceId"),
        (_SS_UNIQUE_ID, submission.unique_id, "XDSSubmissionSet.uniqueId"),
    ):
        _external_id(package, ident=ids.next(), scheme=scheme, obj=set_id, value=value, name=label)
    _rim(
        objects,
        "Classification",
        id=ids.next(),
        objectType=_OBJ + "Classification",
        classifiedObject=set_id,
        classificationNode=_SUBMISSION_SET_NODE,
    )
    patient_info = _source_patient_info(submission)
    for document in submission.documents:
        doc_id = ids.next()
        entry = _rim(
            objects,
            "ExtrinsicObject",
            id=doc_id,
            mimeType=document.mime_type,
            objectType=_DOCUMENT_ENTRY,
        )
        creation = document.creation_time or submission.submission_time
        _slot(entry, "creationTime", [_dtm(creation)])
        _slot(entry, "hash", [hashlib.sha1(document.data).hexdigest()])  # noqa: S324 - XDS hash
        _slot(entry, "size", [str(len(document.data))])
        _slot(entry, "URI", [document.filename])
        _slot(entry, "languageCode", [document.language])
        if document.service_date is not None:
            _slot(entry, "serviceStartTime", [document.service_date.strftime("%Y%m%d")])
        _slot(entry, "sourcePatientId", [cx])
        _slot(entry, "sourcePatientInfo", patient_info)
        _name(entry, document.title)
        _classification(
            entry,
            ident=ids.next(),
            scheme=_DE_TYPE,
            obj=doc_id,
            code=document.type_code,
            coding_scheme=document.type_code_system,
            display=document.type_display,
        )
        _classification(
            entry,
            ident=ids.next(),
            scheme=_DE_CONFIDENTIALITY,
            obj=doc_id,
            code="N",
            coding_scheme=CONFIDENTIALITY_OID,
            display="Normal",
        )
        for restriction in sorted(document.restrictions):
            _classification(
                entry,
                ident=ids.next(),
                scheme=_DE_CONFIDENTIALITY,
                obj=doc_id,
                code=restriction.value,
                coding_scheme=RESTRICTION_OID,
                display=restriction.label_fr,
            )
        _classification(
            entry,
            ident=ids.next(),
            scheme=_DE_FORMAT,
            obj=doc_id,
            code=FORMAT_MIME_SUFFICIENT,
            coding_scheme=FORMAT_OID,
            display="Format from mimeType",
        )
        _external_id(
            entry,
            ident=ids.next(),
            scheme=_DE_PATIENT_ID,
            obj=doc_id,
            value=cx,
            name="XDSDocumentEntry.patientId",
        )
        _external_id(
            entry,
            ident=ids.next(),
            scheme=_DE_UNIQUE_ID,
            obj=doc_id,
            value=document.unique_id,
            name="XDSDocumentEntry.uniqueId",
        )
        association = _rim(
            objects,
            "Association",
            id=ids.next(),
            objectType=_OBJ + "Association",
            associationType=_HAS_MEMBER,
            sourceObject=set_id,
            targetObject=doc_id,
        )
        _slot(association, "SubmissionSetStatus", ["Original"])
    body: bytes = tostring(root, encoding="utf-8", xml_declaration=True)
    return body


class _IdMaker:
    """Entry UUIDs derived from the submission's unique id, so the same input gives the same
    archive (repeatable tests, stable hashes)."""

    def __init__(self, seed: str) -> None:
        self._namespace = uuid.uuid5(uuid.NAMESPACE_OID, seed)
        self._count = 0

    def next(self) -> str:
        self._count += 1
        return f"urn:uuid:{uuid.uuid5(self._namespace, str(self._count))}"


def _index_htm(submission: XdmSubmission, subset: str) -> bytes:
    rows = "\n".join(
        f'<li><a href="IHE_XDM/{subset}/{html.escape(d.filename)}">{html.escape(d.title)}</a>'
        f" ({html.escape(d.mime_type)})</li>"
        for d in submission.documents
    )
    page = (
        '<!DOCTYPE html>\n<html lang="fr"><head><meta charset="utf-8">'
        "<title>IHE XDM</title></head>\n<body><h1>Documents</h1>\n"
        f"<ul>\n{rows}\n</ul>\n"
        f'<p><a href="README.TXT">README.TXT</a></p></body></html>\n'
    )
    return page.encode("utf-8")


def _readme_txt(submission: XdmSubmission) -> bytes:
    text = (
        "IHE XDM media (IHE ITI TF-1 16, TF-3 4.3)\r\n"
        "Created by Pli, secure health messaging.\r\n"
        f"Submission {submission.unique_id}, {len(submission.documents)} document(s).\r\n"
        "Open INDEX.HTM to list the documents; METADATA.XML describes them.\r\n"
    )
    return text.encode("utf-8")


def write_xdm(submission: XdmSubmission, *, subset: str = DEFAULT_SUBSET) -> bytes:
    """The bytes of ``IHE_XDM.ZIP`` for ``submission``, documents in ``IHE_XDM/<subset>/``."""
    if not submission.documents:
        raise InvalidMessage("an XDM submission needs at least one document", "xdm-no-documents")
    check_entry_name(subset)
    folder = f"IHE_XDM/{subset}/"
    entries = [
        ZipEntry("INDEX.HTM", _index_htm(submission, subset)),
        ZipEntry("README.TXT", _readme_txt(submission)),
        ZipEntry(folder + "METADATA.XML", _metadata(submission)),
    ]
    entries += [ZipEntry(folder + d.filename, d.data) for d in submission.documents]
    return write_zip(entries, date=submission.submission_time)


# --- reading ----------------------------------------------------------------------------


def _invalid(reason: str) -> InvalidMessage:
    return InvalidMessage(f"XDM METADATA.XML: {reason}", "xdm-metadata-invalid")


def _slots(element: Element) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for slot in element.findall(f"{{{_RIM}}}Slot"):
        values = [(v.text or "").strip() for v in slot.iter(f"{{{_RIM}}}Value")]
        found.setdefault(slot.get("name") or "", []).extend(values)
    return found


def _one(slots: dict[str, list[str]], name: str, owner: str) -> str:
    values = slots.get(name) or []
    if len(values) != 1 or not values[0]:
        raise _invalid(f"{owner} needs exactly one {name!r} slot value")
    return values[0]


def _external_ids(element: Element) -> dict[str, str]:
    return {
        e.get("identificationScheme") or "": (e.get("value") or "").strip()
        for e in element.findall(f"{{{_RIM}}}ExternalIdentifier")
    }


def _localized(element: Element) -> str:
    string = element.find(f"{{{_RIM}}}Name/{{{_RIM}}}LocalizedString")
    return (string.get("value") or "").strip() if string is not None else ""


def _parse_cx(value: str | None, *, allow_test_ins: bool) -> tuple[Ins, str]:
    if not value:
        raise InvalidMessage("the submission has no patientId (the patient's INS)", "ins-missing")
    components = value.split("^")
    authority = components[3].split("&") if len(components) > 3 else []
    oid = authority[1] if len(authority) > 1 else ""
    if not oid:
        raise InvalidMessage(
            f"patientId {value!r} names no assigning authority; the INS needs its OID",
            "ins-missing",
        )
    ins = checked_ins(components[0])
    check_ins_oid(ins, oid, allow_test=allow_test_ins)
    return ins, oid


def _parse_dtm(value: str, what: str) -> datetime:
    digits = value.strip()
    formats = {14: "%Y%m%d%H%M%S", 12: "%Y%m%d%H%M", 10: "%Y%m%d%H", 8: "%Y%m%d"}
    try:
        return datetime.strptime(digits, formats[len(digits)]).replace(tzinfo=UTC)
    except (KeyError, ValueError):
        raise _invalid(f"{what} {value!r} is not an XDS DTM") from None


def _parse_traits(values: list[str]) -> PatientTraits | None:
    fields: dict[str, str] = {}
    for value in values:
        key, sep, rest = value.partition("|")
        if sep:
            fields.setdefault(key.strip().upper(), rest.strip())
    name = fields.get("PID-5", "").split("^")
    birth = fields.get("PID-7", "")
    sex = fields.get("PID-8", "").upper()
    if len(name) < 2 or not name[0] or not name[1] or not birth or not sex:
        return None
    return PatientTraits(
        birth_name=_hl7v2_unescape(name[0]),
        first_given_name=_hl7v2_unescape(name[1]),
        birth_date=_parse_dtm(birth[:8], "PID-7").date(),
        sex=sex,
    )


def _read_document(
    entry: Element,
    folder: str,
    files: dict[str, ZipEntry],
    patient: tuple[Ins, str],
    *,
    allow_test_ins: bool,
) -> tuple[XdmDocument, PatientTraits | None]:
    owner = f"document {entry.get('id')!r}"
    slots = _slots(entry)
    ids = _external_ids(entry)
    if _parse_cx(ids.get(_DE_PATIENT_ID), allow_test_ins=allow_test_ins) != patient:
        raise InvalidMessage(
            f"{owner} is about another patient than its submission", "xdm-multiple-patients"
        )
    traits = _parse_traits(slots.get("sourcePatientInfo", []))
    for value in slots.get("sourcePatientInfo", []):
        if value.upper().startswith("PID-3|"):
            try:
                other = _parse_cx(value[6:], allow_test_ins=True)
            except InvalidMessage:
                continue  # a local identifier (IPP) may sit beside the INS
            if other[0] != patient[0]:
                raise InvalidMessage(
                    f"{owner} names another patient in sourcePatientInfo", "xdm-multiple-patients"
                )
    uri = _one(slots, "URI", owner)
    check_entry_name(uri)
    stored = files.get((folder + uri).casefold())
    if stored is None:
        raise InvalidMessage(
            f"{owner} refers to {uri!r}, which the archive lacks", "xdm-missing-document"
        )
    digest = _one(slots, "hash", owner).lower()
    if hashlib.sha1(stored.data).hexdigest() != digest:  # noqa: S324 - XDS hash
        raise InvalidMessage(
            f"{owner}: {uri} does not have its declared SHA-1", "xdm-hash-mismatch"
        )
    size = _one(slots, "size", owner)
    if size != str(len(stored.data)):
        raise InvalidMessage(
            f"{owner}: {uri} has {len(stored.data)} bytes, not {size}", "xdm-size-mismatch"
        )
    mime_type = (entry.get("mimeType") or "").strip().lower()
    unique_id = ids.get(_DE_UNIQUE_ID, "")
    if not mime_type or not unique_id:
        raise _invalid(f"{owner} needs a mimeType and a uniqueId")
    type_code = ""
    type_display = ""
    type_system = LOINC_OID
    restrictions: set[Restriction] = set()
    for classification in entry.findall(f"{{{_RIM}}}Classification"):
        scheme = classification.get("classificationScheme")
        code = (classification.get("nodeRepresentation") or "").strip()
        coding = (_slots(classification).get("codingScheme") or [""])[0]
        if scheme == _DE_TYPE:
            type_code, type_display, type_system = code, _localized(classification), coding
        elif scheme == _DE_CONFIDENTIALITY and coding == RESTRICTION_OID:
            try:
                restrictions.add(Restriction(code))
            except ValueError:
                # A restriction Pli cannot honour must not be dropped silently.
                raise InvalidMessage(
                    f"{owner} has restriction {code!r}, which Pli does not know",
                    "xdm-unknown-restriction",
                ) from None
    if not type_code:
        raise _invalid(f"{owner} has no typeCode")
    service = slots.get("serviceStartTime") or []
    creation = slots.get("creationTime") or []
    document = XdmDocument(
        filename=uri,
        data=stored.data,
        mime_type=mime_type,
        unique_id=unique_id,
        title=_localized(entry),
        type_code=type_code,
        type_display=type_display,
        type_code_system=type_system,
        service_date=_parse_dtm(service[0][:8], "serviceStartTime").date() if service else None,
        creation_time=_parse_dtm(creation[0], "creationTime") if creation else None,
        restrictions=frozenset(restrictions),
        language=(slots.get("languageCode") or ["fr-FR"])[0],
    )
    return document, traits


def _find_subset(files: dict[str, ZipEntry]) -> str:
    subsets: set[str] = set()
    for entry in files.values():
        parts = entry.name.split("/")
        if len(parts) == 3 and parts[0].upper() == "IHE_XDM" and parts[2].upper() == "METADATA.XML":
            subsets.add(parts[1])
    if not subsets:
        raise InvalidMessage(
            "the archive has no IHE_XDM/<subset>/METADATA.XML", "xdm-missing-metadata"
        )
    if len(subsets) > 1:
        raise InvalidMessage(
            f"the archive has {len(subsets)} subsets; one message carries one submission",
            "xdm-multiple-subsets",
        )
    return subsets.pop()


def read_xdm(data: bytes, limits: XdmLimits | None = None) -> XdmArchive:
    """Read an ``IHE_XDM.ZIP`` from any subset folder; :class:`InvalidMessage` on refusal."""
    limits = limits or XdmLimits()
    files = {e.name.casefold(): e for e in read_zip(data, limits.zip)}
    subset = _find_subset(files)
    folder = f"IHE_XDM/{subset}/".casefold()
    root = parse_xml(files[folder + "metadata.xml"].data, limits.xml)
    if root.tag != f"{{{_LCM}}}SubmitObjectsRequest":
        raise _invalid(f"the root is {root.tag!r}, not lcm:SubmitObjectsRequest")
    objects = root.find(f"{{{_RIM}}}RegistryObjectList")
    if objects is None:
        raise _invalid("no RegistryObjectList")
    packages = [
        p
        for p in objects.findall(f"{{{_RIM}}}RegistryPackage")
        if _SS_PATIENT_ID in _external_ids(p)
    ]
    if len(packages) != 1:
        raise _invalid(f"{len(packages)} submission sets; exactly one is expected")
    package = packages[0]
    ids = _external_ids(package)
    patient = _parse_cx(ids.get(_SS_PATIENT_ID), allow_test_ins=limits.allow_test_ins)
    slots = _slots(package)
    author = None
    for classification in package.findall(f"{{{_RIM}}}Classification"):
        if classification.get("classificationScheme") == _SS_AUTHOR:
            telecom = _slots(classification).get("authorTelecommunication") or []
            author = telecom[0].rpartition("^")[2] if telecom else None
    recipients = tuple(v.rpartition("^")[2] for v in slots.get("intendedRecipient", []))
    documents: list[XdmDocument] = []
    traits: set[PatientTraits] = set()
    for entry in objects.findall(f"{{{_RIM}}}ExtrinsicObject"):
        document, found = _read_document(
            entry, folder, files, patient, allow_test_ins=limits.allow_test_ins
        )
        documents.append(document)
        if found is not None:
            traits.add(found)
    if not documents:
        raise InvalidMessage("the submission has no document", "xdm-no-documents")
    if len(traits) > 1:
        raise InvalidMessage(
            "the documents give different identity traits for their patient",
            "xdm-multiple-patients",
        )
    if len({d.filename.casefold() for d in documents}) != len(documents):
        raise _invalid("two documents refer to the same file")
    if len({d.unique_id for d in documents}) != len(documents):
        raise _invalid("two documents have the same uniqueId")
    submission = XdmSubmission(
        patient=patient[0],
        patient_oid=patient[1],
        documents=tuple(documents),
        unique_id=ids.get(_SS_UNIQUE_ID, ""),
        source_id=ids.get(_SS_SOURCE_ID, ""),
        submission_time=_parse_dtm(
            _one(slots, "submissionTime", "the submission set"), "submissionTime"
        ),
        traits=traits.pop() if traits else None,
        author_address=author or None,
        recipients=recipients,
        title=_localized(package),
    )
    return XdmArchive(submission, subset)

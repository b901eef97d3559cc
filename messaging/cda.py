"""Reading the header of HL7 CDA R2 documents (ANSI/HL7 CDA R2-2005, French CI-SIS profile).

Pli never renders or interprets a CDA body; it reads the few header fields that routing,
the ``X-MSS-CODECDA`` / ``X-MSS-INS`` headers (ANS, Référentiel socle MSSanté #2, clients de
messageries) and the one-patient rule need:

- ``ClinicalDocument/id`` (``root`` and ``extension``): the document's unique id, written as
  ``root^extension`` in XDS metadata (IHE ITI TF-3 §4.2.3.2.26);
- ``ClinicalDocument/code/@code``: the document type (a LOINC code in France), the value of
  ``X-MSS-CODECDA``;
- ``ClinicalDocument/effectiveTime/@value``: when the document was created (HL7 V3 TS);
- ``recordTarget/patientRole/id`` whose ``root`` is an INS OID: the patient's INS (CI-SIS,
  "Volet structuration minimale", §patient), and the patient's traits as the document states
  them (birth name, first given name, birth date, sex).

The XML is read by :func:`messaging.safexml.parse_xml` (no DTD, no entity, no network, size
and depth limits) after a content check: bytes that libmagic does not see as XML are refused
with ``content-not-xml`` whatever their name or declared type. A CDA whose XML declaration is
missing is therefore refused too; the CI-SIS requires it.

Refusal codes (beyond the ``xml-*`` codes of :mod:`messaging.safexml` and the ``ins-*`` codes
of :mod:`messaging.healthid`): ``content-not-xml``, ``cda-not-cda``, ``cda-missing-id``,
``cda-missing-code``, ``cda-missing-effective-time``, ``cda-bad-time``,
``cda-missing-patient``, ``cda-multiple-patients``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from xml.etree.ElementTree import Element  # noqa: S405 - a type only; parsing is defused

from messaging.content import detect_type
from messaging.errors import InvalidMessage
from messaging.healthid import INS_OIDS, check_ins_oid, checked_ins
from messaging.ins import Ins
from messaging.safexml import XmlLimits, parse_xml

__all__ = [
    "HL7_NAMESPACE",
    "XML_TYPES",
    "CdaPatient",
    "CdaDocument",
    "read_cda",
    "parse_hl7_time",
]

HL7_NAMESPACE = "urn:hl7-org:v3"
XML_TYPES = frozenset({"text/xml", "application/xml"})
"""What libmagic calls XML content."""

_NS = {"hl7": HL7_NAMESPACE}
_TS_RE = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.\d{1,4})?([+-]\d{4})?$")


@dataclass(frozen=True, slots=True)
class CdaPatient:
    """The patient a CDA document is about, as the document states it."""

    ins: Ins | None
    ins_oid: str | None
    birth_name: str
    first_given_name: str
    birth_date: date | None
    sex: str | None


@dataclass(frozen=True, slots=True)
class CdaDocument:
    """The header fields Pli reads from a CDA R2 document."""

    document_id: str
    code: str
    code_system: str
    display_name: str
    title: str
    effective_time: datetime
    patient: CdaPatient


def parse_hl7_time(value: str) -> datetime:
    """An HL7 V3 TS (``YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]``) as a datetime.

    Missing components take their lowest value; without an offset the result is naive, as the
    source left the zone unknown. :class:`ValueError` when it is not a valid TS.
    """
    match = _TS_RE.match(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not an HL7 TS")
    year, month, day, hour, minute, second, offset = match.groups()
    zone: timezone | None = None
    if offset is not None:
        sign = 1 if offset[0] == "+" else -1
        delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
        zone = UTC if not delta else timezone(sign * delta)
    return datetime(
        int(year),
        int(month or 1),
        int(day or 1),
        int(hour or 0),
        int(minute or 0),
        int(second or 0),
        tzinfo=zone,
    )


def _text(element: Element | None) -> str:
    return "".join(element.itertext()).strip() if element is not None else ""


def _instance_id(element: Element | None) -> str:
    if element is None:
        return ""
    root = (element.get("root") or "").strip()
    extension = (element.get("extension") or "").strip()
    if not root:
        return ""
    return f"{root}^{extension}" if extension else root


def _read_patient(document: Element, *, allow_test_ins: bool) -> CdaPatient:
    targets = document.findall("hl7:recordTarget", _NS)
    if not targets:
        raise InvalidMessage(
            "the CDA document names no patient (recordTarget)", "cda-missing-patient"
        )
    if len(targets) > 1:
        raise InvalidMessage(
            f"the CDA document names {len(targets)} patients; one is allowed",
            "cda-multiple-patients",
        )
    role = targets[0].find("hl7:patientRole", _NS)
    if role is None:
        raise InvalidMessage("the CDA recordTarget has no patientRole", "cda-missing-patient")
    found: dict[Ins, str] = {}
    for identifier in role.findall("hl7:id", _NS):
        root = (identifier.get("root") or "").strip()
        if root not in INS_OIDS:
            continue  # a local patient number (IPP) travels beside the INS
        value = checked_ins(identifier.get("extension"))
        check_ins_oid(value, root, allow_test=allow_test_ins)
        found[value] = root
    if len(found) > 1:
        raise InvalidMessage(
            "the CDA document gives two different INS for its patient", "cda-multiple-patients"
        )
    ins: Ins | None = None
    oid: str | None = None
    if found:
        ins, oid = next(iter(found.items()))
    person = role.find("hl7:patient", _NS)
    birth_name = first_given = ""
    birth_date: date | None = None
    sex: str | None = None
    if person is not None:
        name = person.find("hl7:name", _NS)
        if name is not None:
            families = name.findall("hl7:family", _NS)
            # CI-SIS marks the birth name with qualifier BR; otherwise the first family name.
            birth = [f for f in families if (f.get("qualifier") or "").upper() == "BR"]
            chosen = birth or families
            birth_name = _text(chosen[0]) if chosen else ""
            first_given = _text(name.find("hl7:given", _NS))
        birth_time = person.find("hl7:birthTime", _NS)
        if birth_time is not None and birth_time.get("value"):
            try:
                birth_date = parse_hl7_time(birth_time.get("value", "")).date()
            except ValueError as exc:
                raise InvalidMessage(f"CDA patient birthTime: {exc}", "cda-bad-time") from None
        gender = person.find("hl7:administrativeGenderCode", _NS)
        if gender is not None and gender.get("code"):
            sex = (gender.get("code") or "").strip().upper()
    return CdaPatient(ins, oid, birth_name, first_given, birth_date, sex)


def read_cda(
    data: bytes, limits: XmlLimits | None = None, *, allow_test_ins: bool = False
) -> CdaDocument:
    """The header of a CDA R2 document, checked; :class:`InvalidMessage` on any refusal."""
    found = detect_type(data)
    if found not in XML_TYPES:
        raise InvalidMessage(
            f"a CDA document must be XML; its content is {found}", "content-not-xml"
        )
    document = parse_xml(data, limits)
    if document.tag != f"{{{HL7_NAMESPACE}}}ClinicalDocument":
        raise InvalidMessage(
            f"the XML root is {document.tag!r}, not an HL7 CDA R2 ClinicalDocument", "cda-not-cda"
        )
    document_id = _instance_id(document.find("hl7:id", _NS))
    if not document_id:
        raise InvalidMessage("the CDA document has no id/@root", "cda-missing-id")
    code_element = document.find("hl7:code", _NS)
    code = (code_element.get("code") or "").strip() if code_element is not None else ""
    if code_element is None or not code:
        raise InvalidMessage("the CDA document has no code/@code", "cda-missing-code")
    if any(c in code for c in ",\r\n") or not code.isprintable():
        # The code becomes a value of the comma-separated X-MSS-CODECDA header.
        raise InvalidMessage(f"the CDA code {code!r} is not a plain code", "cda-missing-code")
    time_element = document.find("hl7:effectiveTime", _NS)
    time_value = time_element.get("value") if time_element is not None else None
    if not time_value:
        raise InvalidMessage(
            "the CDA document has no effectiveTime/@value", "cda-missing-effective-time"
        )
    try:
        effective_time = parse_hl7_time(time_value)
    except ValueError as exc:
        raise InvalidMessage(f"CDA effectiveTime: {exc}", "cda-bad-time") from None
    return CdaDocument(
        document_id=document_id,
        code=code,
        code_system=(code_element.get("codeSystem") or "").strip(),
        display_name=(code_element.get("displayName") or "").strip(),
        title=_text(document.find("hl7:title", _NS)),
        effective_time=effective_time,
        patient=_read_patient(document, allow_test_ins=allow_test_ins),
    )

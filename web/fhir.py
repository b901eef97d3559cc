"""The directory as FHIR R4 resources (Annuaire Santé conventions): pure mapping, no I/O.

FHIR R4 (4.0.1) resources built here: ``Practitioner``, ``PractitionerRole``,
``Organization``, ``Bundle`` (``searchset``), ``CapabilityStatement``. The national
conventions are those of the Annuaire Santé implementation guide
(https://interop.esante.gouv.fr/ig/fhir/annuaire, profile ``as-mailbox-mss``):

- a mailbox is a ``telecom`` ContactPoint with ``system = email``, the FR Core extension
  ``fr-core-contact-point-email-type`` whose ``valueCoding`` is ``MSSANTE`` in
  ``TRE_R256-TypeMessagerie``, and the complex extension ``as-ext-mailbox-mss-metadata``
  with the sub-extensions ``type`` (``valueCodeableConcept``, ``TRE_R257-TypeBAL``: ORG,
  APP, PER or CAB), ``description``, ``responsible`` and ``service`` (``valueString``,
  omitted when empty; ``responsible`` only for authenticated professionals) and
  ``listeRouge`` (``valueBoolean``, always false here: liste rouge mailboxes are never
  shown at all);
- identifiers: ``idNatPS`` (``urn:oid:1.2.250.1.71.4.2.1``) and RPPS
  (``https://rpps.esante.gouv.fr``) for practitioners, the national structure id
  (``urn:oid:1.2.250.1.71.4.2.2``) and FINESS (``https://finess.esante.gouv.fr``) for
  organisations, typed with the FR Core ``fr-core-cs-v2-0203`` codes.

Implementation notes:

- Resource ids are the national ids (practitioners, organisations) or the mailbox address
  (roles), escaped into the FHIR id alphabet ``[A-Za-z0-9.-]``: every other character,
  ``-`` included, becomes ``-`` and two upper-case hex digits per UTF-8 byte
  (``sophie.martin@medecin.test`` → ``sophie.martin-40medecin.test``). A mailbox's second
  and later roles add ``--`` and their position (``…--1``). The escaping is a bijection,
  so an id is read back without any table; FHIR limits ids to 64 characters, which an
  unusually long address can exceed.
- Resources never carry a liste rouge mailbox: callers pass only visible mailboxes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from messaging.directory import Code, MailboxEntry, Organisation, Practitioner, Role
from messaging.types import MailboxKind

__all__ = [
    "EMAIL_TYPE_URL",
    "MAILBOX_METADATA_URL",
    "TYPE_MESSAGERIE_SYSTEM",
    "TYPE_BAL_SYSTEM",
    "IDNPS_SYSTEM",
    "RPPS_SYSTEM",
    "IDNST_SYSTEM",
    "FINESS_SYSTEM",
    "encode_id",
    "decode_id",
    "role_id",
    "parse_role_id",
    "mailbox_contact_point",
    "practitioner_resource",
    "organization_resource",
    "practitioner_role_resource",
    "searchset",
    "capability_statement",
]

EMAIL_TYPE_URL = "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-contact-point-email-type"
MAILBOX_METADATA_URL = "https://interop.esante.gouv.fr/ig/fhir/annuaire/StructureDefinition/as-ext-mailbox-mss-metadata"
TYPE_MESSAGERIE_SYSTEM = (
    "https://mos.esante.gouv.fr/NOS/TRE_R256-TypeMessagerie/FHIR/TRE-R256-TypeMessagerie"
)
TYPE_BAL_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_R257-TypeBAL/FHIR/TRE-R257-TypeBAL"
IDENTIFIER_TYPE_SYSTEM = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"
IDNPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
RPPS_SYSTEM = "https://rpps.esante.gouv.fr"
IDNST_SYSTEM = "urn:oid:1.2.250.1.71.4.2.2"
FINESS_SYSTEM = "https://finess.esante.gouv.fr"
PROFESSION_SYSTEM = (
    "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
)
CATEGORY_SYSTEM = (
    "https://mos.esante.gouv.fr/NOS/TRE_R09-CategorieProfessionnelle/FHIR/"
    "TRE-R09-CategorieProfessionnelle"
)
SPECIALTY_SYSTEM = (
    "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale"
)

MAILBOX_TYPES: tuple[MailboxKind, ...] = (
    MailboxKind.ORG,
    MailboxKind.APP,
    MailboxKind.PER,
    MailboxKind.CAB,
)
"""The values of ``TRE_R257-TypeBAL``: every mailbox type but the patients' own."""

# --- Resource ids -------------------------------------------------------------------------

_KEEP = re.compile(r"[A-Za-z0-9.]")
_ESCAPE = re.compile(r"-([0-9A-F]{2})")
_ID = re.compile(r"[A-Za-z0-9.-]{1,400}")
_ROLE_SEPARATOR = "--"


def encode_id(text: str) -> str:
    """``text`` in the FHIR id alphabet (see the module notes)."""
    out: list[str] = []
    for char in text:
        if _KEEP.fullmatch(char):
            out.append(char)
        else:
            out.extend(f"-{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
    return "".join(out)


def decode_id(resource_id: str) -> str | None:
    """The text :func:`encode_id` made ``resource_id`` from, or None if it made no such id."""
    if not _ID.fullmatch(resource_id):
        return None
    raw = bytearray()
    at = 0
    while at < len(resource_id):
        char = resource_id[at]
        if char == "-":
            match = _ESCAPE.match(resource_id, at)
            if match is None:
                return None
            raw.append(int(match.group(1), 16))
            at = match.end()
        else:
            raw.extend(char.encode("ascii"))
            at += 1
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    # One text, one id: refuse escapes of characters that are kept as they are.
    return text if text and encode_id(text) == resource_id else None


def role_id(address: str, position: int) -> str:
    """The id of a mailbox's role at ``position`` among its live roles (file order)."""
    base = encode_id(address)
    return base if position == 0 else f"{base}{_ROLE_SEPARATOR}{position}"


def parse_role_id(resource_id: str) -> tuple[str, int] | None:
    """The address and position :func:`role_id` made ``resource_id`` from, or None."""
    base, separator, position = resource_id.partition(_ROLE_SEPARATOR)
    index = 0
    if separator:
        if not (position.isascii() and position.isdecimal()) or position.startswith("0"):
            return None
        if len(position) > 6:
            return None
        index = int(position)
    address = decode_id(base)
    return None if address is None else (address, index)


# --- Data types ---------------------------------------------------------------------------


def _coding(system: str, code: Code) -> dict[str, object]:
    coding: dict[str, object] = {"system": system, "code": code.code}
    if code.label:
        coding["display"] = code.label
    return coding


def _concept(system: str, code: Code) -> dict[str, object] | None:
    if code.code:
        concept: dict[str, object] = {"coding": [_coding(system, code)]}
        if code.label:
            concept["text"] = code.label
        return concept
    if code.label:
        return {"text": code.label}
    return None


def _specialty(code: Code) -> dict[str, object] | None:
    # "Code savoir-faire" mixes nomenclatures; only ordinal specialties (SM..) are coded.
    if code.code.startswith("SM"):
        return _concept(SPECIALTY_SYSTEM, code)
    return {"text": code.label} if code.label else None


def _identifier(type_code: str, system: str, value: str) -> dict[str, object]:
    return {
        "use": "official",
        "type": {"coding": [{"system": IDENTIFIER_TYPE_SYSTEM, "code": type_code}]},
        "system": system,
        "value": value,
    }


def _string_extension(url: str, value: str) -> dict[str, object] | None:
    return {"url": url, "valueString": value} if value else None


def mailbox_contact_point(
    entry: MailboxEntry, *, show_responsible: bool, service: str | None = None
) -> dict[str, object]:
    """The ``telecom`` ContactPoint of a (visible) mailbox, profile ``as-mailbox-mss``.

    ``service`` overrides the mailbox's own (a role states its line's service).
    """
    metadata: list[dict[str, object]] = [
        {
            "url": "type",
            "valueCodeableConcept": {
                "coding": [{"system": TYPE_BAL_SYSTEM, "code": entry.kind.value}]
            },
        }
    ]
    for extension in (
        _string_extension("description", entry.description),
        _string_extension("responsible", entry.responsible) if show_responsible else None,
        _string_extension("service", entry.service if service is None else service),
    ):
        if extension is not None:
            metadata.append(extension)
    metadata.append({"url": "listeRouge", "valueBoolean": entry.liste_rouge})
    contact: dict[str, object] = {
        "extension": [
            {
                "url": EMAIL_TYPE_URL,
                "valueCoding": {"system": TYPE_MESSAGERIE_SYSTEM, "code": "MSSANTE"},
            },
            {"url": MAILBOX_METADATA_URL, "extension": metadata},
        ],
        "system": "email",
        "value": str(entry.address),
    }
    if entry.preferred_rank is not None and entry.preferred_rank >= 1:
        contact["rank"] = entry.preferred_rank
    return contact


def _telecom(mailboxes: Iterable[MailboxEntry], show_responsible: bool) -> list[dict[str, object]]:
    return [mailbox_contact_point(m, show_responsible=show_responsible) for m in mailboxes]


# --- Resources ----------------------------------------------------------------------------


def _reference(kind: str, resource_id: str, display: str) -> dict[str, object]:
    reference: dict[str, object] = {"reference": f"{kind}/{resource_id}"}
    if display:
        reference["display"] = display
    return reference


def practitioner_resource(
    practitioner: Practitioner,
    mailboxes: Sequence[MailboxEntry] = (),
    *,
    show_responsible: bool = False,
) -> dict[str, object]:
    """A ``Practitioner``: identifiers, name, qualification, and its visible mailboxes."""
    identifiers = [_identifier("IDNPS", IDNPS_SYSTEM, practitioner.national_id)]
    if practitioner.rpps:
        identifiers.append(_identifier("RPPS", RPPS_SYSTEM, practitioner.rpps))
    resource: dict[str, object] = {
        "resourceType": "Practitioner",
        "id": encode_id(practitioner.national_id),
        "identifier": identifiers,
        "active": True,
    }
    name: dict[str, object] = {}
    if practitioner.family_name:
        name["family"] = practitioner.family_name
    if practitioner.given_name:
        name["given"] = [practitioner.given_name]
    if practitioner.civility:
        name["prefix"] = [practitioner.civility]
    if name:
        resource["name"] = [name]
    telecom = _telecom(mailboxes, show_responsible)
    if telecom:
        resource["telecom"] = telecom
    codings = [
        _coding(system, code)
        for system, code in (
            (PROFESSION_SYSTEM, practitioner.profession),
            (CATEGORY_SYSTEM, practitioner.category),
        )
        if code.code
    ]
    qualifications: list[dict[str, object]] = []
    if codings:
        qualifications.append({"code": {"coding": codings}})
    specialty = _specialty(practitioner.specialty)
    if specialty is not None:
        qualifications.append({"code": specialty})
    if qualifications:
        resource["qualification"] = qualifications
    return resource


def _address(organisation: Organisation) -> dict[str, object] | None:
    postal = organisation.address
    street = " ".join(
        p
        for p in (
            postal.street_number,
            postal.street_number_suffix,
            postal.street_type,
            postal.street_name,
        )
        if p
    )
    lines = [
        line
        for line in (
            postal.complement_location,
            postal.complement_distribution,
            street,
            postal.locality,
        )
        if line
    ]
    address: dict[str, object] = {}
    if lines:
        address["line"] = lines
    for key, value in (
        ("city", postal.city),
        ("district", postal.department),
        ("postalCode", postal.postcode),
        ("country", postal.country),
    ):
        if value:
            address[key] = value
    return address or None


def organization_resource(
    organisation: Organisation,
    mailboxes: Sequence[MailboxEntry] = (),
    *,
    show_responsible: bool = False,
) -> dict[str, object]:
    """An ``Organization``: identifiers, names, address, and its organisational mailboxes."""
    identifiers = [_identifier("IDNST", IDNST_SYSTEM, organisation.national_id)]
    if organisation.finess:
        identifiers.append(_identifier("FINEG", FINESS_SYSTEM, organisation.finess))
    resource: dict[str, object] = {
        "resourceType": "Organization",
        "id": encode_id(organisation.national_id),
        "identifier": identifiers,
        "active": True,
    }
    if organisation.name:
        resource["name"] = organisation.name
    if organisation.trade_name:
        resource["alias"] = [organisation.trade_name]
    telecom = _telecom(mailboxes, show_responsible)
    if telecom:
        resource["telecom"] = telecom
    address = _address(organisation)
    if address is not None:
        resource["address"] = [address]
    return resource


def practitioner_role_resource(
    role: Role, position: int, entry: MailboxEntry, *, show_responsible: bool = False
) -> dict[str, object]:
    """A ``PractitionerRole``: one line of the extraction, the mailbox as its telecom."""
    resource: dict[str, object] = {
        "resourceType": "PractitionerRole",
        "id": role_id(str(role.mailbox), position),
        "active": True,
    }
    practitioner = role.practitioner
    if practitioner is not None:
        resource["practitioner"] = _reference(
            "Practitioner", encode_id(practitioner.national_id), practitioner.display_name
        )
    organisation = role.organisation
    if organisation is not None:
        resource["organization"] = _reference(
            "Organization",
            encode_id(organisation.national_id),
            organisation.trade_name or organisation.name,
        )
    if practitioner is not None:
        profession = _concept(PROFESSION_SYSTEM, practitioner.profession)
        if profession is not None:
            resource["code"] = [profession]
        specialty = _specialty(practitioner.specialty)
        if specialty is not None:
            resource["specialty"] = [specialty]
    resource["telecom"] = [
        mailbox_contact_point(entry, show_responsible=show_responsible, service=role.service)
    ]
    return resource


# --- Bundles and the capability statement -------------------------------------------------


def searchset(
    entries: Sequence[tuple[str, Mapping[str, object]]],
    *,
    total: int | None,
    links: Mapping[str, str],
    outcome: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """A ``searchset`` Bundle of ``(fullUrl, resource)`` matches, with paging ``links``
    (relation → URL) and, when the search was cut short, an ``outcome`` entry."""
    bundle: dict[str, object] = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        bundle["total"] = total
    bundle["link"] = [{"relation": relation, "url": url} for relation, url in links.items()]
    items: list[dict[str, object]] = [
        {"fullUrl": full_url, "resource": dict(resource), "search": {"mode": "match"}}
        for full_url, resource in entries
    ]
    if outcome is not None:
        items.append({"resource": dict(outcome), "search": {"mode": "outcome"}})
    bundle["entry"] = items
    return bundle


SEARCH_PARAMETERS: Mapping[str, tuple[tuple[str, str, str], ...]] = {
    "Practitioner": (
        ("name", "string", "Any word of the practitioner's names (prefix match)"),
        ("family", "string", "Family name (prefix match)"),
        ("given", "string", "Given name (prefix match)"),
        ("identifier", "token", "idNatPS (urn:oid:1.2.250.1.71.4.2.1) or RPPS"),
    ),
    "PractitionerRole": (
        ("name", "string", "Any word of the practitioner's names (prefix match)"),
        ("family", "string", "Family name of the practitioner (prefix match)"),
        ("given", "string", "Given name of the practitioner (prefix match)"),
    ),
    "Organization": (
        ("name", "string", "Name or trade name (prefix match of each word)"),
        ("identifier", "token", "National structure id (urn:oid:1.2.250.1.71.4.2.2) or FINESS"),
    ),
}
MAILBOX_PARAMETERS = (
    ("mailbox-mss", "string", "MSSanté address (starts with; :contains, :exact)"),
    ("mailbox-mss-type", "token", "Mailbox type: ORG, APP, PER or CAB (TRE_R257-TypeBAL)"),
    ("_count", "number", "Page size (capped: 20 anonymous, 100 for professionals)"),
)


def capability_statement(base_url: str, version: str) -> dict[str, object]:
    """What this server does: read and search-type on the three directory resources."""
    resources = []
    for kind, parameters in SEARCH_PARAMETERS.items():
        resources.append(
            {
                "type": kind,
                "interaction": [{"code": "read"}, {"code": "search-type"}],
                "searchParam": [
                    {"name": name, "type": kind_, "documentation": doc}
                    for name, kind_, doc in (*parameters, *MAILBOX_PARAMETERS)
                ],
            }
        )
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2025-01-01",
        "kind": "instance",
        "software": {"name": "Pli", "version": version},
        "implementation": {"description": "Pli directory (read only)", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json"],
        "rest": [{"mode": "server", "resource": resources}],
    }

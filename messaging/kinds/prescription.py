"""``prescription``: a medication prescription (ordonnance), signed by its sender.

RFC 5322 / RFC 2045-2049 message (:mod:`messaging.kinds.parts`) whose structured part,
``application/vnd.pli.prescription+json; version=1``, is signed with the sender's Ed25519
mailbox key (RFC 8032; :mod:`messaging.kinds.issuer` explains the signed bytes). Required
fields: the prescriber's RPPS (11 digits, Luhn key) and name and profession (ANS TRE_G15), the
patient's qualified identity (INS with its OID, birth name, first given name, birth date,
sex), the date, and at least one medication line with its dosage and duration.

A plain mail client shows the ``text/plain`` part, in French (default) or English; reading
refuses a message whose readable part does not say exactly what was signed (the subject
is a summary: relays may rewrite it, and RFC 2047 does not give every text back unchanged).
Who may send one is :func:`messaging.kinds.issuer.check_prescriber`, which the delivery
service applies with the directory's view of the sender.

Refusal codes: ``prescription-field-missing``, ``prescription-field-invalid``, plus those of
:mod:`messaging.kinds.issuer` and :mod:`messaging.kinds.parts`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from crypto import SigningKey, SigningPublicKey
from messaging.errors import InvalidMessage
from messaging.ins import QualifiedIdentity
from messaging.kinds.issuer import (
    Fields,
    Issuer,
    SignedKind,
    check_prescriber,
    format_day,
    issuer_json,
    issuer_line,
    new_reference,
    patient_json,
    patient_line,
    patient_name,
    signed_footer,
)
from messaging.types import Address, MessageKind

__all__ = [
    "SPEC",
    "STRUCTURED_TYPE",
    "SCHEMA_VERSION",
    "MAX_RENEWALS",
    "Issuer",
    "MedicationLine",
    "Prescription",
    "PrescriptionMessage",
    "build_prescription",
    "parse_prescription",
    "check_prescriber",
    "render_text",
    "prescription_subject",
]

STRUCTURED_TYPE = "application/vnd.pli.prescription+json"
SCHEMA_VERSION = 1
MAX_RENEWALS = 12
"""A prescription is renewable for at most a year of monthly deliveries."""
_KIND = MessageKind.PRESCRIPTION
_FIELDS = Fields(_KIND)
_SIGNED = SignedKind(_KIND, STRUCTURED_TYPE, SCHEMA_VERSION)
_MAX_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class MedicationLine:
    """One line of the prescription: what, how much and how often, for how long."""

    medication: str
    dosage: str
    duration: str
    quantity: str = ""
    code: str = ""
    """CIP13 or UCD code of the product, when the prescriber's software gives it."""
    instructions: str = ""
    substitutable: bool = True


@dataclass(frozen=True, slots=True)
class Prescription:
    """A prescription; construction refuses a missing or malformed required field."""

    prescriber: Issuer
    patient: QualifiedIdentity
    date: date
    items: tuple[MedicationLine, ...]
    reference: str = field(default_factory=new_reference)
    renewals: int = 0
    notes: str = ""

    def __post_init__(self) -> None:
        _FIELDS.check_issuer(self.prescriber)
        _FIELDS.check_patient(self.patient)
        _FIELDS.check_day(self.date, "the date")
        if not self.items:
            raise InvalidMessage(
                "prescription: at least one medication line is required", _FIELDS.missing
            )
        for number, line in enumerate(self.items, start=1):
            _FIELDS.text(line.medication, f"line {number}'s medication")
            _FIELDS.text(line.dosage, f"line {number}'s dosage")
            _FIELDS.text(line.duration, f"line {number}'s duration")
            _FIELDS.text(line.quantity, f"line {number}'s quantity", required=False)
            _FIELDS.text(line.code, f"line {number}'s code", required=False)
            _FIELDS.text(line.instructions, f"line {number}'s instructions", required=False)
            if not isinstance(line.substitutable, bool):
                raise InvalidMessage(
                    f"prescription: line {number}'s substitutable is not true or false",
                    _FIELDS.invalid,
                )
        # type() rather than isinstance(): JSON's true is a bool, and bool is an int.
        if type(self.renewals) is not int or not 0 <= self.renewals <= MAX_RENEWALS:
            raise InvalidMessage(
                f"prescription: renewals must be 0 to {MAX_RENEWALS}", _FIELDS.invalid
            )
        _FIELDS.text(self.reference, "the reference")
        _FIELDS.text(self.notes, "the notes", required=False, multiline=True)


@dataclass(frozen=True, slots=True)
class PrescriptionMessage:
    """A prescription sent from a mailbox to its recipients (a patient, a pharmacy…)."""

    sender: Address
    recipients: tuple[Address, ...]
    prescription: Prescription
    sender_name: str = ""
    test_ins: bool = False


def _content(message: PrescriptionMessage) -> dict[str, object]:
    p = message.prescription
    return {
        "type": _KIND.value,
        "version": SCHEMA_VERSION,
        "issuer_mailbox": str(message.sender),
        "reference": p.reference,
        "date": p.date.isoformat(),
        "prescriber": issuer_json(p.prescriber),
        "patient": patient_json(p.patient, test_ins=message.test_ins),
        "items": [
            {
                "medication": line.medication,
                "dosage": line.dosage,
                "duration": line.duration,
                "quantity": line.quantity,
                "code": line.code,
                "instructions": line.instructions,
                "substitutable": line.substitutable,
            }
            for line in p.items
        ],
        "renewals": p.renewals,
        "notes": p.notes,
    }


def prescription_subject(message: PrescriptionMessage, lang: str = "fr") -> str:
    p = message.prescription
    name = patient_name(p.patient)
    if lang == "fr":
        return f"Ordonnance du {format_day(p.date, lang)} pour {name}"
    return f"Prescription of {format_day(p.date, lang)} for {name}"


def render_text(message: PrescriptionMessage, lang: str = "fr") -> str:
    """The human-readable part: everything that is signed, in ``lang``."""
    p = message.prescription
    fr = lang == "fr"
    lines = [
        "ORDONNANCE" if fr else "PRESCRIPTION",
        f"{'Date : ' if fr else 'Date: '}{format_day(p.date, lang)}",
        f"{'Prescripteur : ' if fr else 'Prescriber: '}{issuer_line(p.prescriber, lang)}",
        f"{'Patient : ' if fr else 'Patient: '}{patient_line(p.patient, lang)}",
        "",
    ]
    for number, line in enumerate(p.items, start=1):
        lines.append(f"{number}. {line.medication}")
        lines.append(f"   {'Posologie : ' if fr else 'Dosage: '}{line.dosage}")
        lines.append(f"   {'Durée : ' if fr else 'Duration: '}{line.duration}")
        if line.quantity:
            lines.append(f"   {'Quantité : ' if fr else 'Quantity: '}{line.quantity}")
        if line.code:
            lines.append(f"   {'Code : ' if fr else 'Code: '}{line.code}")
        if not line.substitutable:
            lines.append("   Non substituable" if fr else "   Not substitutable")
        if line.instructions:
            lines.append(f"   {'Instructions : ' if fr else 'Instructions: '}{line.instructions}")
    if p.renewals:
        lines += [
            "",
            f"À renouveler {p.renewals} fois." if fr else f"Renewable {p.renewals} times.",
        ]
    if p.notes:
        lines += ["", p.notes]
    lines.append("")
    lines += signed_footer(
        p.reference, message.sender, lang, fr="Ordonnance signée", en="Prescription signed"
    )
    return "\n".join(lines) + "\n"


def build_prescription(
    message: PrescriptionMessage,
    key: SigningKey,
    *,
    message_id: str,
    date: datetime,
    lang: str = "fr",
) -> bytes:
    """The RFC 5322 bytes of ``message``, its structured part signed with ``key``."""
    return _SIGNED.build(
        message,
        _content(message),
        key,
        subject=prescription_subject(message, lang),
        text=render_text(message, lang),
        lang=lang,
        message_id=message_id,
        date=date,
    )


def _line(data: object, number: int) -> MedicationLine:
    if not isinstance(data, dict):
        raise InvalidMessage(f"prescription: line {number} is not an object", _FIELDS.invalid)
    substitutable = data.get("substitutable", True)
    if not isinstance(substitutable, bool):
        raise InvalidMessage(
            f"prescription: line {number}'s substitutable is not true or false", _FIELDS.invalid
        )
    return MedicationLine(
        medication=_FIELDS.get(data, "medication", f"line {number}'s medication"),
        dosage=_FIELDS.get(data, "dosage", f"line {number}'s dosage"),
        duration=_FIELDS.get(data, "duration", f"line {number}'s duration"),
        quantity=_FIELDS.get(data, "quantity", required=False),
        code=_FIELDS.get(data, "code", required=False),
        instructions=_FIELDS.get(data, "instructions", required=False),
        substitutable=substitutable,
    )


def _from_content(content: Mapping[str, object], *, allow_test_ins: bool) -> Prescription:
    items = content.get("items")
    if items is None or items == []:
        raise InvalidMessage(
            "prescription: at least one medication line is required", _FIELDS.missing
        )
    if not isinstance(items, list):
        raise InvalidMessage("prescription: items must be a list", _FIELDS.invalid)
    renewals = content.get("renewals", 0)
    return Prescription(
        prescriber=_FIELDS.issuer_from_json(_FIELDS.obj(content, "prescriber")),
        patient=_FIELDS.patient_from_json(
            _FIELDS.obj(content, "patient"), allow_test_ins=allow_test_ins
        ),
        date=_FIELDS.day(content.get("date"), "the date"),
        items=tuple(_line(item, n) for n, item in enumerate(items, start=1)),
        reference=_FIELDS.get(content, "reference", "the reference"),
        renewals=renewals,  # type: ignore[arg-type]  # checked by Prescription itself
        notes=_FIELDS.get(content, "notes", required=False, multiline=True),
    )


def parse_prescription(
    raw: bytes,
    signer: SigningPublicKey,
    *,
    max_bytes: int = _MAX_BYTES,
    allow_test_ins: bool = False,
) -> PrescriptionMessage:
    """Read a prescription, verified against ``signer`` (the sender's key in the directory)."""
    read = _SIGNED.read(raw, signer, max_bytes=max_bytes)
    message = PrescriptionMessage(
        sender=read.parts.sender,
        recipients=read.parts.recipients,
        prescription=_from_content(read.content, allow_test_ins=allow_test_ins),
        sender_name=read.parts.sender_name,
        test_ins=read.test_ins,
    )
    _SIGNED.check_read(read, _content(message), lambda lang: render_text(message, lang))
    return message


SPEC = _SIGNED.spec(description_fr="Ordonnance", description_en="Prescription")

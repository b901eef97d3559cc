"""``certificate``: a medical certificate, signed by its sender.

RFC 5322 / RFC 2045-2049 message (:mod:`messaging.kinds.parts`) whose structured part,
``application/vnd.pli.certificate+json; version=1``, is signed with the sender's Ed25519
mailbox key (RFC 8032; :mod:`messaging.kinds.issuer`). Required fields: the certifying
professional's RPPS (11 digits, Luhn key), name and profession (ANS TRE_G15), the patient's
qualified identity (INS with its OID and traits), the date, a title (what the certificate is:
"non contre-indication à la pratique du sport"…) and the statement itself; optionally the date
until which it holds.

The readable part (French by default, English available) must say exactly what was signed; the
subject is a summary (relays may rewrite it). Who may issue one is
:func:`messaging.kinds.issuer.check_prescriber` with ``kind=MessageKind.CERTIFICATE``.

Refusal codes: ``certificate-field-missing``, ``certificate-field-invalid``, plus those of
:mod:`messaging.kinds.issuer` and :mod:`messaging.kinds.parts`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message

from crypto import SigningKey, SigningPublicKey
from messaging.errors import InvalidMessage
from messaging.healthid import TEST_INS_OIDS
from messaging.ins import QualifiedIdentity
from messaging.kinds.base import KindSpec
from messaging.kinds.issuer import (
    Fields,
    Issuer,
    build_signed,
    check_text,
    format_day,
    issuer_json,
    issuer_line,
    patient_json,
    patient_line,
    read_signed,
)
from messaging.kinds.parts import has_part_type
from messaging.types import Address, MessageKind

__all__ = [
    "SPEC",
    "STRUCTURED_TYPE",
    "SCHEMA_VERSION",
    "Issuer",
    "Certificate",
    "CertificateMessage",
    "build_certificate",
    "parse_certificate",
    "render_text",
    "certificate_subject",
]

STRUCTURED_TYPE = "application/vnd.pli.certificate+json"
SCHEMA_VERSION = 1
_KIND = MessageKind.CERTIFICATE
_FIELDS = Fields(_KIND)
_MAX_BYTES = 1024 * 1024


def _new_reference() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _is_day(value: object) -> bool:
    # A datetime is a date too, but a certificate's dates are days.
    return isinstance(value, dt.date) and not isinstance(value, dt.datetime)


@dataclass(frozen=True, slots=True)
class Certificate:
    """A certificate; construction refuses a missing or malformed required field."""

    issuer: Issuer
    patient: QualifiedIdentity
    date: dt.date
    title: str
    statement: str
    valid_until: dt.date | None = None
    reference: str = field(default_factory=_new_reference)

    def __post_init__(self) -> None:
        _FIELDS.check_issuer(self.issuer)
        _FIELDS.check_patient(self.patient)
        if not _is_day(self.date):
            raise InvalidMessage("certificate: the date is not a date", _FIELDS.invalid)
        _FIELDS.text(self.title, "the title")
        _FIELDS.text(self.statement, "the statement", multiline=True)
        if self.valid_until is not None and (
            not _is_day(self.valid_until) or self.valid_until < self.date
        ):
            raise InvalidMessage(
                "certificate: valid_until is not a date on or after the certificate's date",
                _FIELDS.invalid,
            )
        _FIELDS.text(self.reference, "the reference")


@dataclass(frozen=True, slots=True)
class CertificateMessage:
    """A certificate sent from a mailbox to its recipients."""

    sender: Address
    recipients: tuple[Address, ...]
    certificate: Certificate
    sender_name: str = ""
    test_ins: bool = False


def _content(message: CertificateMessage) -> dict[str, object]:
    c = message.certificate
    return {
        "type": _KIND.value,
        "version": SCHEMA_VERSION,
        "issuer_mailbox": str(message.sender),
        "reference": c.reference,
        "date": c.date.isoformat(),
        "issuer": issuer_json(c.issuer),
        "patient": patient_json(c.patient, test_ins=message.test_ins),
        "title": c.title,
        "statement": c.statement,
        "valid_until": c.valid_until.isoformat() if c.valid_until else None,
    }


def certificate_subject(message: CertificateMessage, lang: str = "fr") -> str:
    c = message.certificate
    name = f"{c.patient.first_given_name} {c.patient.birth_name.upper()}"
    if lang == "fr":
        return f"Certificat : {c.title} — {name}, {format_day(c.date, lang)}"
    return f"Certificate: {c.title} — {name}, {format_day(c.date, lang)}"


def render_text(message: CertificateMessage, lang: str = "fr") -> str:
    """The human-readable part: everything that is signed, in ``lang``."""
    c = message.certificate
    fr = lang == "fr"
    lines = [
        f"CERTIFICAT — {c.title}" if fr else f"CERTIFICATE — {c.title}",
        f"{'Date : ' if fr else 'Date: '}{format_day(c.date, lang)}",
        f"{'Établi par : ' if fr else 'Issued by: '}{issuer_line(c.issuer, lang)}",
        f"{'Patient : ' if fr else 'Patient: '}{patient_line(c.patient, lang)}",
        "",
        c.statement,
        "",
    ]
    if c.valid_until is not None:
        lines.append(
            f"Valable jusqu'au {format_day(c.valid_until, lang)}."
            if fr
            else f"Valid until {format_day(c.valid_until, lang)}."
        )
    lines += [
        f"{'Référence : ' if fr else 'Reference: '}{c.reference}",
        (
            f"Certificat signé électroniquement (Ed25519) par {message.sender} ; "
            "la partie structurée jointe fait foi."
            if fr
            else f"Certificate signed electronically (Ed25519) by {message.sender}; "
            "the attached structured part is authoritative."
        ),
    ]
    return "\n".join(lines) + "\n"


def build_certificate(
    message: CertificateMessage,
    key: SigningKey,
    *,
    message_id: str,
    date: dt.datetime,
    lang: str = "fr",
) -> bytes:
    """The RFC 5322 bytes of ``message``, its structured part signed with ``key``."""
    if not message.recipients:
        raise InvalidMessage("a certificate needs a recipient", _FIELDS.missing)
    return build_signed(
        kind=_KIND,
        content=_content(message),
        key=key,
        sender=message.sender,
        recipients=message.recipients,
        subject=certificate_subject(message, lang),
        text=render_text(message, lang),
        lang=lang,
        message_id=message_id,
        date=date,
        sender_name=message.sender_name,
        structured_type=STRUCTURED_TYPE,
        schema_version=SCHEMA_VERSION,
    )


def _from_content(content: Mapping[str, object], *, allow_test_ins: bool) -> Certificate:
    until = content.get("valid_until")
    return Certificate(
        issuer=_FIELDS.issuer_from_json(_FIELDS.obj(content, "issuer")),
        patient=_FIELDS.patient_from_json(
            _FIELDS.obj(content, "patient"), allow_test_ins=allow_test_ins
        ),
        date=_FIELDS.day(content.get("date"), "the date"),
        title=_FIELDS.get(content, "title", "the title"),
        statement=_FIELDS.get(content, "statement", "the statement", multiline=True),
        valid_until=None if until is None else _FIELDS.day(until, "valid_until"),
        reference=_FIELDS.get(content, "reference", "the reference"),
    )


def parse_certificate(
    raw: bytes,
    signer: SigningPublicKey,
    *,
    max_bytes: int = _MAX_BYTES,
    allow_test_ins: bool = False,
) -> CertificateMessage:
    """Read a certificate, verified against ``signer`` (the sender's key in the directory)."""
    read = read_signed(
        raw,
        kind=_KIND,
        signer=signer,
        structured_type=STRUCTURED_TYPE,
        schema_version=SCHEMA_VERSION,
        max_bytes=max_bytes,
    )
    parts = read.parts
    patient = read.content.get("patient")
    oid = patient.get("ins_oid") if isinstance(patient, dict) else None
    message = CertificateMessage(
        sender=parts.sender,
        recipients=parts.recipients,
        certificate=_from_content(read.content, allow_test_ins=allow_test_ins),
        sender_name=parts.sender_name,
        test_ins=oid in TEST_INS_OIDS,
    )
    if _content(message) != read.content:
        raise InvalidMessage(
            "the signed certificate has fields Pli does not read", "structured-malformed"
        )
    check_text(parts, lambda lang: render_text(message, lang), _KIND)
    return message


def _recognises(msg: Message) -> bool:
    return has_part_type(msg, STRUCTURED_TYPE)


SPEC = KindSpec(
    kind=_KIND,
    schema_version=SCHEMA_VERSION,
    description_fr="Certificat",
    description_en="Certificate",
    recognises=_recognises,
)

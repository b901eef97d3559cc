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
from collections.abc import Mapping
from dataclasses import dataclass, field

from crypto import SigningKey, SigningPublicKey
from messaging.errors import InvalidMessage
from messaging.ins import QualifiedIdentity
from messaging.kinds.issuer import (
    Fields,
    Issuer,
    SignedKind,
    format_day,
    is_day,
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
_SIGNED = SignedKind(_KIND, STRUCTURED_TYPE, SCHEMA_VERSION)
_MAX_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Certificate:
    """A certificate; construction refuses a missing or malformed required field."""

    issuer: Issuer
    patient: QualifiedIdentity
    date: dt.date
    title: str
    statement: str
    valid_until: dt.date | None = None
    reference: str = field(default_factory=new_reference)

    def __post_init__(self) -> None:
        _FIELDS.check_issuer(self.issuer)
        _FIELDS.check_patient(self.patient)
        _FIELDS.check_day(self.date, "the date")
        _FIELDS.text(self.title, "the title")
        _FIELDS.text(self.statement, "the statement", multiline=True)
        if self.valid_until is not None and (
            not is_day(self.valid_until) or self.valid_until < self.date
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
    name = patient_name(c.patient)
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
    lines += signed_footer(
        c.reference, message.sender, lang, fr="Certificat signé", en="Certificate signed"
    )
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
    return _SIGNED.build(
        message,
        _content(message),
        key,
        subject=certificate_subject(message, lang),
        text=render_text(message, lang),
        lang=lang,
        message_id=message_id,
        date=date,
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
    read = _SIGNED.read(raw, signer, max_bytes=max_bytes)
    message = CertificateMessage(
        sender=read.parts.sender,
        recipients=read.parts.recipients,
        certificate=_from_content(read.content, allow_test_ins=allow_test_ins),
        sender_name=read.parts.sender_name,
        test_ins=read.test_ins,
    )
    _SIGNED.check_read(read, _content(message), lambda lang: render_text(message, lang))
    return message


SPEC = _SIGNED.spec(description_fr="Certificat", description_en="Certificate")

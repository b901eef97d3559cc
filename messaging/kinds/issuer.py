"""Who issues prescriptions and certificates, who may, and how their messages are signed.

Shared by :mod:`messaging.kinds.prescription` and :mod:`messaging.kinds.certificate`.

**Authorisation.** A prescription or a certificate is accepted only from a PER mailbox whose
owner's profession may issue it, or from an APP mailbox its organisation has authorised
(issue 4; DOMAIN.md, "Mailboxes and identifiers"). Professions are the ANS TRE_G15 codes of
the RPPS register. :func:`check_prescriber` is pure; the delivery service calls it with what
the directory says about the sender. The tables, and why each entry is there:

==== ======================= ============= ============= =====================================
code profession              prescription  certificate   basis (Code de la santé publique)
==== ======================= ============= ============= =====================================
10   Médecin                 full          full          L.4111-1, R.4127-8 and R.4127-76
40   Chirurgien-dentiste     limited       limited       L.4141-2: within dental practice
50   Sage-femme              limited       limited       L.4151-4: listed medicines, devices
21   Pharmacien              limited       —             L.5125-1-1 A: vaccines, some
                                                         antibiotics after a rapid test
==== ======================= ============= ============= =====================================

"Limited" passes here: the scope (which medicines) cannot be judged from a mailbox, and the
signed prescription names its prescriber, so the responsibility stays traceable. Other
professions with narrow rights of prescription (infirmiers 60, masseurs-kinésithérapeutes 70,
pédicures-podologues 80: medical devices) are left out of the default table on purpose; add
them with :data:`PRESCRIBERS` when their item lists are checked.

**Signature.** The structured part is ``{"content": {...}, "signature": {"algorithm":
"Ed25519", "value": <base64url>}}``. The signature (RFC 8032 Ed25519, through
:mod:`crypto`) is computed by the sender's mailbox key over ``SIGNATURE_CONTEXT || kind ||
0x00 || canonical_json(content)``: the context and the kind keep a signed prescription from
being replayed as any other signed object, and canonical JSON (sorted keys, no spaces, UTF-8,
no duplicate keys accepted) makes the signed bytes independent of how the part was encoded.
A reader verifies it against the sender's key from the directory, then checks that the
human-readable part says exactly what was signed, so what a clinician reads in any mail client
is what is non-repudiable.

Refusal codes: ``signature-missing``, ``signature-invalid``, ``issuer-mismatch``,
``text-mismatch``, ``unexpected-attachment``, ``structured-malformed``, ``structured-version``,
``<kind>-field-missing``, ``<kind>-field-invalid``, ``rpps-missing``, ``rpps-invalid``,
``ins-*``, ``ins-traits-mismatch``; violations of :func:`check_prescriber`:
``prescriber-mailbox-kind``, ``prescriber-profession-unknown``, ``prescriber-not-allowed``,
``prescriber-app-not-authorised``.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from email.message import Message
from enum import StrEnum
from typing import Protocol

from crypto import SigningKey, SigningPublicKey, verify_signature
from crypto.encoding import b64url_encode
from messaging.errors import InvalidMessage
from messaging.healthid import TEST_INS_OIDS, check_ins_oid, checked_ins, checked_rpps, ins_oid
from messaging.ins import InvalidINS, QualifiedIdentity, Sex
from messaging.kinds.base import KindSpec
from messaging.kinds.parts import (
    TypedParts,
    build_typed_message,
    canonical_json,
    has_part_type,
    read_typed_message,
)
from messaging.rules import Violation
from messaging.types import Address, MailboxKind, MessageKind

__all__ = [
    "Authority",
    "PRESCRIBERS",
    "CERTIFIERS",
    "PROFESSIONS",
    "SIGNATURE_CONTEXT",
    "Issuer",
    "check_prescriber",
    "signed_bytes",
]

SIGNATURE_CONTEXT = b"Pli signed structured part v1\x00"
SIGNATURE_ALGORITHM = "Ed25519"
_B64URL_SIGNATURE = re.compile(r"^[A-Za-z0-9_-]{86}$")  # 64 bytes, unpadded


class Authority(StrEnum):
    FULL = "full"
    LIMITED = "limited"


PROFESSIONS: Mapping[str, tuple[str, str]] = {
    "10": ("Médecin", "Physician"),
    "21": ("Pharmacien", "Pharmacist"),
    "40": ("Chirurgien-dentiste", "Dental surgeon"),
    "50": ("Sage-femme", "Midwife"),
    "60": ("Infirmier", "Nurse"),
    "70": ("Masseur-kinésithérapeute", "Physiotherapist"),
    "80": ("Pédicure-podologue", "Podiatrist"),
}
"""Labels of the TRE_G15 codes Pli shows; other codes are shown as their number."""

PRESCRIBERS: Mapping[str, Authority] = {
    "10": Authority.FULL,
    "40": Authority.LIMITED,
    "50": Authority.LIMITED,
    "21": Authority.LIMITED,
}
CERTIFIERS: Mapping[str, Authority] = {
    "10": Authority.FULL,
    "40": Authority.LIMITED,
    "50": Authority.LIMITED,
}
_TABLES = {MessageKind.PRESCRIPTION: PRESCRIBERS, MessageKind.CERTIFICATE: CERTIFIERS}


def check_prescriber(
    mailbox_kind: MailboxKind,
    profession_code: str | None,
    app_authorised: bool,
    *,
    kind: MessageKind = MessageKind.PRESCRIPTION,
    table: Mapping[str, Authority] | None = None,
) -> list[Violation]:
    """Whether a mailbox may issue a prescription (or a certificate, with ``kind``).

    ``profession_code`` is the TRE_G15 profession of a PER mailbox's owner, or of the
    professional an APP mailbox issues for when it is known; ``app_authorised`` is the
    organisation's authorisation of an APP mailbox. Returns the violations, empty when allowed.
    """
    if kind not in _TABLES:
        raise ValueError(f"{kind.value} is not issued by prescribers")
    allowed = table if table is not None else _TABLES[kind]
    what = "prescriptions" if kind is MessageKind.PRESCRIPTION else "certificates"
    code = (profession_code or "").strip()
    if mailbox_kind is MailboxKind.PER:
        if not code:
            return [
                Violation(
                    "prescriber-profession-unknown",
                    f"the sender's profession is unknown, so it may not issue {what}",
                )
            ]
        if code not in allowed:
            return [
                Violation("prescriber-not-allowed", f"{_profession(code)} may not issue {what}")
            ]
        return []
    if mailbox_kind is MailboxKind.APP:
        violations: list[Violation] = []
        if not app_authorised:
            violations.append(
                Violation(
                    "prescriber-app-not-authorised",
                    f"this application is not authorised by its organisation to send {what}",
                )
            )
        if code and code not in allowed:
            violations.append(
                Violation("prescriber-not-allowed", f"{_profession(code)} may not issue {what}")
            )
        return violations
    return [
        Violation(
            "prescriber-mailbox-kind",
            f"{what} come only from personal (PER) or authorised application (APP) mailboxes, "
            f"not from a {mailbox_kind.value} mailbox",
        )
    ]


def _profession(code: str) -> str:
    label = PROFESSIONS.get(code)
    return f"{label[0]} ({code})" if label else f"profession {code}"


def profession_label(code: str, lang: str) -> str:
    label = PROFESSIONS.get(code)
    if label is None:
        return code
    return label[0] if lang == "fr" else label[1]


# --- the issuer and the values both kinds share --------------------------------------------


@dataclass(frozen=True, slots=True)
class Issuer:
    """The professional who issues a prescription or certificate, as printed on it."""

    rpps: str
    name: str
    profession_code: str
    specialty: str = ""
    organisation: str = ""


class Fields:
    """Checks and JSON reading with the refusal codes of one kind (``<kind>-field-*``)."""

    def __init__(self, kind: MessageKind) -> None:
        self.kind = kind
        self.missing = f"{kind.value}-field-missing"
        self.invalid = f"{kind.value}-field-invalid"

    def text(
        self, value: object, what: str, *, required: bool = True, multiline: bool = False
    ) -> str:
        if not isinstance(value, str):
            raise InvalidMessage(f"{self.kind.value}: {what} must be text", self.invalid)
        if required and not value.strip():
            raise InvalidMessage(f"{self.kind.value}: {what} is missing", self.missing)
        allowed = value.replace("\n", "") if multiline else value
        if not allowed.isprintable():
            raise InvalidMessage(f"{self.kind.value}: {what} has control characters", self.invalid)
        return value

    def get(self, data: Mapping[str, object], key: str, what: str | None = None, **kw: bool) -> str:
        if key not in data and kw.get("required", True):
            raise InvalidMessage(f"{self.kind.value}: {what or key} is missing", self.missing)
        return self.text(data.get(key, ""), what or key, **kw)

    def obj(self, data: Mapping[str, object], key: str) -> Mapping[str, object]:
        value = data.get(key)
        if value is None:
            raise InvalidMessage(f"{self.kind.value}: {key} is missing", self.missing)
        if not isinstance(value, dict):
            raise InvalidMessage(f"{self.kind.value}: {key} must be an object", self.invalid)
        return value

    def check_day(self, value: object, what: str) -> None:
        # A datetime is a date too, but the dates of prescriptions and certificates are days.
        if not is_day(value):
            raise InvalidMessage(f"{self.kind.value}: {what} is not a date", self.invalid)

    def day(self, value: object, what: str) -> date:
        if value is None or value == "":
            raise InvalidMessage(f"{self.kind.value}: {what} is missing", self.missing)
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        raise InvalidMessage(f"{self.kind.value}: {what} is not a date", self.invalid)

    def check_issuer(self, issuer: Issuer) -> None:
        checked_rpps(issuer.rpps)
        self.text(issuer.name, "the issuer's name")
        self.text(issuer.profession_code, "the issuer's profession")
        if not (issuer.profession_code.isascii() and issuer.profession_code.isdecimal()):
            raise InvalidMessage(
                f"{self.kind.value}: profession code {issuer.profession_code!r} is not a number",
                self.invalid,
            )
        self.text(issuer.specialty, "the issuer's specialty", required=False)
        self.text(issuer.organisation, "the issuer's organisation", required=False)

    def check_patient(self, patient: object) -> None:
        if not isinstance(patient, QualifiedIdentity):
            raise InvalidMessage(
                f"{self.kind.value}: the patient needs a qualified identity (INS and traits)",
                self.missing,
            )
        self.text(patient.birth_name, "the patient's birth name")
        self.text(patient.first_given_name, "the patient's first given name")

    def issuer_from_json(self, data: Mapping[str, object]) -> Issuer:
        issuer = Issuer(
            rpps=self.get(data, "rpps", "the issuer's RPPS", required=False),
            name=self.get(data, "name", "the issuer's name"),
            profession_code=self.get(data, "profession_code", "the issuer's profession"),
            specialty=self.get(data, "specialty", required=False),
            organisation=self.get(data, "organisation", required=False),
        )
        self.check_issuer(issuer)
        return issuer

    def patient_from_json(
        self, data: Mapping[str, object], *, allow_test_ins: bool
    ) -> QualifiedIdentity:
        raw_ins = data.get("ins")
        ins = checked_ins(raw_ins if isinstance(raw_ins, str) else None)
        oid = self.get(data, "ins_oid", "the INS OID")
        check_ins_oid(ins, oid, allow_test=allow_test_ins)
        sex = self.get(data, "sex", "the patient's sex")
        if sex not in ("M", "F"):
            raise InvalidMessage(f"{self.kind.value}: sex {sex!r} is not M or F", self.invalid)
        try:
            return QualifiedIdentity(
                ins=ins,
                birth_name=self.get(data, "birth_name", "the patient's birth name"),
                first_given_name=self.get(
                    data, "first_given_name", "the patient's first given name"
                ),
                birth_date=self.day(data.get("birth_date"), "the patient's birth date"),
                sex=Sex(sex),
            )
        except InvalidINS as exc:
            raise InvalidMessage(str(exc), "ins-traits-mismatch") from None


def new_reference() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def is_day(value: object) -> bool:
    return isinstance(value, date) and not isinstance(value, datetime)


def issuer_json(issuer: Issuer) -> dict[str, object]:
    return {
        "rpps": issuer.rpps,
        "name": issuer.name,
        "profession_code": issuer.profession_code,
        "specialty": issuer.specialty,
        "organisation": issuer.organisation,
    }


def patient_json(patient: QualifiedIdentity, *, test_ins: bool) -> dict[str, object]:
    return {
        "ins": str(patient.ins),
        "ins_oid": ins_oid(patient.ins, test=test_ins),
        "birth_name": patient.birth_name,
        "first_given_name": patient.first_given_name,
        "birth_date": patient.birth_date.isoformat(),
        "sex": patient.sex.value,
    }


def patient_name(patient: QualifiedIdentity) -> str:
    return f"{patient.first_given_name} {patient.birth_name.upper()}"


def patient_line(patient: QualifiedIdentity, lang: str) -> str:
    name = patient_name(patient)
    if lang == "fr":
        born = "née" if patient.sex is Sex.FEMALE else "né"
        return (
            f"{name}, {born} le {patient.birth_date.strftime('%d/%m/%Y')}, "
            f"sexe {patient.sex.value}, INS {patient.ins}"
        )
    return (
        f"{name}, born {patient.birth_date.isoformat()}, sex {patient.sex.value}, INS {patient.ins}"
    )


def issuer_line(issuer: Issuer, lang: str) -> str:
    details = [issuer.name, f"RPPS {issuer.rpps}", profession_label(issuer.profession_code, lang)]
    details += [d for d in (issuer.specialty, issuer.organisation) if d]
    return " — ".join(details)


def format_day(day: date, lang: str) -> str:
    return day.strftime("%d/%m/%Y") if lang == "fr" else day.isoformat()


def signed_footer(reference: str, sender: Address, lang: str, *, fr: str, en: str) -> list[str]:
    """The last lines of the readable part; ``fr``/``en`` say what is signed ("Ordonnance
    signée", "Prescription signed")."""
    if lang == "fr":
        return [
            f"Référence : {reference}",
            f"{fr} électroniquement (Ed25519) par {sender} ; la partie structurée jointe fait foi.",
        ]
    return [
        f"Reference: {reference}",
        f"{en} electronically (Ed25519) by {sender}; "
        "the attached structured part is authoritative.",
    ]


# --- signing and verifying the structured part ---------------------------------------------


def signed_bytes(kind: MessageKind, content: Mapping[str, object]) -> bytes:
    """The bytes a sender signs for ``content`` of ``kind``."""
    return SIGNATURE_CONTEXT + kind.value.encode("ascii") + b"\x00" + canonical_json(content)


def _signature_of(structured: Mapping[str, object]) -> bytes:
    signature = structured.get("signature")
    if signature is None:
        raise InvalidMessage("the structured part is not signed", "signature-missing")
    if (
        not isinstance(signature, dict)
        or set(signature) != {"algorithm", "value"}
        or signature.get("algorithm") != SIGNATURE_ALGORITHM
        or not isinstance(signature.get("value"), str)
        or not _B64URL_SIGNATURE.match(str(signature["value"]))
    ):
        raise InvalidMessage(
            f"the signature is not a single {SIGNATURE_ALGORITHM} signature in base64url",
            "signature-invalid",
        )
    try:
        return base64.urlsafe_b64decode(str(signature["value"]) + "==")
    except (binascii.Error, ValueError):  # pragma: no cover - the pattern admits only base64url
        raise InvalidMessage("the signature is not base64url", "signature-invalid") from None


def build_signed(
    *,
    kind: MessageKind,
    content: Mapping[str, object],
    key: SigningKey,
    sender: Address,
    recipients: Sequence[Address],
    subject: str,
    text: str,
    lang: str,
    message_id: str,
    date: datetime,
    sender_name: str,
    structured_type: str,
    schema_version: int,
) -> bytes:
    """A typed message whose structured part is ``content`` signed by ``key``."""
    signature = key.sign(signed_bytes(kind, content))
    structured = {
        "content": dict(content),
        "signature": {"algorithm": SIGNATURE_ALGORITHM, "value": b64url_encode(signature)},
    }
    return build_typed_message(
        kind=kind,
        sender=sender,
        sender_name=sender_name,
        recipients=recipients,
        subject=subject,
        text=text,
        language=lang,
        structured=structured,
        structured_type=structured_type,
        structured_version=schema_version,
        structured_filename=f"pli-{kind.value}.json",
        files=(),
        message_id=message_id,
        date=date,
    )


@dataclass(frozen=True, slots=True)
class SignedRead:
    """A verified signed message: its MIME parts and its signed content."""

    parts: TypedParts
    content: Mapping[str, object]

    @property
    def test_ins(self) -> bool:
        """Whether the signed patient's INS carries a test OID."""
        patient = self.content.get("patient")
        oid = patient.get("ins_oid") if isinstance(patient, dict) else None
        return oid in TEST_INS_OIDS


def read_signed(
    raw: bytes,
    *,
    kind: MessageKind,
    signer: SigningPublicKey,
    structured_type: str,
    schema_version: int,
    max_bytes: int,
) -> SignedRead:
    """Parse a signed typed message and verify its signature and sender; content unchecked."""
    parts = read_typed_message(
        raw,
        kind=kind,
        structured_type=structured_type,
        structured_version=schema_version,
        max_bytes=max_bytes,
    )
    structured = parts.structured or {}
    content = structured.get("content")
    if not isinstance(content, dict) or not set(structured) <= {"content", "signature"}:
        raise InvalidMessage("the structured part is {content, signature}", "structured-malformed")
    signature = _signature_of(structured)
    if not verify_signature(signer, signed_bytes(kind, content), signature):
        raise InvalidMessage(
            f"the {kind.value} is not signed by the sender's key", "signature-invalid"
        )
    # Only now is the content the sender's word; check what it says.
    if content.get("type") != kind.value or content.get("version") != schema_version:
        raise InvalidMessage(
            f"the signed content is not a {kind.value} of version {schema_version}",
            "structured-version",
        )
    if content.get("issuer_mailbox") != str(parts.sender):
        raise InvalidMessage(
            f"the {kind.value} was signed for {content.get('issuer_mailbox')!r} but sent by "
            f"{parts.sender}",
            "issuer-mismatch",
        )
    if parts.layout != ("multipart/mixed", "text/plain", structured_type):
        # Anything else (a file, an HTML alternative a mail client would show instead of the
        # text) would be unsigned content riding along with signed content.
        raise InvalidMessage(
            f"a {kind.value} is its readable text and its signed part, nothing else "
            f"(found {', '.join(parts.layout)})",
            "unexpected-attachment",
        )
    return SignedRead(parts, content)


def check_text(parts: TypedParts, render: Callable[[str], str], kind: MessageKind) -> None:
    """Refuse a human-readable part that does not say what was signed (``text-mismatch``)."""
    lang = parts.language if parts.language in ("fr", "en") else "fr"
    if parts.text != render(lang):
        raise InvalidMessage(
            f"the readable part of the {kind.value} differs from its signed content",
            "text-mismatch",
        )


# --- one signed kind: its messages built, read and recognised ------------------------------


class SignedMessage(Protocol):
    """What :meth:`SignedKind.build` needs of a prescription or certificate message."""

    @property
    def sender(self) -> Address: ...
    @property
    def recipients(self) -> tuple[Address, ...]: ...
    @property
    def sender_name(self) -> str: ...


@dataclass(frozen=True, slots=True)
class SignedKind:
    """A kind whose structured part is signed: ``structured_type`` at ``schema_version``."""

    kind: MessageKind
    structured_type: str
    schema_version: int

    def build(
        self,
        message: SignedMessage,
        content: Mapping[str, object],
        key: SigningKey,
        *,
        subject: str,
        text: str,
        lang: str,
        message_id: str,
        date: datetime,
    ) -> bytes:
        """The RFC 5322 bytes of ``message`` (with ``content``), signed with ``key``."""
        if not message.recipients:
            raise InvalidMessage(
                f"a {self.kind.value} needs a recipient", f"{self.kind.value}-field-missing"
            )
        return build_signed(
            kind=self.kind,
            content=content,
            key=key,
            sender=message.sender,
            recipients=message.recipients,
            subject=subject,
            text=text,
            lang=lang,
            message_id=message_id,
            date=date,
            sender_name=message.sender_name,
            structured_type=self.structured_type,
            schema_version=self.schema_version,
        )

    def read(self, raw: bytes, signer: SigningPublicKey, *, max_bytes: int) -> SignedRead:
        """:func:`read_signed` for this kind."""
        return read_signed(
            raw,
            kind=self.kind,
            signer=signer,
            structured_type=self.structured_type,
            schema_version=self.schema_version,
            max_bytes=max_bytes,
        )

    def check_read(
        self, read: SignedRead, content: Mapping[str, object], render: Callable[[str], str]
    ) -> None:
        """Refuse a read whose signed content is not ``content`` as Pli writes it, or whose
        readable part is not ``render`` of it."""
        if content != read.content:
            # Unknown keys or values in another form than Pli writes: what was signed would not
            # be exactly what is shown.
            raise InvalidMessage(
                f"the signed {self.kind.value} has fields Pli does not read",
                "structured-malformed",
            )
        check_text(read.parts, render, self.kind)

    def recognises(self, msg: Message) -> bool:
        return has_part_type(msg, self.structured_type)

    def spec(self, *, description_fr: str, description_en: str) -> KindSpec:
        return KindSpec(
            kind=self.kind,
            schema_version=self.schema_version,
            description_fr=description_fr,
            description_en=description_en,
            recognises=self.recognises,
        )

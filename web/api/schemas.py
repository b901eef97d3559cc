"""Request and response bodies of the application API (pydantic, hence OpenAPI 3.1).

Request models forbid unknown members, so a typo is a 422 naming the field rather than a
silently ignored value. Patient identities are the INS and its traits (DOMAIN.md); the
issuer of a prescription or a certificate is the professional named on it.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "SendIn",
    "PatientIn",
    "IssuerIn",
    "NoteIn",
    "MedicationLineIn",
    "PrescriptionIn",
    "CertificateIn",
    "AppointmentIn",
    "DocumentItemIn",
    "DocumentIn",
    "RecipientStatusOut",
    "SentOut",
    "MessageOut",
    "MessageListOut",
    "FlagsIn",
    "WebhookIn",
    "WebhookOut",
    "WebhookListOut",
    "WebhookDeliveryOut",
    "WebhookDeliveryListOut",
    "SigningKeyOut",
    "REQUEST_MODELS",
]

_Address = Field(min_length=3, max_length=320, description="A mailbox address")
_Text = Field(min_length=1, max_length=998)
_Lang = Literal["fr", "en"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PatientIn(_In):
    ins: str = Field(min_length=15, max_length=15, description="INS (NIR or NIA + key)")
    ins_oid: str | None = Field(default=None, max_length=64, description="Default: from the INS")
    birth_name: str = _Text
    first_given_name: str = _Text
    birth_date: dt.date
    sex: Literal["M", "F"]


class IssuerIn(_In):
    rpps: str = Field(min_length=11, max_length=11, description="RPPS number")
    name: str = _Text
    profession_code: str = Field(min_length=1, max_length=8, description="e.g. 10 (médecin)")
    specialty: str = Field(default="", max_length=200)
    organisation: str = Field(default="", max_length=200)


class SendIn(_In):
    """What every send has: recipients, an optional thread, the language of the text."""

    to: list[str] = Field(min_length=1, max_length=100, description="Recipient addresses")
    thread_id: str | None = Field(default=None, min_length=1, max_length=128)
    lang: _Lang = "fr"


class NoteIn(SendIn):
    subject: str = Field(min_length=1, max_length=998)
    body: str = Field(max_length=1_000_000)


class MedicationLineIn(_In):
    medication: str = _Text
    dosage: str = _Text
    duration: str = _Text
    quantity: str = Field(default="", max_length=998)
    code: str = Field(default="", max_length=32)
    instructions: str = Field(default="", max_length=998)
    substitutable: bool = True


class PrescriptionIn(SendIn):
    prescriber: IssuerIn
    patient: PatientIn
    date: dt.date
    items: list[MedicationLineIn] = Field(min_length=1, max_length=100)
    renewals: int = Field(default=0, ge=0, le=12)
    notes: str = Field(default="", max_length=10_000)
    reference: str | None = Field(default=None, min_length=1, max_length=64)
    test_ins: bool = False


class CertificateIn(SendIn):
    issuer: IssuerIn
    patient: PatientIn
    date: dt.date
    title: str = _Text
    statement: str = Field(min_length=1, max_length=10_000)
    valid_until: dt.date | None = None
    reference: str | None = Field(default=None, min_length=1, max_length=64)
    test_ins: bool = False


class AppointmentIn(SendIn):
    summary: str = _Text
    start: dt.datetime = Field(description="With its UTC offset")
    end: dt.datetime = Field(description="With its UTC offset")
    tzid: str = Field(default="Europe/Paris", max_length=64)
    location: str = Field(default="", max_length=998)
    description: str = Field(default="", max_length=10_000)
    uid: str | None = Field(default=None, min_length=1, max_length=255)


class DocumentItemIn(_In):
    title: str = _Text
    type_code: str = Field(min_length=1, max_length=32, description="LOINC code, e.g. 11488-4")
    date: dt.date
    pdf: str = Field(min_length=1, max_length=64, description="Name of the multipart file part")
    cda: str | None = Field(default=None, min_length=1, max_length=64)
    type_label: str = Field(default="", max_length=200)


class DocumentIn(SendIn):
    patient: PatientIn
    documents: list[DocumentItemIn] = Field(min_length=1, max_length=50)
    comment: str = Field(default="", max_length=10_000)
    test_ins: bool = False


class RecipientStatusOut(BaseModel):
    address: str
    status: Literal["delivered", "read"]
    delivered_at: dt.datetime
    read_at: dt.datetime | None = None


class SentOut(BaseModel):
    id: str = Field(description="The envelope id")
    thread_id: str
    kind: str
    provenance: Literal["gateway", "e2e"]
    recipients: list[RecipientStatusOut]


class MessageOut(BaseModel):
    folder: str
    uid: int
    envelope_id: str
    thread_id: str
    kind: str
    sender: str
    provenance: str
    date: dt.datetime
    size: int
    flags: list[str]


class MessageListOut(BaseModel):
    folder: str
    messages: list[MessageOut]


class FlagsIn(_In):
    add: list[str] = Field(default_factory=list, max_length=20)
    remove: list[str] = Field(default_factory=list, max_length=20)


class WebhookIn(_In):
    url: str = Field(min_length=8, max_length=2000)
    events: list[
        Literal["message.delivered", "message.read", "message.received", "receipt.received"]
    ] = Field(min_length=1, max_length=4)


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    created_at: dt.datetime


class WebhookListOut(BaseModel):
    webhooks: list[WebhookOut]


class WebhookDeliveryOut(BaseModel):
    id: str
    webhook_id: str
    event: str
    state: Literal["pending", "delivered", "failed"]
    attempts: int
    last_status: int | None
    last_error: str
    created_at: dt.datetime
    next_attempt_at: dt.datetime
    delivered_at: dt.datetime | None
    payload: str


class WebhookDeliveryListOut(BaseModel):
    deliveries: list[WebhookDeliveryOut]


class SigningKeyOut(BaseModel):
    algorithm: Literal["Ed25519"]
    key: str = Field(description="The raw public key, base64url without padding")


REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    NoteIn,
    PrescriptionIn,
    CertificateIn,
    AppointmentIn,
    DocumentIn,
)
"""Bodies read by hand (JSON or multipart): added to the OpenAPI components explicitly."""

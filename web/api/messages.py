"""``/v1/messages``: typed sends, raw MIME, client-sealed envelopes, per-recipient status.

Typed sends (``notes``, ``prescriptions``, ``certificates``, ``appointments``,
``documents``) take the message's fields as JSON (``application/json``) or, with files, as
``multipart/form-data`` with the same JSON in a ``metadata`` part plus file parts (uploads
stream to disk, :mod:`web.uploads`). The server validates, builds the national MIME with
the builders of :mod:`messaging.kinds` (XDM archive and ``X-MSS-*`` headers for documents,
signed structured parts for prescriptions and certificates, signed with the client
mailbox's own key), seals it for each recipient with ``gateway`` provenance
(:meth:`messaging.service.DeliveryService.receive`, :class:`crypto.GatewayInfo` naming the
client as ``api:<client_id>``), keeps a Sent copy in the client's mailbox, and answers
``201`` only after the commit, with the envelope id and each recipient's status.

``mime`` takes an RFC 5322 message as is (its ``From`` must be the client's mailbox);
``sealed`` takes an envelope sealed on the client's machine (:mod:`messaging.sealed`,
``e2e`` provenance; see ``web/client``).

Every POST here requires ``Idempotency-Key`` (:mod:`web.idempotency`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import email.policy
import email.utils
import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

import crypto
from messaging.api_clients import Scope, SentRecipient
from messaging.errors import InvalidAddress, InvalidMessage, RuleViolation, UnknownMailbox
from messaging.healthid import ins_oid
from messaging.ins import Ins, InvalidINS, QualifiedIdentity
from messaging.kinds import declared_kind
from messaging.kinds.appointment import build_appointment, new_request
from messaging.kinds.certificate import Certificate, CertificateMessage, build_certificate
from messaging.kinds.document import DocumentMessage, HealthDocument, build_document
from messaging.kinds.issuer import Fields
from messaging.kinds.prescription import (
    MedicationLine,
    Prescription,
    PrescriptionMessage,
    build_prescription,
)
from messaging.mime import Attachment, Draft, build_message
from messaging.service import Submitted
from messaging.types import Address, MessageKind, Provenance
from web.api.context import ApiContext, ApiDep
from web.api.schemas import (
    AppointmentIn,
    CertificateIn,
    DocumentIn,
    NoteIn,
    PatientIn,
    PrescriptionIn,
    RecipientStatusOut,
    SendIn,
    SentOut,
)
from web.idempotency import IDEMPOTENCY_HEADER, check_key, idempotent
from web.oauth import CurrentGrant, Grant, certificate_thumbprint, require_scope
from web.problems import PROBLEM_JSON, ApiError, FieldError
from web.uploads import Upload, UploadedFile, receive_multipart, receive_raw, require_type
from web.webhooks import delivered_events

__all__ = ["router"]

router = APIRouter(prefix="/v1/messages", tags=["messages"])

_M = TypeVar("_M", bound=SendIn)
_PDF = "application/pdf"
_HEADER_SECTION = 256 * 1024

IdempotencyKey = Annotated[
    str,
    Header(
        alias=IDEMPOTENCY_HEADER,
        min_length=1,
        max_length=255,
        description="A unique key per logical request: a retry with the same key and body "
        "returns the first answer and never delivers twice",
    ),
]

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "content": {PROBLEM_JSON: {}}}
    for status, text in (
        (400, "Malformed request or missing header"),
        (401, "No or bad token"),
        (403, "The token lacks the scope"),
        (409, "The same Idempotency-Key is being processed"),
        (413, "The request or the message is too large"),
        (415, "Unsupported media type"),
        (422, "Invalid field, unknown recipient, refused content, reused Idempotency-Key"),
        (429, "Rate limit or daily quota reached"),
    )
}


def _body_spec(model: type[BaseModel], *, files: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["metadata"],
                        "properties": {
                            "metadata": {
                                "type": "string",
                                "description": f"The {model.__name__} JSON",
                            },
                            "attachment": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                                "description": files,
                            },
                        },
                    }
                },
            },
        }
    }


# -- reading the request ----------------------------------------------------------------------


def _validation_error(exc: ValidationError, prefix: str = "") -> ApiError:
    errors = []
    for error in exc.errors():
        name = ".".join(str(p) for p in error.get("loc", ())) or "body"
        name = f"{prefix}{name}" if prefix else name
        errors.append(FieldError(name, f"{name}: {error.get('msg', 'invalid')}", "body"))
    return ApiError(422, "Invalid field", "; ".join(e.message for e in errors), errors)


async def _read_json(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "Request too large", f"a JSON body is at most {limit} bytes")
    chunks = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise ApiError(413, "Request too large", f"a JSON body is at most {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_send(
    request: Request, api: ApiContext, model: type[_M]
) -> tuple[_M, Upload | None, str]:
    """The typed fields, the uploaded files (multipart) and the body's SHA-256."""
    settings = api.settings
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    upload: Upload | None = None
    try:
        async with asyncio.timeout(settings.request_timeout_seconds):
            if content_type == "application/json":
                raw = await _read_json(request, settings.max_json_size)
                digest = hashlib.sha256(raw).hexdigest()
                text = raw
            elif content_type == "multipart/form-data":
                upload = await receive_multipart(
                    request,
                    max_total=settings.max_request_size,
                    max_field_size=settings.max_json_size,
                    directory=settings.upload_dir,
                )
                digest = upload.digest
                metadata = upload.fields.get("metadata")
                if metadata is None:
                    raise ApiError(
                        422,
                        "Invalid field",
                        "the metadata part (the message's JSON) is missing",
                        [FieldError("metadata", "required", "body")],
                    )
                text = metadata.encode("utf-8")
            else:
                raise ApiError(
                    415,
                    "Unsupported media type",
                    "send application/json, or multipart/form-data with files",
                    [
                        FieldError(
                            "Content-Type", "application/json or multipart/form-data", "header"
                        )
                    ],
                )
    except TimeoutError:
        if upload is not None:
            upload.close()
        raise ApiError(408, "Request timeout", "the request body arrived too slowly") from None
    try:
        return model.model_validate_json(text), upload, digest
    except ValidationError as exc:
        if upload is not None:
            upload.close()
        raise _validation_error(exc) from None


def _recipients(values: list[str], field: str = "to") -> tuple[Address, ...]:
    found = []
    for index, value in enumerate(values):
        try:
            found.append(Address.parse(value))
        except InvalidAddress as exc:
            name = f"{field}[{index}]"
            error = [FieldError(name, str(exc), "body")]
            raise ApiError(422, "Invalid field", str(exc), error) from None
    return tuple(found)


def _patient(data: PatientIn, kind: MessageKind, test_ins: bool) -> QualifiedIdentity:
    try:
        oid = data.ins_oid or ins_oid(Ins.parse(data.ins), test=test_ins)
    except InvalidINS as exc:
        raise ApiError(
            422, "Invalid field", str(exc), [FieldError("patient.ins", str(exc), "body")]
        ) from None
    payload = data.model_dump(mode="json")
    payload["ins_oid"] = oid
    return Fields(kind).patient_from_json(payload, allow_test_ins=test_ins)


def _field_of(code: str) -> str:
    if code.startswith(("ins", "patient")):
        return "patient"
    if code.startswith("rpps"):
        return "prescriber"
    if code.startswith("cda"):
        return "documents.cda"
    if code.startswith(("pdf", "xdm")):
        return "documents.pdf"
    return code.split("-field-")[0] if "-field-" in code else "body"


def _domain_error(exc: Exception) -> ApiError:
    if isinstance(exc, UnknownMailbox):
        return ApiError(422, "Unknown recipient", str(exc), [FieldError("to", str(exc), "body")])
    if isinstance(exc, RuleViolation):
        field = "to" if "recipient" in exc.code else exc.code
        return ApiError(
            422, "Refused by the rules", str(exc), [FieldError(field, str(exc), "body")]
        )
    if isinstance(exc, InvalidMessage):
        if exc.code == "too-large":
            return ApiError(413, "Message too large", str(exc))
        field = _field_of(exc.code)
        return ApiError(
            422, "Invalid message", f"{exc} ({exc.code})", [FieldError(field, str(exc), "body")]
        )
    if isinstance(exc, InvalidINS):
        return ApiError(422, "Invalid field", str(exc), [FieldError("patient", str(exc), "body")])
    raise exc


def _attachments(upload: Upload | None, kind: str) -> list[Attachment]:
    if upload is None:
        return []
    found = []
    for item in upload.files:
        if item.field != "attachment":
            raise ApiError(
                422,
                "Invalid field",
                f"unexpected file part {item.field!r}; files go in 'attachment' parts",
                [FieldError(item.field, "unexpected file part", "body")],
            )
        if item.declared_type == _PDF or item.filename.lower().endswith(".pdf"):
            require_type(item, _PDF, what=f"the {kind}'s attachment {item.filename!r}")
        found.append(Attachment(item.filename or "attachment", item.read()))
    return found


def _no_files(upload: Upload | None, kind: str) -> None:
    """A signed kind is its text and its signed part only (:mod:`messaging.kinds.issuer`):
    an unsigned file riding along would pass for signed content. Send PDFs as a document."""
    if upload is not None and upload.files:
        first = upload.files[0].field
        raise ApiError(
            422,
            "Invalid field",
            f"a {kind} carries no files (send the PDF as a document message)",
            [FieldError(first, f"a {kind} carries no files", "body")],
        )


# -- submitting --------------------------------------------------------------------------------


async def _check_quota(api: ApiContext, grant: Grant) -> None:
    quota = grant.client.daily_quota
    if quota is None:
        return
    now = api.services.clock.now()
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    used = await api.services.state.count_sends_since(grant.client.client_id, midnight)
    if used >= quota:
        retry = int((midnight + timedelta(days=1) - now).total_seconds()) + 1
        raise ApiError(
            429,
            "Quota exceeded",
            f"this client's quota of {quota} messages a day is used up",
            headers={"Retry-After": str(retry)},
        )


def _message_id(api: ApiContext) -> str:
    return f"<{uuid.uuid4().hex}@{api.services.domain}>"


async def _answer(
    request: Request, api: ApiContext, grant: Grant, submitted: Submitted, provenance: Provenance
) -> JSONResponse:
    now = api.services.clock.now()
    own = grant.address
    sends = [
        SentRecipient(
            envelope_id=submitted.envelope_id,
            client_id=grant.client.client_id,
            recipient=p.account,
            kind=submitted.kind.value,
            provenance=provenance.value,
            status="delivered",
            delivered_at=now,
        )
        for p in submitted.placed
        if not (p.account == own and p.folder.upper() == "SENT")
    ]
    events = await delivered_events(api.services, sends)
    # Written with the idempotency record, in one transaction (web.idempotency).
    request.state.pending_sends = (sends, events)
    body = SentOut(
        id=submitted.envelope_id,
        thread_id=submitted.thread_id,
        kind=submitted.kind.value,
        provenance=provenance.value,
        recipients=[
            RecipientStatusOut(address=str(s.recipient), status="delivered", delivered_at=now)
            for s in sends
        ],
    )
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=201,
        headers={"Location": f"/v1/messages/sent/{submitted.envelope_id}"},
    )


async def _deliver_built(
    request: Request,
    api: ApiContext,
    grant: Grant,
    kind: MessageKind,
    recipients: tuple[Address, ...],
    build: Callable[[], bytes],
    thread_id: str | None,
) -> Response:
    await _check_quota(api, grant)
    try:
        raw = await asyncio.to_thread(build)
    except (InvalidMessage, RuleViolation, InvalidINS) as exc:
        raise _domain_error(exc) from None
    if len(raw) > api.settings.max_message_size:
        raise ApiError(
            413,
            "Message too large",
            f"the message is {len(raw)} bytes; at most {api.settings.max_message_size}",
        )
    gateway = crypto.GatewayInfo(
        peer=f"api:{grant.client.client_id}", tls=certificate_thumbprint(request, api) or ""
    )
    try:
        submitted = await api.services.delivery.receive(
            grant.address,
            recipients,
            raw,
            gateway=gateway,
            kind=kind,
            sent_copy_for=grant.address,
            thread_id=thread_id,
        )
    except (InvalidMessage, RuleViolation, UnknownMailbox) as exc:
        raise _domain_error(exc) from None
    return await _answer(request, api, grant, submitted, Provenance.GATEWAY)


async def _typed_send(
    request: Request,
    api: ApiContext,
    grant: Grant,
    key: str,
    model: type[_M],
    kind: MessageKind,
    make: Callable[[_M, Upload | None, tuple[Address, ...], datetime, str], Callable[[], bytes]],
) -> Response:
    check_key(key, required=True)
    data, upload, digest = await _read_send(request, api, model)
    try:

        async def work() -> Response:
            recipients = _recipients(data.to)
            now = api.services.clock.now()
            build = make(data, upload, recipients, now, _message_id(api))
            return await _deliver_built(
                request, api, grant, kind, recipients, build, data.thread_id
            )

        return await idempotent(request, api, grant.client.client_id, key, digest, work)
    finally:
        if upload is not None:
            upload.close()


def _scoped(scope: Scope) -> Any:  # noqa: ANN401 - a FastAPI dependency marker
    return Depends(require_scope(scope.value))


# -- the typed endpoints -----------------------------------------------------------------------


@router.post(
    "/notes",
    summary="Send a note (optionally with attachments)",
    status_code=201,
    response_model=SentOut,
    responses=_ERRORS,
    openapi_extra=_body_spec(NoteIn, files="Attachments (a declared PDF must be a PDF)"),
)
async def send_note(
    request: Request,
    api: ApiDep,
    grant: Annotated[Grant, _scoped(Scope.SEND_NOTE)],
    idempotency_key: IdempotencyKey,
) -> Response:
    def make(
        data: NoteIn, upload: Upload | None, to: tuple[Address, ...], now: datetime, mid: str
    ) -> Callable[[], bytes]:
        files = tuple(_attachments(upload, "note"))
        draft = Draft(
            sender=grant.address,
            recipients=to,
            subject=data.subject,
            body=data.body,
            sender_name=grant.client.name,
            attachments=files,
        )
        return lambda: build_message(draft, message_id=mid, date=now)

    return await _typed_send(request, api, grant, idempotency_key, NoteIn, MessageKind.NOTE, make)


@router.post(
    "/prescriptions",
    summary="Send a prescription, its structured part signed by the client's mailbox key",
    status_code=201,
    response_model=SentOut,
    responses=_ERRORS,
    openapi_extra=_body_spec(PrescriptionIn, files="Not accepted: a prescription is signed whole"),
)
async def send_prescription(
    request: Request,
    api: ApiDep,
    grant: Annotated[Grant, _scoped(Scope.SEND_PRESCRIPTION)],
    idempotency_key: IdempotencyKey,
) -> Response:
    def make(
        data: PrescriptionIn,
        upload: Upload | None,
        to: tuple[Address, ...],
        now: datetime,
        mid: str,
    ) -> Callable[[], bytes]:
        kind = MessageKind.PRESCRIPTION
        fields = Fields(kind)
        extra = {"reference": data.reference} if data.reference else {}
        prescription = Prescription(
            prescriber=fields.issuer_from_json(data.prescriber.model_dump()),
            patient=_patient(data.patient, kind, data.test_ins),
            date=data.date,
            items=tuple(MedicationLine(**line.model_dump()) for line in data.items),
            renewals=data.renewals,
            notes=data.notes,
            **extra,
        )
        message = PrescriptionMessage(
            grant.address, to, prescription, grant.client.name, data.test_ins
        )
        _no_files(upload, "prescription")
        key = grant.keys.signing_key
        return lambda: build_prescription(message, key, message_id=mid, date=now, lang=data.lang)

    return await _typed_send(
        request,
        api,
        grant,
        idempotency_key,
        PrescriptionIn,
        MessageKind.PRESCRIPTION,
        _guard(make),
    )


@router.post(
    "/certificates",
    summary="Send a medical certificate, signed by the client's mailbox key",
    status_code=201,
    response_model=SentOut,
    responses=_ERRORS,
    openapi_extra=_body_spec(CertificateIn, files="Not accepted: a certificate is signed whole"),
)
async def send_certificate(
    request: Request,
    api: ApiDep,
    grant: Annotated[Grant, _scoped(Scope.SEND_CERTIFICATE)],
    idempotency_key: IdempotencyKey,
) -> Response:
    def make(
        data: CertificateIn,
        upload: Upload | None,
        to: tuple[Address, ...],
        now: datetime,
        mid: str,
    ) -> Callable[[], bytes]:
        kind = MessageKind.CERTIFICATE
        extra = {"reference": data.reference} if data.reference else {}
        certificate = Certificate(
            issuer=Fields(kind).issuer_from_json(data.issuer.model_dump()),
            patient=_patient(data.patient, kind, data.test_ins),
            date=data.date,
            title=data.title,
            statement=data.statement,
            valid_until=data.valid_until,
            **extra,
        )
        message = CertificateMessage(
            grant.address, to, certificate, grant.client.name, data.test_ins
        )
        _no_files(upload, "certificate")
        key = grant.keys.signing_key
        return lambda: build_certificate(message, key, message_id=mid, date=now, lang=data.lang)

    return await _typed_send(
        request,
        api,
        grant,
        idempotency_key,
        CertificateIn,
        MessageKind.CERTIFICATE,
        _guard(make),
    )


@router.post(
    "/appointments",
    summary="Send an appointment invitation (iMIP, RFC 6047)",
    status_code=201,
    response_model=SentOut,
    responses=_ERRORS,
    openapi_extra=_body_spec(AppointmentIn, files="Not accepted"),
)
async def send_appointment(
    request: Request,
    api: ApiDep,
    grant: Annotated[Grant, _scoped(Scope.SEND_APPOINTMENT)],
    idempotency_key: IdempotencyKey,
) -> Response:
    def make(
        data: AppointmentIn,
        upload: Upload | None,
        to: tuple[Address, ...],
        now: datetime,
        mid: str,
    ) -> Callable[[], bytes]:
        if upload is not None and upload.files:
            raise ApiError(
                422,
                "Invalid field",
                "an appointment takes no files",
                [FieldError(upload.files[0].field, "no files here", "body")],
            )
        for name, moment in (("start", data.start), ("end", data.end)):
            if moment.utcoffset() is None:
                raise ApiError(
                    422,
                    "Invalid field",
                    f"{name} needs a UTC offset",
                    [FieldError(name, "needs a UTC offset", "body")],
                )
        appointment = new_request(
            uid=data.uid or f"{uuid.uuid4().hex}@{api.services.domain}",
            organizer=grant.address,
            attendees=to,
            start=data.start,
            end=data.end,
            summary=data.summary,
            dtstamp=now,
            organizer_name=grant.client.name,
            location=data.location,
            description=data.description,
            tzid=data.tzid,
        )
        return lambda: build_appointment(appointment, message_id=mid, date=now, lang=data.lang)

    return await _typed_send(
        request,
        api,
        grant,
        idempotency_key,
        AppointmentIn,
        MessageKind.APPOINTMENT,
        _guard(make),
    )


@router.post(
    "/documents",
    summary="Send health documents (PDF, optional CDA) in an IHE XDM archive",
    status_code=201,
    response_model=SentOut,
    responses=_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["metadata"],
                        "properties": {
                            "metadata": {
                                "type": "string",
                                "description": "The DocumentIn JSON; each document names "
                                "its PDF (and CDA) file parts",
                            }
                        },
                        "additionalProperties": {"type": "string", "format": "binary"},
                    }
                }
            },
        }
    },
)
async def send_document(
    request: Request,
    api: ApiDep,
    grant: Annotated[Grant, _scoped(Scope.SEND_DOCUMENT)],
    idempotency_key: IdempotencyKey,
) -> Response:
    def make(
        data: DocumentIn,
        upload: Upload | None,
        to: tuple[Address, ...],
        now: datetime,
        mid: str,
    ) -> Callable[[], bytes]:
        if upload is None:
            raise ApiError(
                415,
                "Unsupported media type",
                "documents are sent as multipart/form-data",
                [FieldError("Content-Type", "multipart/form-data", "header")],
            )
        kind = MessageKind.DOCUMENT
        documents = []
        for index, item in enumerate(data.documents):
            pdf = _part(upload, item.pdf, f"documents[{index}].pdf")
            require_type(pdf, _PDF, what="a document's PDF")
            cda = None
            if item.cda is not None:
                cda = _part(upload, item.cda, f"documents[{index}].cda").read()
            documents.append(
                HealthDocument(
                    title=item.title,
                    type_code=item.type_code,
                    pdf=pdf.read(),
                    date=item.date,
                    cda=cda,
                    type_label=item.type_label,
                )
            )
        message = DocumentMessage(
            sender=grant.address,
            recipients=to,
            patient=_patient(data.patient, kind, data.test_ins),
            documents=tuple(documents),
            sender_name=grant.client.name,
            comment=data.comment,
            test_ins=data.test_ins,
        )
        return lambda: build_document(message, message_id=mid, date=now, lang=data.lang)

    return await _typed_send(
        request, api, grant, idempotency_key, DocumentIn, MessageKind.DOCUMENT, _guard(make)
    )


def _part(upload: Upload, name: str, field: str) -> UploadedFile:
    found = upload.file(name)
    if found is None:
        raise ApiError(
            422,
            "Invalid field",
            f"{field} names the file part {name!r}, which is not in the request",
            [FieldError(field, f"no file part {name!r}", "body")],
        )
    return found


_F = TypeVar("_F", bound=Callable[..., Callable[[], bytes]])


def _guard(make: _F) -> _F:
    """Domain errors raised while reading the fields become problems naming the field."""

    def wrapped(*args: Any) -> Callable[[], bytes]:  # noqa: ANN401
        try:
            return make(*args)
        except (InvalidMessage, RuleViolation, InvalidINS) as exc:
            raise _domain_error(exc) from None

    return wrapped  # type: ignore[return-value]


# -- raw MIME and sealed envelopes -------------------------------------------------------------

_SCOPED_KINDS = {
    MessageKind.NOTE: Scope.SEND_NOTE,
    MessageKind.DOCUMENT: Scope.SEND_DOCUMENT,
    MessageKind.PRESCRIPTION: Scope.SEND_PRESCRIPTION,
    MessageKind.CERTIFICATE: Scope.SEND_CERTIFICATE,
    MessageKind.APPOINTMENT: Scope.SEND_APPOINTMENT,
}


@router.post(
    "/mime",
    summary="Send an RFC 5322 message as is (its From must be the client's mailbox)",
    status_code=201,
    response_model=SentOut,
    responses=_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def send_mime(
    request: Request,
    api: ApiDep,
    grant: Annotated[Grant, _scoped(Scope.SEND_MIME)],
    idempotency_key: IdempotencyKey,
    to: Annotated[list[str], Query(min_length=1, max_length=100, description="Recipients")],
) -> Response:
    check_key(idempotency_key, required=True)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "message/rfc822":
        raise ApiError(
            415,
            "Unsupported media type",
            "send the message as message/rfc822",
            [FieldError("Content-Type", "message/rfc822", "header")],
        )
    recipients = _recipients(to)
    try:
        async with asyncio.timeout(api.settings.request_timeout_seconds):
            upload = await receive_raw(
                request,
                max_total=api.settings.max_message_size,
                directory=api.settings.upload_dir,
            )
    except TimeoutError:
        raise ApiError(408, "Request timeout", "the request body arrived too slowly") from None
    with upload:
        item = upload.files[0]
        with item.open() as source:
            head = BytesParser(policy=email.policy.compat32).parsebytes(
                source.read(_HEADER_SECTION), True
            )
        sender = str(head.get("From", ""))
        addresses = email.utils.getaddresses([sender])
        if len(addresses) != 1 or addresses[0][1].lower() != str(grant.address):
            raise ApiError(
                422,
                "Invalid message",
                f"From must be {grant.address}",
                [FieldError("From", f"must be {grant.address}", "body")],
            )
        kind = declared_kind(head)
        needed = _SCOPED_KINDS.get(kind) if kind is not None else None
        if needed is not None and needed.value not in grant.scopes:
            raise ApiError(
                403,
                "Insufficient scope",
                f"a {kind} message needs the scope {needed.value!r}",
                [FieldError("X-Pli-Type", f"requires {needed.value}", "body")],
            )

        async def work() -> Response:
            await _check_quota(api, grant)
            gateway = crypto.GatewayInfo(
                peer=f"api:{grant.client.client_id}",
                tls=certificate_thumbprint(request, api) or "",
            )
            with item.open() as source:
                try:
                    submitted = await api.services.delivery.receive(
                        grant.address,
                        recipients,
                        source,
                        size=item.size,
                        gateway=gateway,
                        sent_copy_for=grant.address,
                    )
                except (InvalidMessage, RuleViolation, UnknownMailbox) as exc:
                    raise _domain_error(exc) from None
            return await _answer(request, api, grant, submitted, Provenance.GATEWAY)

        return await idempotent(
            request, api, grant.client.client_id, idempotency_key, upload.digest, work
        )


def _slot(value: object, field: str) -> bytes:
    try:
        if not isinstance(value, str):
            raise ValueError
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ApiError(
            422,
            "Invalid field",
            f"{field} is not base64url",
            [FieldError(field, "base64url of a key slot", "body")],
        ) from None


@router.post(
    "/sealed",
    summary="Deliver an envelope sealed on the client's machine (e2e provenance)",
    status_code=201,
    response_model=SentOut,
    responses=_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["envelope", "slots"],
                        "properties": {
                            "envelope": {"type": "string", "format": "binary"},
                            "slots": {
                                "type": "string",
                                "description": 'JSON: {"recipient address": "base64url '
                                'key slot", …}',
                            },
                            "sent_slot": {
                                "type": "string",
                                "description": "base64url key slot of the Sent copy",
                            },
                        },
                    }
                }
            },
        }
    },
)
async def send_sealed(
    request: Request,
    api: ApiDep,
    grant: Annotated[Grant, _scoped(Scope.SEND_SEALED)],
    idempotency_key: IdempotencyKey,
) -> Response:
    check_key(idempotency_key, required=True)
    settings = api.settings
    try:
        async with asyncio.timeout(settings.request_timeout_seconds):
            upload = await receive_multipart(
                request,
                max_total=settings.max_request_size,
                max_field_size=settings.max_json_size,
                directory=settings.upload_dir,
            )
    except TimeoutError:
        raise ApiError(408, "Request timeout", "the request body arrived too slowly") from None
    with upload:
        envelope = upload.file("envelope")
        if envelope is None:
            raise ApiError(
                422,
                "Invalid field",
                "the envelope file part is missing",
                [FieldError("envelope", "required", "body")],
            )
        try:
            raw_slots = json.loads(upload.fields.get("slots", ""))
        except ValueError:
            raw_slots = None
        if not isinstance(raw_slots, dict) or not raw_slots:
            raise ApiError(
                422,
                "Invalid field",
                "slots must be a JSON object of address → key slot",
                [FieldError("slots", "a JSON object", "body")],
            )
        slots: dict[Address, bytes] = {}
        for name, value in raw_slots.items():
            try:
                address = Address.parse(name)
            except InvalidAddress as exc:
                raise ApiError(
                    422, "Invalid field", str(exc), [FieldError(f"slots.{name}", str(exc), "body")]
                ) from None
            slots[address] = _slot(value, f"slots.{name}")
        sent = upload.fields.get("sent_slot")
        sent_slot = _slot(sent, "sent_slot") if sent is not None else None

        async def work() -> Response:
            await _check_quota(api, grant)
            with envelope.open() as source:
                try:
                    submitted = await api.services.intake.accept(
                        grant.address,
                        source,
                        slots,
                        sent_slot=sent_slot,
                        actor=f"api:{grant.client.client_id}",
                    )
                except (InvalidMessage, RuleViolation, UnknownMailbox) as exc:
                    error = _domain_error(exc)
                    code = getattr(exc, "code", "")
                    if code.startswith("sealed-") or code == "too-large":
                        field = "slots" if code == "sealed-slots" else "envelope"
                        error = ApiError(
                            error.status,
                            error.title,
                            error.detail,
                            [FieldError(field, str(exc), "body")],
                        )
                    raise error from None
            return await _answer(request, api, grant, submitted, Provenance.E2E)

        return await idempotent(
            request, api, grant.client.client_id, idempotency_key, upload.digest, work
        )


# -- status ------------------------------------------------------------------------------------


@router.get(
    "/sent/{envelope_id}",
    summary="Per-recipient status of a message this client sent (delivered, read)",
    response_model=SentOut,
    responses={
        401: {"description": "No or bad token", "content": {PROBLEM_JSON: {}}},
        404: {"description": "Not a message of this client", "content": {PROBLEM_JSON: {}}},
    },
)
async def sent_status(
    api: ApiDep,
    grant: CurrentGrant,
    envelope_id: Annotated[str, Path(min_length=1, max_length=64)],
) -> SentOut:
    sends = await api.services.state.list_sends(grant.client.client_id, envelope_id)
    if not sends:
        raise ApiError(404, "Not found", "no message of this client has this id")
    first = sends[0]
    return SentOut(
        id=envelope_id,
        thread_id="",
        kind=first.kind,
        provenance=first.provenance,  # type: ignore[arg-type]
        recipients=[
            RecipientStatusOut(
                address=str(s.recipient),
                status=s.status,  # type: ignore[arg-type]
                delivered_at=s.delivered_at,
                read_at=s.read_at,
            )
            for s in sends
        ],
    )

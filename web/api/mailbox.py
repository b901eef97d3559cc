"""``/v1/mailbox``: the client's own mailbox — folders, messages, flags, receipts.

Reading needs the ``read:mailbox`` scope. Messages are opened with the mailbox's keys,
which the client's secret unlocked when the token was issued (:mod:`web.oauth`): the
server decrypts for the duration of the request only, as it does for IMAP.

- ``GET /folders``; ``GET /folders/{folder}/messages`` (``after_uid``, ``limit``);
- ``GET /folders/{folder}/messages/{uid}``: the RFC 5322 message (``message/rfc822``) with
  ``Pli-Provenance``, ``Pli-Signature`` (``valid`` / ``unknown-signer``) and ``Pli-Signer``;
- ``POST /folders/{folder}/messages/{uid}/flags``: add and remove IMAP flags;
- ``GET /receipts``: the receipts in the inbox (DSN, MDN, national integration MDN), parsed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel

from crypto.encoding import b64url_encode
from messaging.errors import InvalidMessage, NotFound
from messaging.kinds.receipt import parse_receipt
from messaging.mdn import DispositionNotification
from messaging.types import MessageKind, MessageRecord
from web.api.context import ApiDep
from web.api.schemas import FlagsIn, MessageListOut, MessageOut
from web.oauth import Grant, require_scope
from web.problems import PROBLEM_JSON, ApiError, FieldError

__all__ = ["router"]

router = APIRouter(prefix="/v1/mailbox", tags=["mailbox"])

Reader = Annotated[Grant, Depends(require_scope("read:mailbox"))]
Sealer = Annotated[Grant, Depends(require_scope("send:sealed"))]
Folder = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
Uid = Annotated[int, Path(ge=1, le=2**32 - 1)]
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No or bad token", "content": {PROBLEM_JSON: {}}},
    403: {"description": "The token lacks read:mailbox", "content": {PROBLEM_JSON: {}}},
    404: {"description": "No such folder or message", "content": {PROBLEM_JSON: {}}},
}
_FLAG_CHARS = frozenset("\\$ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


class KeyBundleOut(BaseModel):
    """The client secret's copy of the mailbox key bundle, sealed under a key derived from
    the secret (Argon2id with ``salt``, ``opslimit``, ``memlimit``): opening it on the client's
    machine gives the mailbox's private keys without the server ever sending them."""

    address: str
    salt: str
    opslimit: int
    memlimit: int
    sealed_bundle: str


class FolderOut(BaseModel):
    name: str
    role: str | None
    messages: int
    unseen: int
    uidvalidity: int
    uidnext: int


class FolderListOut(BaseModel):
    folders: list[FolderOut]


class ReceiptOut(BaseModel):
    folder: str
    uid: int
    envelope_id: str
    report: str
    """``delivery-status`` (DSN) or ``disposition-notification`` (MDN)."""
    original_message_id: str
    reporter: str
    statuses: list[dict[str, str]]


class ReceiptListOut(BaseModel):
    receipts: list[ReceiptOut]


def _out(record: MessageRecord) -> MessageOut:
    return MessageOut(
        folder=record.folder,
        uid=record.uid,
        envelope_id=record.envelope_id,
        thread_id=record.thread_id,
        kind=record.kind.value,
        sender=str(record.sender),
        provenance=record.provenance.value,
        date=record.date,
        size=record.plaintext_size,
        flags=sorted(record.flags),
    )


def _not_found(exc: Exception) -> ApiError:
    return ApiError(404, "Not found", str(exc))


@router.get(
    "/key-bundle",
    response_model=KeyBundleOut,
    responses=_ERRORS,
    summary="The mailbox key bundle sealed under this client's secret (for client-side sealing)",
)
async def key_bundle(api: ApiDep, grant: Sealer) -> KeyBundleOut:
    found = [
        c
        for c in await api.services.clients.credentials_of(grant.client)
        if c.id == grant.credential_id
    ]
    if not found:
        raise ApiError(404, "Not found", "the secret of this token was revoked")
    credential = found[0]
    return KeyBundleOut(
        address=str(grant.address),
        salt=b64url_encode(credential.salt),
        opslimit=credential.opslimit,
        memlimit=credential.memlimit,
        sealed_bundle=b64url_encode(credential.sealed_bundle),
    )


@router.get("/folders", response_model=FolderListOut, responses=_ERRORS, summary="Folders")
async def folders(api: ApiDep, grant: Reader) -> FolderListOut:
    found = await api.services.store.list_folders(grant.address)
    return FolderListOut(
        folders=[
            FolderOut(
                name=f.name,
                role=f.role.value if f.role else None,
                messages=f.messages,
                unseen=f.unseen,
                uidvalidity=f.uidvalidity,
                uidnext=f.uidnext,
            )
            for f in found
        ]
    )


@router.get(
    "/folders/{folder}/messages",
    response_model=MessageListOut,
    responses=_ERRORS,
    summary="Messages of a folder, in UID order",
)
async def messages(
    api: ApiDep,
    grant: Reader,
    folder: Folder,
    after_uid: Annotated[int, Query(ge=0, le=2**32 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> MessageListOut:
    try:
        records = await api.services.delivery.list_messages(grant.address, folder)
    except NotFound as exc:
        raise _not_found(exc) from None
    page = [r for r in records if r.uid > after_uid][:limit]
    return MessageListOut(folder=folder, messages=[_out(r) for r in page])


@router.get(
    "/folders/{folder}/messages/{uid}",
    responses={
        **_ERRORS,
        200: {"description": "The RFC 5322 message", "content": {"message/rfc822": {}}},
    },
    response_class=Response,
    summary="One message, decrypted (message/rfc822)",
)
async def message(api: ApiDep, grant: Reader, folder: Folder, uid: Uid) -> Response:
    try:
        opened = await api.services.delivery.open_message(grant.address, grant.keys, folder, uid)
    except NotFound as exc:
        raise _not_found(exc) from None
    return Response(
        opened.raw,
        media_type="message/rfc822",
        headers={
            "Pli-Provenance": opened.provenance.value,
            "Pli-Signature": opened.signature.value,
            "Pli-Signer": opened.signer,
            "Pli-Kind": opened.record.kind.value,
            "Pli-Envelope-Id": opened.record.envelope_id,
            "Cache-Control": "no-store",
        },
    )


@router.post(
    "/folders/{folder}/messages/{uid}/flags",
    response_model=MessageOut,
    responses={
        **_ERRORS,
        422: {"description": "A malformed flag", "content": {PROBLEM_JSON: {}}},
    },
    summary="Add and remove IMAP flags (\\Seen, \\Flagged, keywords…)",
)
async def flags(api: ApiDep, grant: Reader, folder: Folder, uid: Uid, body: FlagsIn) -> MessageOut:
    for name, values in (("add", body.add), ("remove", body.remove)):
        for index, flag in enumerate(values):
            if not flag or len(flag) > 64 or not set(flag) <= _FLAG_CHARS or "\\" in flag[1:]:
                field = f"{name}[{index}]"
                raise ApiError(
                    422,
                    "Invalid field",
                    f"{field}: {flag!r} is not an IMAP flag",
                    [FieldError(field, "an IMAP flag (RFC 3501 §2.3.2)", "body")],
                )
    store = api.services.store
    try:
        current = await store.get_message(grant.address, folder, uid)
        wanted = (current.record.flags | set(body.add)) - set(body.remove)
        updated = await store.set_flags(grant.address, folder, uid, frozenset(wanted))
    except NotFound as exc:
        raise _not_found(exc) from None
    return _out(updated)


@router.get(
    "/receipts",
    response_model=ReceiptListOut,
    responses=_ERRORS,
    summary="Receipts in the inbox: delivery (DSN), read and integration (MDN)",
)
async def receipts(
    api: ApiDep,
    grant: Reader,
    after_uid: Annotated[int, Query(ge=0, le=2**32 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> ReceiptListOut:
    delivery = api.services.delivery
    records = await delivery.list_messages(grant.address, "INBOX")
    found: list[ReceiptOut] = []
    for record in records:
        if record.uid <= after_uid or record.kind is not MessageKind.RECEIPT:
            continue
        opened = await delivery.open_message(grant.address, grant.keys, "INBOX", record.uid)
        try:
            parsed = parse_receipt(opened.raw)
        except InvalidMessage:
            continue  # typed receipt by its header but unreadable: listed as a message only
        if isinstance(parsed, DispositionNotification):
            statuses = [
                {
                    "recipient": str(parsed.final_recipient),
                    "disposition": parsed.disposition_field,
                    "error": "" if parsed.error is None else str(int(parsed.error)),
                }
            ]
            report = "disposition-notification"
        else:
            statuses = [
                {"recipient": str(r.final_recipient), "action": r.action.value, "status": r.status}
                for r in parsed.recipients
            ]
            report = "delivery-status"
        found.append(
            ReceiptOut(
                folder="INBOX",
                uid=record.uid,
                envelope_id=record.envelope_id,
                report=report,
                original_message_id=parsed.original_message_id,
                reporter=str(parsed.sender),
                statuses=statuses,
            )
        )
        if len(found) >= limit:
            break
    return ReceiptListOut(receipts=found)

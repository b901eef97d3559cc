"""``/webmail/api``: the JSON (and bytes) the webmail's browser code talks to.

Sign-in (no session yet): ``POST prelogin`` (salt and Argon2id limits, a stable fake for
unknown addresses), ``POST login`` (the auth key; sends the one-time code), ``POST
login/code`` (sets the session cookie). Everything else needs the session cookie, and
every unsafe method the CSRF header (:mod:`web.webmail.security`). Errors are RFC 9457
problem details; a message of another account is a 404 like one that does not exist.

Bytes travel base64url (RFC 4648 §5, no padding) in JSON, except the envelope download,
which is the stored envelope as ``application/octet-stream``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import io
import json
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

import crypto
from messaging.errors import (
    AuthenticationFailed,
    InvalidAddress,
    InvalidMessage,
    MailboxClosed,
    NotFound,
    RuleViolation,
    UnknownMailbox,
)
from messaging.notices import NoticeNotSent
from messaging.types import Address, CredentialKind, MessageRecord
from messaging.webmail import (
    CodeRefused,
    NoCodeAddress,
    SmsUnavailable,
    WebmailService,
    WebSession,
)
from web.problems import ApiError
from web.ratelimit import client_key
from web.webmail.security import (
    COOKIE,
    CSRF_HEADER,
    UNSAFE_METHODS,
    WebmailLimiters,
    rate_limit,
)

__all__ = ["router", "WebmailContext"]

router = APIRouter(prefix="/webmail/api", tags=["webmail"])

MAX_SEND_BODY = 40 * 1024 * 1024
"""A 25 MB message, sealed and base64url-encoded, with its slots, fits under this."""


class WebmailContext:
    def __init__(
        self, service: WebmailService, limiters: WebmailLimiters, *, secure_cookie: bool = True
    ) -> None:
        self.service = service
        self.limiters = limiters
        self.secure_cookie = secure_cookie
        self.closing = asyncio.Event()
        """Set when the server stops: event streams end so shutdown does not wait on them."""


def _context(request: Request) -> WebmailContext:
    return cast(WebmailContext, request.app.state.webmail)


ContextDep = Annotated[WebmailContext, Depends(_context)]


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64d(text: str, name: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ApiError.bad_parameter(name, f"{name} is not base64url", "body") from None


@contextlib.contextmanager
def _problems() -> Iterator[None]:
    """The domain's refusals as problem details."""
    try:
        yield
    except (AuthenticationFailed, MailboxClosed):
        raise ApiError(401, "Authentication failed", "the address or the secret is wrong") from None
    except NotFound:
        raise ApiError(404, "Not found", "no such message") from None
    except CodeRefused as exc:
        raise ApiError(
            401,
            "Wrong code",
            "the code is wrong or expired"
            + (f"; {exc.remaining} tries left" if exc.remaining else "; sign in again"),
            headers={"Pli-Code-Tries-Left": str(exc.remaining)},
        ) from None
    except NoCodeAddress as exc:
        raise ApiError(409, "No address for sign-in codes", str(exc)) from None
    except SmsUnavailable as exc:
        raise ApiError(
            409, "No SMS on this server", str(exc), headers={"Pli-Rule": "sms-unavailable"}
        ) from None
    except NoticeNotSent:
        raise ApiError(
            503,
            "Service unavailable",
            "the sign-in code could not be sent now; try again later",
            headers={"Retry-After": "60"},
        ) from None
    except RuleViolation as exc:
        raise ApiError(
            422, "Refused by a rule", exc.reason, headers={"Pli-Rule": exc.code}
        ) from None
    except UnknownMailbox as exc:
        raise ApiError(
            422, "Unknown recipient", str(exc), headers={"Pli-Rule": "unknown-recipient"}
        ) from None
    except (InvalidMessage, InvalidAddress) as exc:
        code = getattr(exc, "code", "invalid")
        raise ApiError(422, "Invalid message", str(exc), headers={"Pli-Rule": code}) from None


def _address(text: str, name: str = "address") -> Address:
    try:
        return Address.parse(text.strip())
    except InvalidAddress:
        raise ApiError.bad_parameter(name, f"{name} is not a mailbox address", "body") from None


def _kind(text: str) -> CredentialKind:
    if text == "recovery":
        return CredentialKind.RECOVERY
    if text == "passphrase":
        return CredentialKind.PASSPHRASE
    raise ApiError.bad_parameter("kind", 'kind is "passphrase" or "recovery"', "body")


async def current_session(request: Request, context: ContextDep) -> WebSession:
    """The signed-in session; 401 without one, 403 for an unsafe method without its CSRF."""
    token = request.cookies.get(COOKIE)
    session = await context.service.session(token) if token else None
    if session is None:
        raise ApiError(401, "Not signed in", "sign in again")
    if request.method in UNSAFE_METHODS and not context.service.check_csrf(
        session.token_hash, request.headers.get(CSRF_HEADER)
    ):
        raise ApiError(403, "Forbidden", "missing or stale CSRF token; reload the page")
    return session


SessionDep = Annotated[WebSession, Depends(current_session)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PreloginIn(_In):
    address: str = Field(max_length=320)
    kind: str = "passphrase"


class LoginIn(PreloginIn):
    auth_key: str = Field(max_length=64)


class CodeIn(_In):
    ticket: str = Field(max_length=100)
    code: str = Field(max_length=12)


class SeenIn(_In):
    seen: bool


class SendIn(_In):
    envelope: str
    slots: dict[str, str]
    sent_slot: str | None = None


class PreferencesIn(_In):
    notify_email: str | None = Field(default=None, max_length=320)
    notify_phone: str | None = Field(default=None, max_length=16)
    """E.164 (``+33612345678``); when set, sign-in codes go there by SMS."""
    language: str = Field(max_length=5)


class PassphraseIn(_In):
    current_auth_key: str | None = Field(default=None, max_length=64)
    salt: str = Field(max_length=32)
    opslimit: int
    memlimit: int
    auth_key: str = Field(max_length=64)
    bundle: str = Field(max_length=200)


class AppPasswordIn(_In):
    label: str = Field(max_length=64)
    auth_key: str = Field(max_length=64)
    bundle: str = Field(max_length=200)


def _message_json(record: MessageRecord) -> dict[str, Any]:
    return {
        "id": record.envelope_id,
        "thread": record.thread_id,
        "folder": record.folder,
        "uid": record.uid,
        "kind": record.kind.value,
        "from": str(record.sender),
        "provenance": record.provenance.value,
        "date": record.date.isoformat(),
        "size": record.plaintext_size,
        "seen": "\\Seen" in record.flags,
    }


# -- sign-in --------------------------------------------------------------------------------


@router.post("/prelogin", summary="Salt and Argon2id limits to derive the auth key")
async def prelogin(body: PreloginIn, request: Request, context: ContextDep) -> dict[str, Any]:
    rate_limit(context.limiters.login_per_client, client_key(_host(request)))
    salt, limits = await context.service.login_parameters(_address(body.address), _kind(body.kind))
    return {"salt": b64e(salt), "opslimit": limits.opslimit, "memlimit": limits.memlimit}


def _host(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/login", summary="Check the auth key and send a one-time code")
async def login(body: LoginIn, request: Request, context: ContextDep) -> dict[str, Any]:
    address = _address(body.address)
    rate_limit(context.limiters.login_per_client, client_key(_host(request)))
    rate_limit(context.limiters.login_per_account, str(address))
    with _problems():
        ticket = await context.service.start_login(
            address, b64d(body.auth_key, "auth_key"), _kind(body.kind)
        )
    return {
        "ticket": ticket.ticket,
        "sent_to": ticket.destination_hint,
        "expires_at": ticket.expires_at.isoformat(),
    }


@router.post("/login/code", summary="Trade the ticket and the code for a session")
async def login_code(
    body: CodeIn, request: Request, response: Response, context: ContextDep
) -> dict[str, Any]:
    rate_limit(context.limiters.codes_per_client, client_key(_host(request)))
    with _problems():
        opened = await context.service.finish_login(body.ticket, body.code)
    response.set_cookie(
        COOKIE,
        opened.token,
        max_age=context.service.limits.session_max_seconds,
        path="/webmail",
        secure=context.secure_cookie,
        httponly=True,
        samesite="strict",
    )
    return {"address": str(opened.session.address), "csrf": opened.csrf}


@router.post("/logout", summary="End the session")
async def logout(session: SessionDep, response: Response, context: ContextDep) -> dict[str, Any]:
    await context.service.logout(session)
    response.delete_cookie(COOKIE, path="/webmail", secure=True, httponly=True, samesite="strict")
    return {"signed_out": True}


@router.get("/session", summary="Who is signed in, the CSRF token and the sealed key bundle")
async def session_info(session: SessionDep, context: ContextDep) -> dict[str, Any]:
    service = context.service
    with _problems():
        credential = await service.credential(session)
        account = await service.account(session.address)
    preferences = await service.preferences(session.address)
    return {
        "address": str(account.address),
        "display_name": account.display_name,
        "kind": account.kind.value,
        "csrf": service.csrf_for(session.token_hash),
        "credential": credential.kind.value,
        "bundle": b64e(credential.sealed_bundle),
        "encryption_key": b64e(account.encryption_key),
        "signing_key": b64e(account.signing_key),
        "operator_key": b64e(service.operator_key) if service.operator_key else None,
        "log_key": b64e(service.log_key) if service.log_key else None,
        "log_id": service.log_id,
        "language": preferences.language,
        "notify_email": preferences.notify_email,
        "notify_phone": preferences.notify_phone,
        "sms_codes": service.sms_codes,
        "expires_at": session.expires_at.isoformat(),
        "idle_seconds": service.limits.session_idle_seconds,
    }


# -- mailbox --------------------------------------------------------------------------------


@router.get("/folders", summary="Folders with their counts")
async def folders(session: SessionDep, context: ContextDep) -> list[dict[str, Any]]:
    return [
        {
            "name": f.name,
            "role": f.role.value if f.role else None,
            "messages": f.messages,
            "unseen": f.unseen,
        }
        for f in await context.service.folders(session.address)
    ]


@router.get("/messages", summary="Messages of a folder, newest first (routing data only)")
async def messages(
    session: SessionDep, context: ContextDep, folder: str = "INBOX"
) -> list[dict[str, Any]]:
    with _problems():
        records = await context.service.messages(session.address, folder)
    return [_message_json(r) for r in sorted(records, key=lambda r: r.uid, reverse=True)]


@router.get("/messages/{envelope_id}", summary="One message's record and this account's key slot")
async def message(envelope_id: str, session: SessionDep, context: ContextDep) -> dict[str, Any]:
    with _problems():
        record, slot = await context.service.message(session.address, envelope_id)
    return {**_message_json(record), "slot": b64e(slot)}


@router.get("/messages/{envelope_id}/envelope", summary="The sealed envelope, as stored")
async def envelope(envelope_id: str, session: SessionDep, context: ContextDep) -> Response:
    with _problems():
        record, _slot = await context.service.message(session.address, envelope_id)
    data = await asyncio.to_thread(_read_all, context.service, record)
    return Response(data, media_type="application/octet-stream")


def _read_all(service: WebmailService, record: MessageRecord) -> bytes:
    with service.open_envelope(record) as source:
        return source.read()


@router.post("/messages/{envelope_id}/seen", summary="Mark read or unread")
async def seen(
    envelope_id: str, body: SeenIn, session: SessionDep, context: ContextDep
) -> dict[str, Any]:
    with _problems():
        record = await context.service.set_seen(session.address, envelope_id, body.seen)
    return _message_json(record)


@router.post("/send", status_code=201, summary="Deliver an envelope sealed in the browser")
async def send(request: Request, session: SessionDep, context: ContextDep) -> dict[str, Any]:
    body = await request.body()
    if len(body) > MAX_SEND_BODY:
        raise ApiError(413, "Too large", "the message is larger than the limit")
    try:
        parsed = SendIn.model_validate(json.loads(body))
    except ValueError:
        raise ApiError(422, "Invalid parameter", "the body is not a sealed message") from None
    slots = {_address(a, "slots"): b64d(s, "slots") for a, s in parsed.slots.items()}
    sent_slot = b64d(parsed.sent_slot, "sent_slot") if parsed.sent_slot else None
    with _problems():
        submitted = await context.service.send(
            session.address, io.BytesIO(b64d(parsed.envelope, "envelope")), slots, sent_slot
        )
    return {"id": submitted.envelope_id, "thread": submitted.thread_id}


@router.get("/events", summary="Server-sent events: the mailbox changed")
async def events(session: SessionDep, context: ContextDep, request: Request) -> StreamingResponse:
    async def stream() -> AsyncIterator[bytes]:
        # A comment first, so the browser knows the stream is open; then one event per change
        # and a keep-alive comment every 20 s (proxies close idle streams).
        yield b": open\n\nretry: 3000\n\n"
        subscription = context.service.events(session.address).__aiter__()
        closing: asyncio.Future[object] = asyncio.ensure_future(context.closing.wait())
        # One pending read of the subscription at a time, kept across keep-alives:
        # cancelling it would end the subscription itself.
        following: asyncio.Future[object] | None = None
        try:
            while not await request.is_disconnected() and not closing.done():
                pending = following or asyncio.ensure_future(subscription.__anext__())
                following = pending
                done, _ = await asyncio.wait(
                    {pending, closing}, timeout=20, return_when=asyncio.FIRST_COMPLETED
                )
                if pending in done:
                    following = None
                    yield f"event: mailbox\ndata: {pending.result()}\n\n".encode()
                elif not closing.done():
                    yield b": keep-alive\n\n"
        finally:
            closing.cancel()
            if following is not None:
                following.cancel()
            with contextlib.suppress(Exception):
                await subscription.aclose()  # type: ignore[attr-defined]

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


# -- settings -------------------------------------------------------------------------------


@router.put("/preferences", summary="Notification address, phone for codes, and language")
async def set_preferences(
    body: PreferencesIn, session: SessionDep, context: ContextDep
) -> dict[str, Any]:
    with _problems():
        preferences = await context.service.set_preferences(
            session.address,
            notify_email=body.notify_email or None,
            notify_phone=body.notify_phone or None,
            language=body.language,
        )
    return {
        "notify_email": preferences.notify_email,
        "notify_phone": preferences.notify_phone,
        "language": preferences.language,
    }


@router.post("/passphrase", summary="Replace the passphrase credential sealed in the browser")
async def change_passphrase(
    body: PassphraseIn, session: SessionDep, context: ContextDep
) -> dict[str, Any]:
    try:
        limits = crypto.Argon2Limits(body.opslimit, body.memlimit)
    except crypto.KeyFormatError:
        raise ApiError.bad_parameter("opslimit", "Argon2id limits out of range", "body") from None
    with _problems():
        await context.service.change_passphrase(
            session,
            current_auth_key=b64d(body.current_auth_key, "current_auth_key")
            if body.current_auth_key
            else None,
            salt=b64d(body.salt, "salt"),
            limits=limits,
            auth_key=b64d(body.auth_key, "auth_key"),
            sealed_bundle=b64d(body.bundle, "bundle"),
        )
    return {"changed": True}


@router.post("/recovery-key", summary="Replace the recovery key (sealed in the browser)")
async def replace_recovery_key(
    body: PassphraseIn, session: SessionDep, context: ContextDep
) -> dict[str, Any]:
    try:
        limits = crypto.Argon2Limits(body.opslimit, body.memlimit)
    except crypto.KeyFormatError:
        raise ApiError.bad_parameter("opslimit", "Argon2id limits out of range", "body") from None
    with _problems():
        await context.service.replace_recovery_key(
            session,
            current_auth_key=b64d(body.current_auth_key, "current_auth_key")
            if body.current_auth_key
            else None,
            salt=b64d(body.salt, "salt"),
            limits=limits,
            auth_key=b64d(body.auth_key, "auth_key"),
            sealed_bundle=b64d(body.bundle, "bundle"),
        )
    return {"replaced": True}


@router.get("/app-passwords", summary="App passwords (labels and dates) and how to seal one")
async def app_passwords(session: SessionDep, context: ContextDep) -> dict[str, Any]:
    salt, limits = await context.service.app_password_parameters(session.address)
    return {
        "salt": b64e(salt),
        "opslimit": limits.opslimit,
        "memlimit": limits.memlimit,
        "items": [
            {
                "id": c.id,
                "label": c.label,
                "created_at": c.created_at.isoformat(),
                "last_used_at": c.last_used_at.isoformat() if c.last_used_at else None,
            }
            for c in await context.service.list_app_passwords(session.address)
        ],
    }


@router.post("/app-passwords", status_code=201, summary="Add an app password sealed in the browser")
async def add_app_password(
    body: AppPasswordIn, session: SessionDep, context: ContextDep
) -> dict[str, Any]:
    with _problems():
        credential = await context.service.add_app_password(
            session.address,
            body.label,
            b64d(body.auth_key, "auth_key"),
            b64d(body.bundle, "bundle"),
        )
    return {"id": credential.id, "label": credential.label}


@router.delete("/app-passwords/{credential_id}", summary="Revoke an app password")
async def revoke_app_password(
    credential_id: str, session: SessionDep, context: ContextDep
) -> dict[str, Any]:
    with _problems():
        await context.service.revoke_app_password(session.address, credential_id)
    return {"revoked": credential_id}

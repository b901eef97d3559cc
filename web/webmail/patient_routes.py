"""``/webmail/api/patient``: the patient's rights from the webmail (issue 8's screens).

Each route calls :class:`~messaging.patients.PatientService` for the signed-in patient
(a professional's session gets ``403`` with ``Pli-Rule: not-a-patient``):

- ``GET documents`` — the record: the documents, prescriptions and certificates of the
  mailbox (routing data only; the browser opens each to read its title and type) and, for
  each, the professionals it is masked from; ``POST documents/{id}/mask`` masks or unmasks
  it from chosen professionals (never its author: ``mask-author``);
- ``GET blocks`` / ``POST blocks`` / ``DELETE blocks/{address}`` — blocked professionals;
  the médecin traitant cannot be blocked (``block-treating-doctor``, and the attempt is in
  the history);
- ``GET consents`` — the requests waiting for an answer and the grants active now, each
  with its JSON exactly as signed or to be signed; ``POST consents/{id}/answer`` takes the
  answer the browser signed with the patient's key, ``POST consents/{id}/revoke`` the
  signed withdrawal (the server verifies both against the published key, then delivers
  them to the professional like any consent message);
- ``GET sharing`` — per professional with an active grant, the documents it may cover and
  the patient's own key slot of each; ``POST sharing`` takes the slots the browser re-made
  for the professional (``crypto.reseal_slot`` in JavaScript), each checked against an
  active grant;
- ``GET services`` — the approved services (the referenced applications of the directory);
- ``GET history`` — the access history, oldest first, with the result of
  :func:`messaging.access_history.verify_chain` (the hash chain, RFC-free: ``docs/patients.md``).

Nothing here needs the patient's keys: the server holds no private key and no plaintext.
Signing and re-wrapping happen in the browser; the server checks what it is handed.
"""

from __future__ import annotations

from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from messaging.errors import RuleViolation
from messaging.kinds.consent import ConsentResponse, ConsentRevocation, Scope
from messaging.patient_delivery import DOCUMENT_KINDS
from messaging.patients import PatientService, ShareOffer
from messaging.types import Address
from web.deps import get_context
from web.problems import ApiError
from web.webmail.routes import (
    ContextDep,
    SessionDep,
    _address,
    _message_json,
    _problems,
    b64d,
    b64e,
    current_session,
)

__all__ = ["patient_router"]

patient_router = APIRouter(prefix="/webmail/api/patient", tags=["webmail"])


def _service(request: Request) -> PatientService:
    service = getattr(request.app.state, "webmail_patients", None)
    if service is None:
        raise ApiError(404, "Not found", "the patient's screens are not served here")
    return cast(PatientService, service)


PatientsDep = Annotated[PatientService, Depends(_service)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BlockIn(_In):
    professional: str = Field(max_length=320)


class MaskIn(_In):
    professionals: list[str] = Field(max_length=50)
    masked: bool = True


class AnswerIn(_In):
    response: dict[str, Any]
    """The signed ``consent-response`` JSON (messaging/kinds/consent.py)."""


class RevokeIn(_In):
    revocation: dict[str, Any]
    """The signed ``consent-revocation`` JSON."""


class ShareIn(_In):
    document: str = Field(max_length=64)
    professional: str = Field(max_length=320)
    categories: list[str] = Field(default_factory=list, max_length=50)
    slot: str = Field(max_length=200)


class SharingIn(_In):
    shares: list[ShareIn] = Field(max_length=500)


async def _patient(session_address: Address, patients: PatientService) -> None:
    """A professional's session has no record, blocks or consents: say so plainly."""
    try:
        await patients.profile(session_address)
    except RuleViolation as exc:
        raise ApiError(
            403, "Not a patient", exc.reason, headers={"Pli-Rule": "not-a-patient"}
        ) from None


@patient_router.get("/documents", summary="The record: documents with their masks")
async def documents(
    session: SessionDep, context: ContextDep, patients: PatientsDep
) -> list[dict[str, Any]]:
    await _patient(session.address, patients)
    masks = await patients.masks(session.address)
    seen: dict[str, dict[str, Any]] = {}
    for folder in await context.service.folders(session.address):
        with _problems():
            records = await context.service.messages(session.address, folder.name)
        for record in records:
            if record.kind not in DOCUMENT_KINDS or record.envelope_id in seen:
                continue
            seen[record.envelope_id] = {
                **_message_json(record),
                "masked_from": sorted(str(a) for a in masks.get(record.envelope_id, ())),
            }
    return sorted(seen.values(), key=lambda d: d["date"], reverse=True)


@patient_router.post("/documents/{document_id}/mask", summary="Mask or unmask a document")
async def mask(
    document_id: str, body: MaskIn, session: SessionDep, patients: PatientsDep
) -> dict[str, Any]:
    await _patient(session.address, patients)
    professionals = [_address(p, "professionals") for p in body.professionals]
    with _problems():
        if body.masked:
            await patients.mask(session.address, document_id, professionals)
        else:
            await patients.unmask(session.address, document_id, professionals)
    masks = await patients.masks(session.address)
    return {
        "id": document_id,
        "masked_from": sorted(str(a) for a in masks.get(document_id, ())),
    }


async def _blocks_json(address: Address, patients: PatientService) -> dict[str, Any]:
    profile = await patients.profile(address)
    return {
        "treating_doctor": str(profile.treating_doctor) if profile.treating_doctor else None,
        "blocked": sorted(str(a) for a in await patients.blocked(address)),
    }


@patient_router.get("/blocks", summary="Blocked professionals and the médecin traitant")
async def blocks(session: SessionDep, patients: PatientsDep) -> dict[str, Any]:
    await _patient(session.address, patients)
    return await _blocks_json(session.address, patients)


@patient_router.post("/blocks", status_code=201, summary="Block a professional")
async def block(body: BlockIn, session: SessionDep, patients: PatientsDep) -> dict[str, Any]:
    await _patient(session.address, patients)
    professional = _address(body.professional, "professional")
    with _problems():
        await patients.block(session.address, professional)
    return await _blocks_json(session.address, patients)


@patient_router.delete("/blocks/{professional}", summary="Unblock a professional")
async def unblock(professional: str, session: SessionDep, patients: PatientsDep) -> dict[str, Any]:
    await _patient(session.address, patients)
    with _problems():
        await patients.unblock(session.address, _address(professional, "professional"))
    return await _blocks_json(session.address, patients)


def _scope_json(scope: Scope) -> dict[str, Any]:
    return {
        "kind": scope.kind.value,
        "categories": sorted(scope.categories),
        "document": scope.document,
    }


@patient_router.get("/consents", summary="Requests to answer and active grants")
async def consents(session: SessionDep, patients: PatientsDep) -> dict[str, Any]:
    await _patient(session.address, patients)
    pending, grants = await patients.consents(session.address)
    return {
        "pending": [
            {
                "id": r.request_id,
                "professional": str(r.professional),
                "scope": r.scope.kind.value,
                "categories": sorted(r.scope.categories),
                "document": r.scope.document,
                "purpose": r.purpose,
                "duration_days": r.duration_days,
                "requested_at": r.requested_at.isoformat(),
                # What the browser hashes into the answer: the request as it was received.
                "request": r.to_json(),
            }
            for r in pending
        ],
        "grants": [
            {
                "id": g.grant_id,
                "professional": str(g.professional),
                "scope": g.request.scope.kind.value,
                "purpose": g.request.purpose,
                "starts_at": g.starts_at.isoformat(),
                "ends_at": g.ends_at.isoformat(),
                # What a withdrawal names by hash: the patient's signed answer.
                "response": g.response.to_json(),
            }
            for g in grants
        ],
    }


def _mismatch(reason: str) -> ApiError:
    return ApiError(422, "Invalid message", reason, headers={"Pli-Rule": "consent-mismatch"})


async def _language(context: ContextDep, address: Address) -> str:
    return (await context.service.preferences(address)).language


@patient_router.post(
    "/consents/{request_id}/answer",
    status_code=201,
    summary="Deliver an answer the patient signed in the browser",
)
async def answer(
    request_id: str,
    body: AnswerIn,
    session: SessionDep,
    context: ContextDep,
    patients: PatientsDep,
) -> dict[str, Any]:
    await _patient(session.address, patients)
    with _problems():
        response = ConsentResponse.from_json(body.response)
    if response.request_id != request_id:
        raise _mismatch("the answer is about another request than the one in the path")
    lang = await _language(context, session.address)
    with _problems():
        await patients.record_answer(session.address, response, lang=lang)
    return {"id": request_id, "decision": response.decision.value}


@patient_router.post(
    "/consents/{request_id}/revoke",
    status_code=201,
    summary="Deliver a withdrawal the patient signed in the browser",
)
async def withdraw(
    request_id: str,
    body: RevokeIn,
    session: SessionDep,
    context: ContextDep,
    patients: PatientsDep,
) -> dict[str, Any]:
    await _patient(session.address, patients)
    with _problems():
        revocation = ConsentRevocation.from_json(body.revocation)
    if revocation.request_id != request_id:
        raise _mismatch("the withdrawal is about another grant than the one in the path")
    lang = await _language(context, session.address)
    with _problems():
        await patients.record_revocation(session.address, revocation, lang=lang)
    return {"id": request_id, "revoked": True}


@patient_router.get("/sharing", summary="Documents to share under the active grants")
async def sharing(session: SessionDep, patients: PatientsDep) -> list[dict[str, Any]]:
    await _patient(session.address, patients)
    return [
        {
            "professional": str(c.professional),
            "grants": [{"id": g.grant_id, "scope": _scope_json(g.request.scope)} for g in c.grants],
            "documents": [{"id": d, "slot": b64e(slot)} for d, slot in c.documents],
        }
        for c in await patients.share_candidates(session.address)
    ]


@patient_router.post("/sharing", summary="Slots the browser re-made for professionals")
async def share(body: SharingIn, session: SessionDep, patients: PatientsDep) -> dict[str, Any]:
    await _patient(session.address, patients)
    offers = [
        ShareOffer(
            s.document,
            _address(s.professional, "professional"),
            frozenset(s.categories),
            b64d(s.slot, "slot"),
        )
        for s in body.shares
    ]
    with _problems():
        made = await patients.accept_shares(session.address, offers)
    return {
        "shared": [{"document": m.document_id, "professional": str(m.professional)} for m in made]
    }


@patient_router.get(
    "/services",
    summary="The approved services (referenced applications)",
    dependencies=[Depends(current_session)],
)
async def services(request: Request) -> list[dict[str, Any]]:
    directory = get_context(request).directory
    if directory is None:
        return []
    return [
        {
            "address": str(a.address),
            "name": a.name,
            "category": a.category,
            "description": a.description,
        }
        for a in sorted(
            await directory.list_applications(referenced_only=True),
            key=lambda a: (a.category, a.name.casefold()),
        )
    ]


@patient_router.get("/history", summary="The access history and whether its chain holds")
async def history(session: SessionDep, patients: PatientsDep) -> dict[str, Any]:
    await _patient(session.address, patients)
    entries = await patients.history(session.address)
    problems = await patients.verify_history(session.address)
    return {
        "verified": not problems,
        "problems": [
            {
                "seq": entries[p.index].seq if p.index < len(entries) else None,
                "code": p.code,
                "reason": p.reason,
            }
            for p in problems
        ],
        "entries": [
            {
                "seq": e.seq,
                "actor": e.actor,
                "action": e.action,
                "subject": e.subject,
                "at": e.at.isoformat(),
                "details": dict(e.details),
            }
            for e in entries
        ],
    }

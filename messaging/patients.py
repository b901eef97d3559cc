"""The patient's rights as operations: block, mask, médecin traitant, consent, history,
opposition and closure, and the professional's read of a document through a consent.

:class:`PatientService` is what adapters (webmail, API, CLI) call for a patient or for a
professional acting on a patient's record; the rules that apply *while delivering* live in
:mod:`messaging.patient_delivery`. Every change here writes its access-history entry in
the same transaction (the store's ``history`` argument).

Consent, end to end (DOMAIN.md, "Patients"):

1. :meth:`PatientService.request_consent` — the professional's ``consent-request`` is
   delivered to the patient; the delivery records it and a ``consent-requested`` entry.
2. :meth:`PatientService.answer_consent` — the patient's client signs the answer with the
   patient's key; the delivery verifies the signature and records it. On a grant,
   :meth:`PatientService.share` runs *in the patient's session*: the patient's unlocked
   keys open each covered document's slot and re-seal its content key for the
   professional (:func:`crypto.reseal_slot`); the server only stores the resulting slots.
   Where the key never leaves the patient's device (the webmail), the device signs and
   re-seals: :meth:`PatientService.record_answer` delivers its signed answer, and
   :meth:`PatientService.share_candidates` / :meth:`PatientService.accept_shares` are the
   two halves of :meth:`PatientService.share` around the device's work.
3. :meth:`PatientService.open_document` — the professional reads a shared document: the
   server checks the grant is active and the document not masked, hands the slot over and
   writes ``document-read-with-consent``.
4. :meth:`PatientService.revoke_consent` (or :meth:`PatientService.record_revocation`,
   signed on the device) — the signed withdrawal; its delivery deletes the slots of the
   grant, and documents that arrive later are never shared under it.

Errors: :class:`~messaging.errors.RuleViolation` with the codes of
:mod:`messaging.patient_rules` and :mod:`messaging.retention`, plus ``consent-required``
(a read no active grant allows) and ``not-a-patient``.
"""

from __future__ import annotations

import asyncio
import email.policy
import io
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.parser import BytesParser

import crypto
from messaging.access_history import Action, Anchor, HistoryEntry, Problem, verify_chain
from messaging.consent import ConsentRegistry, DocumentRef, Grant
from messaging.errors import InvalidMessage, NotFound, RuleViolation
from messaging.kinds.consent import (
    ConsentRequest,
    ConsentResponse,
    ConsentRevocation,
    Decision,
    Scope,
    ScopeKind,
    answer,
    build_request,
    build_response,
    build_revocation,
    revoke,
)
from messaging.kinds.document import CODECDA_HEADER
from messaging.kinds.notification import NoticeEvent
from messaging.mime import new_message_id
from messaging.patient_delivery import DOCUMENT_KINDS, PatientDeliveryRules, registry_of
from messaging.patient_ports import HistoryDraft, PatientProfile, PatientStore, SharedSlotRecord
from messaging.patient_rules import Correspondent, PatientFacts, check_block, check_mask
from messaging.ports import BlobStore, Clock, KeyDirectory, MailboxStore
from messaging.retention import (
    PurgePlan,
    RetentionPolicy,
    check_closure,
    check_opposition,
    plan_purge,
)
from messaging.rules import Violation
from messaging.service import DeliveryService, Submitted
from messaging.types import AccountRecord, Address, BlobRef, MailboxKind, MessageKind, MessageRecord

__all__ = [
    "ANSWER_CLOCK_SKEW",
    "PatientService",
    "PurgeResult",
    "ShareCandidates",
    "ShareOffer",
    "SharedDocument",
]

ANSWER_CLOCK_SKEW = timedelta(minutes=10)
"""How far from the server's clock a consent answer signed on the patient's device may be
dated: its date starts the grant, so a device clock far ahead would start it later and one
far behind could date it before the request."""

_WEBMAIL_GATEWAY = crypto.GatewayInfo(peer="webmail", tls="")
"""Who handed over a consent message the patient's browser signed (the provenance header)."""


@dataclass(frozen=True, slots=True)
class SharedDocument:
    """A patient's document as a professional reads it through a consent."""

    record: MessageRecord
    raw: bytes
    grant_id: str


@dataclass(frozen=True, slots=True)
class ShareCandidates:
    """What a patient's client needs to share documents with one professional: the active
    grants (their scopes) and the documents they may cover, with the patient's own slot.

    A document is a candidate when a grant *may* cover it: the client reads its categories
    (they are inside the sealed content) to decide for category-scoped grants."""

    professional: Address
    grants: tuple[Grant, ...]
    documents: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class ShareOffer:
    """A slot the patient's client made for a professional, with the document's categories
    as the client read them."""

    document_id: str
    professional: Address
    categories: frozenset[str]
    slot: bytes


@dataclass(frozen=True, slots=True)
class PurgeResult:
    plan: PurgePlan
    purged: tuple[Address, ...]
    blobs: tuple[BlobRef, ...]
    """Blobs no envelope names any more (inline ones are already gone)."""


def _raise(violations: list[Violation]) -> None:
    if violations:
        raise RuleViolation(violations[0].code, violations[0].reason)


class PatientService:
    """Operations on a patient's mailbox and record (see the module docstring)."""

    def __init__(
        self,
        *,
        store: MailboxStore,
        patients: PatientStore,
        blobs: BlobStore,
        keys: KeyDirectory,
        delivery: DeliveryService,
        rules: PatientDeliveryRules,
        clock: Clock,
        retention: RetentionPolicy | None = None,
    ) -> None:
        self._store = store
        self._patients = patients
        self._blobs = blobs
        self._keys = keys
        self._delivery = delivery
        self._rules = rules
        self._clock = clock
        self._retention = retention or RetentionPolicy()

    async def _patient(self, address: Address) -> AccountRecord:
        account = await self._store.get_account(address)
        if account is None or account.kind is not MailboxKind.PAT:
            raise RuleViolation("not-a-patient", f"{address} is not a patient mailbox")
        return account

    async def _facts(self, patient: Address) -> tuple[PatientFacts, PatientProfile]:
        profile, blocks = await self._patients.profile_and_blocks(patient)
        return PatientFacts(patient, profile.treating_doctor, profile.minor, blocks), profile

    def _draft(
        self,
        patient: Address,
        action: Action,
        subject: str,
        *,
        actor: Address | str | None = None,
        at: datetime | None = None,
        **details: str,
    ) -> HistoryDraft:
        return HistoryDraft(
            patient,
            str(actor if actor is not None else patient),
            action.value,
            subject,
            at or self._clock.now(),
            details,
        )

    # -- profile ------------------------------------------------------------------------

    async def profile(self, patient: Address) -> PatientProfile:
        await self._patient(patient)
        return await self._patients.get_profile(patient)

    async def declare_treating_doctor(self, patient: Address, doctor: Address | None) -> None:
        """Declare (or, with None, withdraw) the médecin traitant; it is never blocked."""
        await self._patient(patient)
        if doctor is not None:  # a local professional, or one of another operator
            account = await self._store.get_account(doctor)
            if (account is not None and account.kind is MailboxKind.PAT) or doctor == patient:
                raise RuleViolation(
                    "treating-doctor-not-professional", f"{doctor} is not a professional's mailbox"
                )
        profile = await self._patients.get_profile(patient)
        await self._patients.put_profile(replace(profile, treating_doctor=doctor))

    async def set_contact(
        self,
        patient: Address,
        *,
        email: str | None = None,
        phone: str | None = None,
        lang: str = "fr",
    ) -> None:
        """Where content-free notices go (a personal address or phone), and in which language."""
        await self._patient(patient)
        if lang not in ("fr", "en"):
            raise ValueError("lang is fr or en")
        profile = await self._patients.get_profile(patient)
        await self._patients.put_profile(
            replace(profile, contact_email=email, contact_phone=phone, lang=lang)
        )

    async def set_minor(self, patient: Address, minor: bool) -> None:
        await self._patient(patient)
        profile = await self._patients.get_profile(patient)
        await self._patients.put_profile(replace(profile, minor=minor))

    # -- blocks and masks ---------------------------------------------------------------

    async def block(self, patient: Address, professional: Address) -> None:
        """Block a professional; the médecin traitant cannot be (and the refusal is kept)."""
        await self._patient(patient)
        facts, profile = await self._facts(patient)
        account = await self._store.get_account(professional)
        kind = account.kind if account is not None else MailboxKind.PER
        violations = check_block(facts, Correspondent(professional, kind), lang=profile.lang)
        now = self._clock.now()
        if violations and violations[0].code == "block-treating-doctor":
            await self._patients.append_history(
                [
                    self._draft(
                        patient,
                        Action.BLOCK_REFUSED,
                        str(professional),
                        at=now,
                        professional=str(professional),
                        rule="block-treating-doctor",
                    )
                ]
            )
        _raise(violations)
        await self._patients.set_block(
            patient,
            professional,
            True,
            now,
            [
                self._draft(
                    patient,
                    Action.BLOCKED,
                    str(professional),
                    at=now,
                    professional=str(professional),
                )
            ],
        )

    async def unblock(self, patient: Address, professional: Address) -> None:
        await self._patient(patient)
        now = self._clock.now()
        await self._patients.set_block(
            patient,
            professional,
            False,
            now,
            [
                self._draft(
                    patient,
                    Action.UNBLOCKED,
                    str(professional),
                    at=now,
                    professional=str(professional),
                )
            ],
        )

    async def blocked(self, patient: Address) -> frozenset[Address]:
        return await self._patients.blocks(patient)

    async def mask(
        self, patient: Address, document_id: str, professionals: Sequence[Address]
    ) -> None:
        """Mask a document of the patient's record from professionals (never its author)."""
        await self._patient(patient)
        facts, profile = await self._facts(patient)
        try:
            stored = await self._store.find_message(patient, document_id)
        except NotFound:
            _raise(
                check_mask(
                    facts,
                    document_patient=Address("nobody", "invalid.invalid"),
                    document_author=patient,
                    professionals=professionals,
                    lang=profile.lang,
                )
            )
            raise
        author = stored.record.sender
        _raise(
            check_mask(
                facts,
                document_patient=patient,
                document_author=author,
                professionals=professionals,
                lang=profile.lang,
            )
        )
        now = self._clock.now()
        await self._patients.set_mask(
            patient,
            document_id,
            professionals,
            True,
            now,
            [
                self._draft(patient, Action.MASKED, document_id, at=now, professional=str(p))
                for p in professionals
            ],
        )

    async def unmask(
        self, patient: Address, document_id: str, professionals: Sequence[Address]
    ) -> None:
        await self._patient(patient)
        now = self._clock.now()
        await self._patients.set_mask(
            patient,
            document_id,
            professionals,
            False,
            now,
            [
                self._draft(patient, Action.UNMASKED, document_id, at=now, professional=str(p))
                for p in professionals
            ],
        )

    # -- consent ------------------------------------------------------------------------

    async def registry(self, patient: Address) -> ConsentRegistry:
        return await registry_of(self._patients, self._keys, patient)

    async def request_consent(
        self,
        professional: Address,
        keys: crypto.MailboxKeys,
        patient: Address,
        *,
        scope: Scope,
        purpose: str,
        duration_days: int,
        lang: str = "fr",
    ) -> tuple[ConsentRequest, Submitted]:
        """The professional asks; the request is delivered to the patient and recorded."""
        request = ConsentRequest.new(
            professional=professional,
            patient=patient,
            scope=scope,
            purpose=purpose,
            duration_days=duration_days,
            at=self._clock.now(),
        )
        raw = build_request(request, message_id=new_message_id(professional.domain), lang=lang)
        sent = await self._delivery.send(professional, keys, [patient], raw)
        return request, sent

    async def answer_consent(
        self,
        patient: Address,
        keys: crypto.MailboxKeys,
        request_id: str,
        decision: Decision,
        *,
        lang: str = "fr",
    ) -> ConsentResponse:
        """The patient's signed answer (signed here, with the keys of their session); a grant
        then shares the covered documents at once."""
        registry = await self.registry(patient)
        request = next((r for r in registry.pending_requests() if r.request_id == request_id), None)
        if request is None:
            raise NotFound(f"no pending consent request {request_id}")
        response = answer(request, decision, keys.signing_key, self._clock.now())
        raw = build_response(
            response, message_id=new_message_id(patient.domain), lang=lang, in_reply_to=None
        )
        await self._delivery.send(patient, keys, [request.professional], raw)
        if decision is Decision.GRANT:
            await self.share(patient, keys)
        return response

    async def revoke_consent(
        self, patient: Address, keys: crypto.MailboxKeys, request_id: str, *, lang: str = "fr"
    ) -> None:
        """The patient's signed withdrawal; its delivery deletes the slots of the grant."""
        registry = await self.registry(patient)
        grant = registry.grant(request_id)
        if grant is None:
            raise NotFound(f"no grant {request_id}")
        revocation = revoke(grant.response, keys.signing_key, self._clock.now())
        raw = build_revocation(revocation, message_id=new_message_id(patient.domain), lang=lang)
        await self._delivery.send(patient, keys, [grant.professional], raw)

    # The patient's device signs (the webmail: the key never leaves the browser) -----------

    def _check_signed_at(self, at: datetime) -> None:
        if abs(at - self._clock.now()) > ANSWER_CLOCK_SKEW:
            raise InvalidMessage(
                "the answer is dated too far from the server's clock; check the device's clock",
                "consent-time",
            )

    async def _carry(
        self, patient: Address, professional: Address, raw: bytes, kind: MessageKind
    ) -> Submitted:
        """Deliver a consent message signed on the patient's device. Its JSON carries the
        patient's own signature, which the delivery verifies against the published keys
        (as for any consent message); the envelope is sealed by the server, which must read
        it to record it, and says so in its provenance."""
        return await self._delivery.receive(
            patient,
            [professional],
            raw,
            gateway=_WEBMAIL_GATEWAY,
            kind=kind,
            sent_copy_for=patient,
        )

    async def record_answer(
        self, patient: Address, response: ConsentResponse, *, lang: str = "fr"
    ) -> Submitted:
        """Deliver an answer the patient signed on their device (``consent-*`` refusals:
        another patient, forged, unknown or answered request, a date off the clock)."""
        await self._patient(patient)
        if response.patient != patient:
            raise InvalidMessage(
                f"this answer is {response.patient}'s, not {patient}'s", "consent-wrong-patient"
            )
        self._check_signed_at(response.answered_at)
        raw = build_response(response, message_id=new_message_id(patient.domain), lang=lang)
        return await self._carry(patient, response.professional, raw, MessageKind.CONSENT_RESPONSE)

    async def record_revocation(
        self, patient: Address, revocation: ConsentRevocation, *, lang: str = "fr"
    ) -> Submitted:
        """Deliver a withdrawal the patient signed on their device; its delivery deletes
        the slots of the grant, as for one signed in the patient's session."""
        await self._patient(patient)
        if revocation.patient != patient:
            raise InvalidMessage(
                f"this withdrawal is {revocation.patient}'s, not {patient}'s",
                "consent-wrong-patient",
            )
        self._check_signed_at(revocation.revoked_at)
        raw = build_revocation(revocation, message_id=new_message_id(patient.domain), lang=lang)
        return await self._carry(
            patient, revocation.professional, raw, MessageKind.CONSENT_REVOCATION
        )

    # -- sharing under a grant ------------------------------------------------------------

    async def _document_slots(self, patient: Address) -> dict[str, bytes]:
        """The patient's documents (envelope id → the patient's own slot)."""
        found: dict[str, bytes] = {}
        for folder in await self._store.list_folders(patient):
            for record in await self._store.list_messages(patient, folder.name):
                if record.kind not in DOCUMENT_KINDS or record.envelope_id in found:
                    continue
                stored = await self._store.get_message(patient, folder.name, record.uid)
                found[record.envelope_id] = stored.slot
        return found

    async def share_candidates(self, patient: Address) -> list[ShareCandidates]:
        """Per professional with an active grant, the documents a grant may cover that they
        have no slot for yet (masked ones left out). Nothing here needs a key."""
        await self._patient(patient)
        registry = await self.registry(patient)
        grants = registry.active_grants(self._clock.now())
        if not grants:
            return []
        masks = await self._patients.masks(patient)
        documents = await self._document_slots(patient)
        result: list[ShareCandidates] = []
        for professional in sorted({g.professional for g in grants}, key=str):
            mine = tuple(g for g in grants if g.professional == professional)
            have = {s.document_id for s in await self._patients.shared_slots(patient, professional)}
            wanted = tuple(
                (document_id, slot)
                for document_id, slot in documents.items()
                if document_id not in have
                and professional not in masks.get(document_id, frozenset())
                and any(
                    g.request.scope.kind is not ScopeKind.DOCUMENT
                    or g.request.scope.document == document_id
                    for g in mine
                )
            )
            if wanted:
                result.append(ShareCandidates(professional, mine, wanted))
        return result

    async def accept_shares(
        self, patient: Address, offers: Sequence[ShareOffer]
    ) -> list[SharedSlotRecord]:
        """Store slots the patient's side made, each checked against an active grant: all
        of them or none (``consent-required``, ``share-slot``; an unknown document is
        :class:`NotFound`). A document the professional already has is left as it is."""
        await self._patient(patient)
        registry = await self.registry(patient)
        masks = await self._patients.masks(patient)
        documents = await self._document_slots(patient)
        now = self._clock.now()
        made: list[SharedSlotRecord] = []
        history: list[HistoryDraft] = []
        have: dict[Address, set[str]] = {}
        for offer in offers:
            if offer.document_id not in documents:
                raise NotFound(f"no document {offer.document_id}")
            if len(offer.slot) != crypto.SLOT_BYTES:
                raise RuleViolation("share-slot", f"a key slot is {crypto.SLOT_BYTES} bytes")
            document = DocumentRef(
                offer.document_id,
                patient,
                offer.categories,
                masks.get(offer.document_id, frozenset()),
            )
            grant = registry.grant_for(offer.professional, document, now)
            if grant is None:
                raise RuleViolation(
                    "consent-required",
                    f"no active consent lets {offer.professional} read {offer.document_id}",
                )
            if offer.professional not in have:
                shared = await self._patients.shared_slots(patient, offer.professional)
                have[offer.professional] = {s.document_id for s in shared}
            if offer.document_id in have[offer.professional]:
                continue
            have[offer.professional].add(offer.document_id)
            made.append(
                SharedSlotRecord(
                    patient,
                    offer.document_id,
                    offer.professional,
                    grant.grant_id,
                    offer.slot,
                    now,
                    offer.categories,
                )
            )
            history.append(
                self._draft(
                    patient,
                    Action.DOCUMENT_SHARED,
                    offer.document_id,
                    at=now,
                    document=offer.document_id,
                    grant=grant.grant_id,
                    professional=str(offer.professional),
                )
            )
        if made:
            await self._patients.add_shared_slots(made, history)
        return made

    def _open(self, ref: BlobRef, slot: bytes, keys: crypto.MailboxKeys) -> bytes:
        sink = io.BytesIO()
        with self._blobs.open(ref) as source:
            crypto.open_envelope(source, slot, keys, sink)
        return sink.getvalue()

    def _categories(self, raw: bytes) -> frozenset[str]:
        head = BytesParser(policy=email.policy.compat32).parsebytes(raw, headersonly=True)
        codes = str(head.get(CODECDA_HEADER, "") or "")
        return frozenset(c.strip() for c in codes.split(",") if c.strip())

    async def share(self, patient: Address, keys: crypto.MailboxKeys) -> list[SharedSlotRecord]:
        """Re-wrap, with the patient's unlocked keys, the content keys of every document an
        active grant covers and its professional has no slot for yet. Runs in the patient's
        session: at a grant, and whenever their keys are unlocked (new documents). The
        webmail does the same in the browser through :meth:`share_candidates` and
        :meth:`accept_shares`."""
        offers: list[ShareOffer] = []
        for candidates in await self.share_candidates(patient):
            published = await self._keys.lookup(candidates.professional)
            if published is None:
                continue
            to = crypto.EncryptionPublicKey(published.encryption_key)
            for document_id, slot in candidates.documents:
                stored = await self._store.find_message(patient, document_id)
                raw = await asyncio.to_thread(self._open, stored.record.blob, slot, keys)
                categories = self._categories(raw)
                document = DocumentRef(document_id, patient, categories)
                if not any(g.covers(document) for g in candidates.grants):
                    continue
                new = await asyncio.to_thread(crypto.reseal_slot, slot, keys, to)
                offers.append(ShareOffer(document_id, candidates.professional, categories, new))
        return await self.accept_shares(patient, offers)

    async def open_document(
        self,
        professional: Address,
        keys: crypto.MailboxKeys,
        patient: Address,
        document_id: str,
    ) -> SharedDocument:
        """A professional reads a patient's document through an active grant."""
        registry = await self.registry(patient)
        slot = await self._patients.shared_slot(document_id, professional)
        masks = await self._patients.masks(patient)
        now = self._clock.now()
        refusal = RuleViolation(
            "consent-required",
            f"{professional} has no active consent of {patient} to read document {document_id}",
        )
        if slot is None or slot.patient != patient:
            raise refusal
        document = DocumentRef(
            document_id, patient, slot.categories, masks.get(document_id, frozenset())
        )
        grant = registry.grant_for(professional, document, now)
        if grant is None:
            raise refusal
        stored = await self._store.find_message(patient, document_id)
        raw = await asyncio.to_thread(self._open, stored.record.blob, slot.slot, keys)
        await self._patients.append_history(
            [
                self._draft(
                    patient,
                    Action.DOCUMENT_READ_WITH_CONSENT,
                    document_id,
                    actor=professional,
                    at=now,
                    document=document_id,
                    grant=grant.grant_id,
                    professional=str(professional),
                )
            ]
        )
        await self._rules.notify(patient, NoticeEvent.RECORD_ACCESS)
        return SharedDocument(stored.record, raw, grant.grant_id)

    async def masks(self, patient: Address) -> dict[str, frozenset[Address]]:
        """Document id → the professionals the patient masked it from."""
        await self._patient(patient)
        return await self._patients.masks(patient)

    async def consents(self, patient: Address) -> tuple[list[ConsentRequest], list[Grant]]:
        """The requests waiting for the patient's answer and the grants active now."""
        await self._patient(patient)
        registry = await self.registry(patient)
        return registry.pending_requests(), registry.active_grants(self._clock.now())

    # -- history ------------------------------------------------------------------------

    async def history(self, patient: Address) -> list[HistoryEntry]:
        return await self._patients.history(patient)

    async def verify_history(self, patient: Address, anchor: Anchor | None = None) -> list[Problem]:
        return verify_chain(await self._patients.history(patient), patient=patient, anchor=anchor)

    # -- lifecycle ----------------------------------------------------------------------

    async def oppose(self, patient: Address) -> AccountRecord:
        """An objection within the opposition window closes the account now."""
        account = await self._patient(patient)
        profile = await self._patients.get_profile(patient)
        now = self._clock.now()
        _raise(check_opposition(account, now, self._retention, lang=profile.lang))
        return await self._patients.close_account(patient, now, opposed=True)

    async def close(self, address: Address) -> AccountRecord:
        """Close an account: it receives nothing more; its data is kept until the purge."""
        account = await self._store.get_account(address)
        if account is None:
            raise NotFound(f"no account {address}")
        _raise(check_closure(account, self._clock.now()))
        return await self._patients.close_account(address, self._clock.now())

    async def plan_purge(self) -> PurgePlan:
        return plan_purge(await self._store.list_accounts(), self._clock.now(), self._retention)

    async def purge(self, *, dry_run: bool = False) -> PurgeResult:
        """Remove the closed accounts past their retention, and nothing else."""
        plan = await self.plan_purge()
        if dry_run:
            return PurgeResult(plan, (), ())
        purged: list[Address] = []
        blobs: list[BlobRef] = []
        for address in plan.addresses:
            blobs.extend(await self._patients.purge_account(address))
            purged.append(address)
        return PurgeResult(plan, tuple(purged), tuple(blobs))

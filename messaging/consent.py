"""The patient's consent registry: who may read which documents, and the keys they get.

Professionals can always *send* to a patient; to *read* the patient's documents they need the
patient's consent (DOMAIN.md, "Patients"). The registry folds the consent messages of one
patient (:mod:`messaging.kinds.consent`) into grants and answers :meth:`ConsentRegistry.can_read`.
It is pure: the store keeps the messages (or their JSON), and the registry is rebuilt from
them with :meth:`ConsentRegistry.replay`.

Implementation notes (invariants):

- **A grant is active from the patient's signed answer** (``answered_at``) until its
  duration ends or the patient revokes it, whichever comes first: ``starts_at <= at <
  ends_at`` and ``at < revoked_at``. A refusal is recorded (the request is answered) but
  grants nothing. Every response and revocation is verified against the patient's signing
  keys *again* when it enters the registry, so a registry fed from storage trusts nothing
  the store says about consent: an edited row fails its signature.
- **A grant covers documents by scope**: the whole record (documents added during the
  grant included), documents with one of the listed categories, or the one document
  named. A document masked from a professional (:mod:`messaging.patient_rules`) is never
  readable by that professional, whatever the grant says.
- **The server never holds a content key.** Reading a document needs a key slot sealed to
  the professional's X25519 key; only the patient can make one, by opening their own slot
  with their unlocked keys and sealing the content key again (:func:`rewrap_slots`,
  :meth:`ConsentRegistry.share`), in the patient's session (the webmail does the same in
  the browser). A document that arrives while a grant is active is shared the next time
  the patient's keys are unlocked (:meth:`ConsentRegistry.documents_to_share`).
- **Revocation cannot take back a key already given.** Once a professional has received a
  content key (and perhaps read and kept the document), no cryptography can make them
  forget it. What revocation does: every slot made under the grant becomes a slot to
  delete (:meth:`ConsentRegistry.slots_to_delete`), the server deletes them and refuses
  to serve those documents to that professional, and documents shared *later* are never
  re-wrapped for them. The same holds when a grant expires.

Refusals are :class:`~messaging.errors.InvalidMessage` with a stable code:
``consent-wrong-patient`` (a message about another patient), ``consent-duplicate`` (an id
reused for different content), ``consent-unknown-request`` (a response to a request the
registry never saw), ``consent-mismatch`` (a response or revocation whose hash or parties
differ from what it names), ``consent-already-answered``, ``consent-time`` (an answer
before the request, a revocation before the grant), ``consent-not-granted`` (revoking a
refusal or an unknown grant), ``consent-already-revoked``, plus ``consent-unsigned`` and
``consent-forged`` from the signature checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from crypto import EncryptionPublicKey, MailboxKeys, SigningPublicKey, reseal_slot
from messaging.errors import InvalidMessage
from messaging.kinds.consent import (
    ConsentRequest,
    ConsentResponse,
    ConsentRevocation,
    Decision,
    ScopeKind,
)
from messaging.rules import Violation
from messaging.types import Address

__all__ = [
    "ConsentRegistry",
    "DocumentRef",
    "Grant",
    "SharedSlot",
    "check_consent_date",
    "rewrap_slots",
]


@dataclass(frozen=True, slots=True)
class DocumentRef:
    """What the registry needs to know of a document in the patient's record.

    ``document_id`` is the envelope id; ``categories`` are its type codes (the LOINC codes
    of ``X-MSS-CODECDA``); ``masked_from`` the professionals the patient masked it from.
    """

    document_id: str
    patient: Address
    categories: frozenset[str] = frozenset()
    masked_from: frozenset[Address] = frozenset()


@dataclass(frozen=True, slots=True)
class Grant:
    """A request the patient granted, with the interval during which it lets a read."""

    request: ConsentRequest
    response: ConsentResponse
    revocation: ConsentRevocation | None = None

    @property
    def grant_id(self) -> str:
        """A grant is named by the request it grants (a request is answered once)."""
        return self.request.request_id

    @property
    def professional(self) -> Address:
        return self.request.professional

    @property
    def starts_at(self) -> datetime:
        return self.response.answered_at

    @property
    def ends_at(self) -> datetime:
        """When the grant stops: the end of its duration or its revocation."""
        expiry = self.response.answered_at + timedelta(days=self.request.duration_days)
        if self.revocation is not None:
            return min(expiry, self.revocation.revoked_at)
        return expiry

    def active_at(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at

    def covers(self, document: DocumentRef) -> bool:
        """Whether the scope names ``document`` (masking and time are checked elsewhere)."""
        if document.patient != self.request.patient:
            return False
        scope = self.request.scope
        if scope.kind is ScopeKind.RECORD:
            return True
        if scope.kind is ScopeKind.CATEGORIES:
            return not scope.categories.isdisjoint(document.categories)
        return scope.document == document.document_id


@dataclass(frozen=True, slots=True)
class SharedSlot:
    """A key slot the patient made for a professional under a grant.

    The store keeps one per (document, professional), beside the patient's own slot; the
    slot opens with the professional's keys only.
    """

    grant_id: str
    document_id: str
    professional: Address
    slot: bytes


def _mismatch(reason: str) -> InvalidMessage:
    return InvalidMessage(reason, "consent-mismatch")


class ConsentRegistry:
    """The consent state of one patient, built from their consent messages in order."""

    def __init__(self, patient: Address, signing_keys: Iterable[SigningPublicKey]) -> None:
        """``signing_keys``: every signing key the patient has published, current and past
        (a response signed before a key rotation stays valid)."""
        self._patient = patient
        self._keys = tuple(signing_keys)
        self._requests: dict[str, ConsentRequest] = {}
        self._responses: dict[str, ConsentResponse] = {}
        self._revocations: dict[str, ConsentRevocation] = {}

    @classmethod
    def replay(
        cls,
        patient: Address,
        signing_keys: Iterable[SigningPublicKey],
        requests: Iterable[ConsentRequest],
        responses: Iterable[ConsentResponse] = (),
        revocations: Iterable[ConsentRevocation] = (),
    ) -> ConsentRegistry:
        """A registry rebuilt from stored messages (each one checked again)."""
        registry = cls(patient, signing_keys)
        for request in requests:
            registry.add_request(request)
        for response in responses:
            registry.add_response(response)
        for revocation in revocations:
            registry.add_revocation(revocation)
        return registry

    @property
    def patient(self) -> Address:
        return self._patient

    def _check_patient(self, patient: Address) -> None:
        if patient != self._patient:
            raise InvalidMessage(
                f"this consent concerns {patient}, not {self._patient}", "consent-wrong-patient"
            )

    def add_request(self, request: ConsentRequest) -> None:
        """Record a request; the same request twice is harmless."""
        self._check_patient(request.patient)
        known = self._requests.get(request.request_id)
        if known is not None and known != request:
            raise InvalidMessage(
                f"request id {request.request_id} is already used", "consent-duplicate"
            )
        self._requests[request.request_id] = request

    def add_response(self, response: ConsentResponse) -> Grant | None:
        """Record the patient's answer; the grant it makes, or None for a refusal.

        The signature is checked against the patient's keys, then the response must name a
        known request by id and hash, for the same professional, after it was made.
        """
        self._check_patient(response.patient)
        response.verify(self._keys)
        request = self._requests.get(response.request_id)
        if request is None:
            raise InvalidMessage(
                f"no request {response.request_id} to answer", "consent-unknown-request"
            )
        if response.request_hash != request.digest():
            raise _mismatch("the answer is not about the request as it was sent")
        if response.professional != request.professional:
            raise _mismatch("the answer names another professional than the request")
        if response.answered_at < request.requested_at:
            raise InvalidMessage("an answer cannot precede its request", "consent-time")
        known = self._responses.get(response.request_id)
        if known is not None and known != response:
            raise InvalidMessage(
                f"request {response.request_id} is already answered", "consent-already-answered"
            )
        self._responses[response.request_id] = response
        return self.grant(response.request_id)

    def add_revocation(self, revocation: ConsentRevocation) -> Grant:
        """Record the withdrawal of a grant; the grant as it now stands."""
        self._check_patient(revocation.patient)
        revocation.verify(self._keys)
        response = self._responses.get(revocation.request_id)
        if response is None or response.decision is not Decision.GRANT:
            raise InvalidMessage(
                f"request {revocation.request_id} was not granted", "consent-not-granted"
            )
        if revocation.response_hash != response.digest():
            raise _mismatch("the withdrawal names another answer than the grant")
        if revocation.professional != response.professional:
            raise _mismatch("the withdrawal names another professional than the grant")
        if revocation.revoked_at < response.answered_at:
            raise InvalidMessage("a withdrawal cannot precede its grant", "consent-time")
        known = self._revocations.get(revocation.request_id)
        if known is not None and known != revocation:
            raise InvalidMessage(
                f"the grant of {revocation.request_id} is already withdrawn",
                "consent-already-revoked",
            )
        self._revocations[revocation.request_id] = revocation
        grant = self.grant(revocation.request_id)
        assert grant is not None  # noqa: S101 - a granted response was found above
        return grant

    def grant(self, grant_id: str) -> Grant | None:
        """The grant of request ``grant_id``; None if unanswered or refused."""
        response = self._responses.get(grant_id)
        if response is None or response.decision is not Decision.GRANT:
            return None
        return Grant(self._requests[grant_id], response, self._revocations.get(grant_id))

    def grants(self) -> list[Grant]:
        """Every grant ever made, active or not, in the order answered."""
        found = (self.grant(request_id) for request_id in self._responses)
        return sorted((g for g in found if g is not None), key=lambda g: g.starts_at)

    def pending_requests(self) -> list[ConsentRequest]:
        """Requests the patient has not answered, oldest first."""
        pending = (r for r in self._requests.values() if r.request_id not in self._responses)
        return sorted(pending, key=lambda r: r.requested_at)

    def active_grants(self, at: datetime) -> list[Grant]:
        return [grant for grant in self.grants() if grant.active_at(at)]

    def grant_for(self, professional: Address, document: DocumentRef, at: datetime) -> Grant | None:
        """The active grant that lets ``professional`` read ``document`` at ``at``, if any:
        the one to name in the access history entry of the read."""
        if document.patient != self._patient or professional in document.masked_from:
            return None
        for grant in self.active_grants(at):
            if grant.professional == professional and grant.covers(document):
                return grant
        return None

    def can_read(self, professional: Address, document: DocumentRef, at: datetime) -> bool:
        """Whether the server may give ``professional`` ``document`` at ``at``."""
        return self.grant_for(professional, document, at) is not None

    def documents_to_share(
        self,
        professional: Address,
        documents: Iterable[DocumentRef],
        at: datetime,
        already_shared: Iterable[SharedSlot] = (),
    ) -> list[DocumentRef]:
        """The documents ``professional`` may read at ``at`` and has no slot for yet."""
        have = {s.document_id for s in already_shared if s.professional == professional}
        return [
            d for d in documents if d.document_id not in have and self.can_read(professional, d, at)
        ]

    def share(
        self,
        keys: MailboxKeys,
        professional: Address,
        professional_key: EncryptionPublicKey,
        documents: Iterable[tuple[DocumentRef, bytes]],
        at: datetime,
    ) -> list[SharedSlot]:
        """New slots for the documents ``professional`` may read at ``at``.

        ``documents`` pairs each document with the patient's own key slot; ``keys`` are the
        patient's unlocked keys (in the patient's session). Documents no active grant
        covers, or masked from the professional, get no slot. Raises ``ValueError`` when
        ``keys`` are not the patient's, ``crypto.EnvelopeError`` when a slot does not open.
        """
        if keys.signing_public not in self._keys:
            raise ValueError("these keys are not the patient's")
        shared: list[SharedSlot] = []
        for document, slot in documents:
            grant = self.grant_for(professional, document, at)
            if grant is None:
                continue
            new = reseal_slot(slot, keys, professional_key)
            shared.append(SharedSlot(grant.grant_id, document.document_id, professional, new))
        return shared

    def slots_to_delete(
        self, shared: Iterable[SharedSlot], documents: Mapping[str, DocumentRef], at: datetime
    ) -> list[SharedSlot]:
        """The shared slots the server must delete at ``at``: those whose professional no
        longer may read the document (the grant was revoked or expired, or the document
        was masked since), or whose document is unknown."""
        doomed: list[SharedSlot] = []
        for item in shared:
            document = documents.get(item.document_id)
            if document is None or not self.can_read(item.professional, document, at):
                doomed.append(item)
        return doomed


def rewrap_slots(
    keys: MailboxKeys, slots: Mapping[str, bytes], professional: EncryptionPublicKey
) -> dict[str, bytes]:
    """For each document id, a slot giving ``professional`` the content key that the
    patient's slot holds. Runs where the patient's keys are unlocked, never on the server.
    Raises ``crypto.EnvelopeError`` when a slot is not the patient's."""
    return {
        document_id: reseal_slot(slot, keys, professional) for document_id, slot in slots.items()
    }


def check_consent_date(
    signed_at: datetime, received_at: datetime, tolerance: timedelta = timedelta(minutes=15)
) -> list[Violation]:
    """Problems with the date a patient signed, seen from the server when it arrives.

    The registry trusts signed dates (the patient signs them); the delivery service calls
    this on arrival so that an answer or withdrawal is not backdated or dated in the future
    beyond clock skew.
    """
    if abs(signed_at - received_at) > tolerance:
        return [
            Violation(
                "consent-time",
                f"signed at {signed_at.isoformat()}, received at {received_at.isoformat()}: "
                f"more than {tolerance} apart",
            )
        ]
    return []

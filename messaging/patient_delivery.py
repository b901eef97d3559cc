"""The patient rules at delivery time: what :class:`~messaging.service.DeliveryService` asks
before sealing a message that a patient sends or receives, and after committing it.

:class:`PatientDeliveryRules` reads the facts the pure checks of
:mod:`messaging.patient_rules` need (the patient's profile, blocks and threads from the
:class:`~messaging.patient_ports.PatientStore`, pharmacies from the directory), the few
header fields the rules are about (``Subject``, ``X-MSS-MES``, ``Message-ID``,
``In-Reply-To``/``References``, ``Reply-To``), and returns the
:class:`~messaging.patient_ports.PatientEffects` the store commits with the delivery:
threads opened or closed, consent messages recorded, shared slots to delete, access-history
entries, patients to notify.

Rules applied (DOMAIN.md, "Patients"; codes of :mod:`messaging.patient_rules`):

- a patient writes to a professional only in a thread that professional opened and did not
  close, found by the thread id the client gives or by ``In-Reply-To``/``References``;
  a pharmacy may always be written to (``patient-new-thread``, ``thread-closed``,
  ``patient-to-patient``). A patient's consent answer or withdrawal to the professional it
  names, and a read receipt, are not conversation and pass;
- ``X-MSS-MES: FIN`` closes the message's thread, a ``[FIN]`` subject every earlier thread
  of the sender with the patient too;
- a blocked professional's message is refused (``sender-blocked``) and the attempt is
  written in the patient's history (its own transaction: nothing else is written);
- a document about a minor goes to the minor's own address (``minor-own-address``);
- consent messages are parsed, responses and withdrawals verified against the patient's
  published signing keys (``consent-unsigned``, ``consent-forged``), checked against the
  registry rebuilt from stored records, and recorded with their history entries; a
  withdrawal deletes the slots shared under its grant in the same transaction.

Implementation notes:

- The service holds the clear message while it seals it (end-to-end submissions are sealed
  server-side), so the rules read headers there; only the header section is parsed, except
  for consent messages and documents to patients, whose structured part is needed.
- A ``Message-ID`` is remembered as a keyed hash (``message_key``), enough to find a thread
  from a reply, and it is never stored in clear.
- Notices are content-free and sent after the commit; a notice that cannot be sent is
  logged and never undoes a delivery.
"""

from __future__ import annotations

import email.policy
import hashlib
import io
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses
from typing import BinaryIO

import crypto
from messaging._compose import Lang
from messaging.access_history import Action
from messaging.consent import ConsentRegistry
from messaging.directory import Directory
from messaging.errors import InvalidAddress, InvalidMessage, RuleViolation
from messaging.kinds.consent import (
    ConsentRequest,
    ConsentResponse,
    ConsentRevocation,
    Decision,
    canonical_json,
    parse_request,
    parse_response,
    parse_revocation,
)
from messaging.kinds.document import XDM_FILENAME
from messaging.kinds.notification import Channel, Notice, NoticeEvent, notice_for
from messaging.mdn import build_mdn, read_receipt
from messaging.mime import new_message_id
from messaging.notices import NoticeNotSent, NoticeSender
from messaging.patient_ports import (
    ConsentRecord,
    ConsentRecordKind,
    HistoryDraft,
    PatientEffects,
    PatientStore,
    ThreadUpdate,
)
from messaging.patient_rules import (
    Closure,
    Correspondent,
    PatientFacts,
    ThreadFacts,
    check_message_to_patient,
    check_minor_addressing,
    check_patient_message,
    closure_of,
    threads_to_close,
)
from messaging.ports import Clock, KeyDirectory, MailboxStore
from messaging.types import AccountRecord, Address, MailboxKind, MessageKind, MessageRecord
from messaging.xdm import XdmLimits, read_xdm

__all__ = [
    "CONSENT_KINDS",
    "DOCUMENT_KINDS",
    "MDN_SENT",
    "PatientDeliveryRules",
    "Submission",
    "message_key",
    "registry_of",
]

log = logging.getLogger("pli.patients")

DOCUMENT_KINDS = frozenset(
    {MessageKind.DOCUMENT, MessageKind.PRESCRIPTION, MessageKind.CERTIFICATE}
)
CONSENT_KINDS = frozenset(
    {MessageKind.CONSENT_REQUEST, MessageKind.CONSENT_RESPONSE, MessageKind.CONSENT_REVOCATION}
)
PHARMACIST_PROFESSION = "21"
"""TRE_G15 code of pharmacists: their mailboxes are the pharmacies a patient may write to."""
MDN_SENT = "$MDNSent"
"""The keyword of RFC 3503: a receipt was sent for this message, never send another."""

_MAX_WHOLE_PARSE = 30 * 1024 * 1024
_MAX_HEADER_SECTION = 256 * 1024
_KEY_CONTEXT = b"pli-thread-message-v1\x00"


@dataclass(frozen=True, slots=True)
class Submission:
    """What the delivery service knows of a submission when it asks the rules."""

    sender: Address
    sender_account: AccountRecord | None
    recipients: tuple[Address, ...]
    accounts: Mapping[Address, AccountRecord | None]
    kind: MessageKind
    envelope_id: str
    thread_id: str
    """The thread id given by the client, or the new one the service made."""
    thread_given: bool
    at: datetime
    provenance: str


def message_key(message_id: str) -> str:
    """The stored form of a ``Message-ID``: a hash, enough to find a thread again."""
    normalised = message_id.strip().strip("<>").strip()
    return hashlib.blake2b(_KEY_CONTEXT + normalised.encode(), digest_size=16).hexdigest()


def _message_ids(value: str | None) -> list[str]:
    if not value:
        return []
    return [part for part in str(value).replace(",", " ").split() if part.startswith("<")]


def _read(source: BinaryIO, size: int, whole: bool) -> tuple[Message, bytes | None]:
    """The header section (or the whole message) of ``source``, which is rewound after."""
    start = source.tell()
    try:
        if whole and size <= _MAX_WHOLE_PARSE:
            raw = source.read(size)
            return BytesParser(policy=email.policy.compat32).parsebytes(raw), raw
        head = b""
        while len(head) < _MAX_HEADER_SECTION:
            chunk = source.read(8192)
            if not chunk:
                break
            head += chunk
            if b"\r\n\r\n" in head or b"\n\n" in head:
                break
        parser = BytesParser(policy=email.policy.compat32)
        return parser.parsebytes(head, headersonly=True), None
    finally:
        source.seek(start)


def _one_address(value: str | None) -> Address | None:
    if not value:
        return None
    found = [a for _, a in getaddresses([str(value)]) if a]
    if len(found) != 1:
        return None
    try:
        return Address.parse(found[0])
    except InvalidAddress:
        return None


def _header(msg: Message, name: str) -> str | None:
    value = msg.get(name)
    return None if value is None else str(value)


async def registry_of(store: PatientStore, keys: KeyDirectory, patient: Address) -> ConsentRegistry:
    """The patient's consent registry, rebuilt from stored records (signatures re-checked)."""
    signing = [crypto.SigningPublicKey(raw) for raw in await keys.signing_keys(patient)]
    registry = ConsentRegistry(patient, signing)
    for record in await store.consent_records(patient):
        value = json.loads(record.body)
        if record.kind is ConsentRecordKind.REQUEST:
            registry.add_request(ConsentRequest.from_json(value))
        elif record.kind is ConsentRecordKind.RESPONSE:
            registry.add_response(ConsentResponse.from_json(value))
        else:
            registry.add_revocation(ConsentRevocation.from_json(value))
    return registry


class PatientDeliveryRules:
    """The patient hook of the delivery service (see the module docstring)."""

    def __init__(
        self,
        *,
        store: MailboxStore,
        patients: PatientStore,
        keys: KeyDirectory,
        clock: Clock,
        directory: Directory | None = None,
        notices: NoticeSender | None = None,
        notice_link: str = "https://localhost/",
    ) -> None:
        self._store = store
        self._patients = patients
        self._keys = keys
        self._clock = clock
        self._directory = directory
        self._notices = notices
        self._link = notice_link

    # -- before sealing -----------------------------------------------------------------

    async def before_delivery(
        self, submission: Submission, source: BinaryIO, size: int
    ) -> PatientEffects | None:
        """Check a submission against the patient rules; its effects, or None when no
        patient is involved. Raises ``RuleViolation`` or ``InvalidMessage``."""
        from_patient = (
            submission.sender_account is not None
            and submission.sender_account.kind is MailboxKind.PAT
        )
        to_patients = [
            r
            for r in submission.recipients
            if (a := submission.accounts.get(r)) is not None and a.kind is MailboxKind.PAT
        ]
        if not from_patient and not to_patients:
            return None
        whole = submission.kind in CONSENT_KINDS or (
            bool(to_patients) and submission.kind is MessageKind.DOCUMENT
        )
        msg, raw = _read(source, size, whole)
        if from_patient:
            return await self._from_patient(submission, msg, raw)
        return await self._to_patients(submission, msg, raw, to_patients)

    async def before_sealed_delivery(self, submission: Submission) -> PatientEffects | None:
        """The rules for an envelope sealed by its sender, whose content the server cannot
        read: they are judged on the routing header alone (the thread id it names, the
        accounts, blocks and the patient's status). What needs the content — consent
        messages, documents for a patient's record — is refused here
        (``sealed-needs-content``): it goes through the server's own sealing, where the
        rules can read it. A professional's ``FIN`` inside a sealed message is not seen."""
        from_patient = (
            submission.sender_account is not None
            and submission.sender_account.kind is MailboxKind.PAT
        )
        to_patients = [
            r
            for r in submission.recipients
            if (a := submission.accounts.get(r)) is not None and a.kind is MailboxKind.PAT
        ]
        if not from_patient and not to_patients:
            return None
        if submission.kind in CONSENT_KINDS or (
            to_patients and submission.kind is MessageKind.DOCUMENT
        ):
            raise RuleViolation(
                "sealed-needs-content",
                f"a {submission.kind.value} message to or from a patient must be sealed by the"
                " server, which checks its content against the patient's rules",
            )
        empty = Message()
        if from_patient:
            return await self._from_patient(submission, empty, None)
        return await self._to_patients(submission, empty, None, to_patients)

    async def _correspondent(
        self, address: Address, account: AccountRecord | None
    ) -> Correspondent:
        kind = account.kind if account is not None else MailboxKind.PER
        pharmacy = False
        if self._directory is not None:
            entry = await self._directory.get_mailbox(address)
            if entry is not None:
                kind = entry.kind
                pharmacy = any(
                    role.practitioner is not None
                    and role.practitioner.profession.code == PHARMACIST_PROFESSION
                    for role in entry.roles
                )
        return Correspondent(address, kind, pharmacy)

    async def _facts(self, patient: Address) -> tuple[PatientFacts, str]:
        profile, blocks = await self._patients.profile_and_blocks(patient)
        facts = PatientFacts(patient, profile.treating_doctor, profile.minor, blocks)
        return facts, profile.lang

    async def _from_patient(
        self, sub: Submission, msg: Message, raw: bytes | None
    ) -> PatientEffects:
        patient = sub.sender
        facts, lang = await self._facts(patient)
        own_id = _header(msg, "Message-ID")
        key = message_key(own_id) if own_id else None
        thread_id: str | None = sub.thread_id if sub.thread_given else None
        if thread_id is None:
            replied = (
                _message_ids(_header(msg, "In-Reply-To"))
                + _message_ids(_header(msg, "References"))[::-1]
            )
            thread_id = await self._patients.thread_of(patient, [message_key(m) for m in replied])
        threads = [t for t in await self._patients.threads(patient) if t.thread_id == thread_id]
        consents: list[ConsentRecord] = []
        history: list[HistoryDraft] = []
        unshare: list[tuple[str, Address]] = []
        exempt: set[Address] = set()
        if sub.kind is MessageKind.RECEIPT:
            exempt.update(sub.recipients)
        elif sub.kind in (MessageKind.CONSENT_RESPONSE, MessageKind.CONSENT_REVOCATION):
            professional = await self._consent_from_patient(sub, raw, consents, history, unshare)
            exempt.add(professional)
        elif sub.kind is MessageKind.APPOINTMENT:
            history.extend(
                HistoryDraft(
                    patient,
                    str(patient),
                    Action.APPOINTMENT_ANSWERED.value,
                    str(recipient),
                    sub.at,
                    {"professional": str(recipient), "envelope": sub.envelope_id},
                )
                for recipient in sub.recipients
            )
        violations = []
        updates: list[ThreadUpdate] = []
        final_thread = thread_id or sub.thread_id
        for recipient in sub.recipients:
            if recipient in exempt:
                continue
            correspondent = await self._correspondent(recipient, sub.accounts.get(recipient))
            thread = next((t for t in threads if recipient in t.answers_to()), None)
            found = check_patient_message(facts, [correspondent], thread, sub.at, lang=lang)
            violations.extend(found)
            if found:
                continue
            if thread is not None:
                updates.append(
                    ThreadUpdate(
                        patient,
                        thread.thread_id,
                        thread.professional,
                        thread.opened_by,
                        sub.at,
                        message_key=key,
                    )
                )
            else:  # a pharmacy: the patient opens the thread
                updates.append(
                    ThreadUpdate(patient, final_thread, recipient, patient, sub.at, message_key=key)
                )
        if violations:
            raise RuleViolation(violations[0].code, "; ".join(v.reason for v in violations))
        return PatientEffects(
            thread_id=thread_id,
            threads=tuple(updates),
            consents=tuple(consents),
            unshare=tuple(unshare),
            history=tuple(history),
        )

    async def _consent_from_patient(
        self,
        sub: Submission,
        raw: bytes | None,
        consents: list[ConsentRecord],
        history: list[HistoryDraft],
        unshare: list[tuple[str, Address]],
    ) -> Address:
        if raw is None:
            raise InvalidMessage("a consent message this large is refused", "consent-too-large")
        patient = sub.sender
        signing = [crypto.SigningPublicKey(k) for k in await self._keys.signing_keys(patient)]
        registry = await registry_of(self._patients, self._keys, patient)
        if sub.kind is MessageKind.CONSENT_RESPONSE:
            response = parse_response(raw, signing)
            self._check_parties(response.patient, patient, response.professional, sub)
            grant = registry.add_response(response)
            consents.append(
                ConsentRecord(
                    patient,
                    response.request_id,
                    ConsentRecordKind.RESPONSE,
                    response.professional,
                    canonical_json(response.to_json()),
                    sub.at,
                )
            )
            details = {
                "grant": response.request_id,
                "response": response.response_id,
                "decision": response.decision.value,
                "professional": str(response.professional),
            }
            if grant is not None and response.decision is Decision.GRANT:
                details["until"] = grant.ends_at.strftime("%Y-%m-%dT%H:%M:%SZ")
            history.append(
                HistoryDraft(
                    patient,
                    str(patient),
                    Action.CONSENT_ANSWERED.value,
                    response.request_id,
                    sub.at,
                    details,
                )
            )
            return response.professional
        revocation = parse_revocation(raw, signing)
        self._check_parties(revocation.patient, patient, revocation.professional, sub)
        registry.add_revocation(revocation)
        consents.append(
            ConsentRecord(
                patient,
                revocation.request_id,
                ConsentRecordKind.REVOCATION,
                revocation.professional,
                canonical_json(revocation.to_json()),
                sub.at,
            )
        )
        history.append(
            HistoryDraft(
                patient,
                str(patient),
                Action.CONSENT_REVOKED.value,
                revocation.request_id,
                sub.at,
                {
                    "grant": revocation.request_id,
                    "revocation": revocation.revocation_id,
                    "professional": str(revocation.professional),
                },
            )
        )
        shared = [
            s
            for s in await self._patients.shared_slots(patient, revocation.professional)
            if s.grant_id == revocation.request_id
        ]
        if shared:
            unshare.extend((s.document_id, s.professional) for s in shared)
            history.append(
                HistoryDraft(
                    patient,
                    "operator",
                    Action.DOCUMENT_UNSHARED.value,
                    str(revocation.professional),
                    sub.at,
                    {
                        "grant": revocation.request_id,
                        "professional": str(revocation.professional),
                        "slots": str(len(shared)),
                    },
                )
            )
        return revocation.professional

    @staticmethod
    def _check_parties(
        named_patient: Address, patient: Address, professional: Address, sub: Submission
    ) -> None:
        if named_patient != patient:
            raise InvalidMessage(
                f"this consent is about {named_patient}, not its sender", "consent-sender-mismatch"
            )
        if professional not in sub.recipients:
            raise InvalidMessage(
                f"a consent message goes to the professional it names, {professional}",
                "consent-mismatch",
            )

    async def _to_patients(
        self, sub: Submission, msg: Message, raw: bytes | None, patients: Sequence[Address]
    ) -> PatientEffects:
        sender = sub.sender
        blocked: list[tuple[Address, str]] = []
        facts: dict[Address, tuple[PatientFacts, str]] = {}
        for patient in patients:
            facts[patient] = await self._facts(patient)
            found = check_message_to_patient(sender, facts[patient][0], lang=facts[patient][1])
            if found:
                blocked.append((patient, found[0].reason))
        if blocked:
            # The refusal is the action: its entry is all this transaction writes.
            await self._patients.append_history(
                [
                    HistoryDraft(
                        patient,
                        str(sender),
                        Action.BLOCK_ATTEMPTED.value,
                        str(sender),
                        sub.at,
                        {"professional": str(sender), "rule": "sender-blocked"},
                    )
                    for patient, _ in blocked
                ]
            )
            raise RuleViolation("sender-blocked", "; ".join(reason for _, reason in blocked))
        if sub.kind is MessageKind.DOCUMENT and raw is not None:
            await self._check_minor(sub, msg, patients)

        closure = closure_of(_header(msg, "Subject"), _header(msg, "X-MSS-MES"))
        reply_to = _one_address(_header(msg, "Reply-To"))
        own_id = _header(msg, "Message-ID")
        key = message_key(own_id) if own_id else None
        thread_id = sub.thread_id
        resolved: str | None = None
        if not sub.thread_given:
            replied = (
                _message_ids(_header(msg, "In-Reply-To"))
                + _message_ids(_header(msg, "References"))[::-1]
            )
            if replied:
                resolved = await self._patients.thread_of(
                    patients[0], [message_key(m) for m in replied]
                )
                thread_id = resolved or thread_id
        # Who the sender is matters only to a closure; skip the lookups otherwise (hot path).
        sender_as = (
            await self._correspondent(sender, sub.sender_account)
            if closure is not Closure.NONE
            else None
        )
        updates: list[ThreadUpdate] = []
        history: list[HistoryDraft] = []
        consents: list[ConsentRecord] = []
        request = None
        if sub.kind is MessageKind.CONSENT_REQUEST:
            if raw is None:
                raise InvalidMessage("a consent message this large is refused", "consent-too-large")
            request = parse_request(raw)
            if request.professional != sender:
                raise InvalidMessage(
                    "a consent request comes from the professional it names",
                    "consent-sender-mismatch",
                )
            if request.patient not in patients or len(sub.recipients) != 1:
                raise InvalidMessage(
                    "a consent request goes to the one patient it names", "consent-wrong-patient"
                )
        for patient in patients:
            closes = closure is not Closure.NONE
            updates.append(
                ThreadUpdate(
                    patient, thread_id, sender, sender, sub.at, reply_to, closes, message_key=key
                )
            )
            known: dict[str, ThreadFacts] = {}
            closing: list[str] = []
            if sender_as is not None:
                if closure is Closure.EARLIER:
                    known = {t.thread_id: t for t in await self._patients.threads(patient)}
                closing = threads_to_close(
                    sender=sender_as,
                    patient=patient,
                    thread_id=thread_id,
                    at=sub.at,
                    closure=closure,
                    threads=known.values(),
                )
            for closed in closing:
                earlier: ThreadFacts | None = known.get(closed)
                if closed != thread_id and earlier is not None:
                    updates.append(
                        ThreadUpdate(
                            patient,
                            closed,
                            earlier.professional,
                            earlier.opened_by,
                            sub.at,
                            closes=True,
                        )
                    )
                history.append(
                    HistoryDraft(
                        patient,
                        str(sender),
                        Action.THREAD_CLOSED.value,
                        closed,
                        sub.at,
                        {"thread": closed},
                    )
                )
            if sub.kind in DOCUMENT_KINDS:
                history.append(
                    HistoryDraft(
                        patient,
                        str(sender),
                        Action.DOCUMENT_SENT.value,
                        sub.envelope_id,
                        sub.at,
                        {"document": sub.envelope_id, "provenance": sub.provenance},
                    )
                )
            if request is not None and patient == request.patient:
                registry = await registry_of(self._patients, self._keys, patient)
                registry.add_request(request)
                consents.append(
                    ConsentRecord(
                        patient,
                        request.request_id,
                        ConsentRecordKind.REQUEST,
                        sender,
                        canonical_json(request.to_json()),
                        sub.at,
                    )
                )
                history.append(
                    HistoryDraft(
                        patient,
                        str(sender),
                        Action.CONSENT_REQUESTED.value,
                        request.request_id,
                        sub.at,
                        {
                            "grant": request.request_id,
                            "professional": str(sender),
                            "scope": request.scope.kind.value,
                        },
                    )
                )
        return PatientEffects(
            thread_id=resolved,
            threads=tuple(updates),
            consents=tuple(consents),
            history=tuple(history),
            notify=tuple(patients),
        )

    async def _check_minor(
        self, sub: Submission, msg: Message, patients: Sequence[Address]
    ) -> None:
        """A document about a minor must reach the minor's own mailbox.

        The patient a document is about is the one of its XDM archive; only that archive is
        read (the message was parsed once already, cheaply), never the whole document.
        """
        archive = next(
            (
                part.get_payload(decode=True)
                for part in msg.walk()
                if str(part.get_filename() or "").upper() == XDM_FILENAME
            ),
            None,
        )
        if not isinstance(archive, bytes):
            return  # no archive: no identity to check against
        try:
            ins = read_xdm(archive, XdmLimits(allow_test_ins=True)).submission.patient
        except InvalidMessage:
            return  # the reader of the document refuses it on its own terms
        concerned = Address(str(ins).lower(), patients[0].domain)
        if concerned in patients:
            return
        minor = (await self._patients.get_profile(concerned)).minor
        if not minor and self._directory is not None:
            listed = await self._directory.find_patient(ins)
            if listed is not None:
                concerned = listed.address
                minor = listed.minor
        facts = PatientFacts(concerned, minor=minor)
        _, lang = await self._facts(patients[0])
        found = check_minor_addressing(facts, sub.recipients, lang=lang)
        if found:
            raise RuleViolation(found[0].code, found[0].reason)

    # -- after the commit ---------------------------------------------------------------

    async def after_delivery(self, effects: PatientEffects, kind: MessageKind) -> None:
        """Send the content-free notices of a committed delivery."""
        if kind in (MessageKind.NOTIFICATION, MessageKind.RECEIPT):
            return
        for patient in effects.notify:
            await self.notify(patient, None, kind)

    async def notify(
        self, patient: Address, event: NoticeEvent | None, kind: MessageKind | None = None
    ) -> None:
        """Send one content-free notice to the patient's personal contact, if any."""
        if self._notices is None:
            return
        profile = await self._patients.get_profile(patient)
        lang: Lang = "en" if profile.lang == "en" else "fr"
        channel, destination = Channel.EMAIL, profile.contact_email
        if destination is None and profile.contact_phone is not None:
            channel, destination = Channel.SMS, profile.contact_phone
        if destination is None:
            return
        try:
            if event is None:
                assert kind is not None  # noqa: S101 - one of the two is given
                notice = notice_for(
                    kind, channel=channel, destination=destination, link=self._link, lang=lang
                )
            else:
                notice = Notice(event, channel, destination, self._link, lang)
            await self._notices.send(notice)
        except (NoticeNotSent, InvalidMessage) as error:
            # The delivery is committed whatever happens to its notice; never log the
            # destination (a personal address).
            log.warning("notice not sent", extra={"reason": str(error)})

    # -- reading ------------------------------------------------------------------------

    async def read_receipt(
        self, reader: Address, record: MessageRecord, raw: bytes
    ) -> tuple[Address, bytes] | None:
        """The MDN a patient's client sends on opening ``record``, when one was asked.

        Only for a patient, once per message (``$MDNSent``), never for a report, and only
        to the message's own sender: a receipt is never a way to make Pli mail a third
        party.
        """
        if MDN_SENT in record.flags or record.kind in (
            MessageKind.RECEIPT,
            MessageKind.NOTIFICATION,
        ):
            return None
        account = await self._store.get_account(reader)
        if account is None or account.kind is not MailboxKind.PAT:
            return None
        msg, _ = _read(io.BytesIO(raw), len(raw), False)
        notify = _one_address(_header(msg, "Disposition-Notification-To"))
        original = _header(msg, "Message-ID")
        if notify is None or notify != record.sender or not original:
            return None
        profile = await self._patients.get_profile(reader)
        lang: Lang = "en" if profile.lang == "en" else "fr"
        mdn = read_receipt(reader=reader, notify=notify, original_message_id=original.strip())
        built = build_mdn(
            mdn, message_id=new_message_id(reader.domain), date=self._clock.now(), lang=lang
        )
        return notify, built

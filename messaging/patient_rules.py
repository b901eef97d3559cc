"""The patient rules of *Mon espace santé* messaging, as pure ``check_*`` functions.

What they implement (DOMAIN.md, "Patients" and "Message format"):

- only professionals and establishments open a conversation; the patient replies within a
  thread a professional opened — to that mailbox, or to the ``Reply-To`` mailbox it named —
  except that a patient may write first to a pharmacy (:func:`check_patient_message`);
- ``X-MSS-MES: FIN`` on a message to a patient closes its thread, and a subject of exactly
  ``[FIN]`` closes every earlier thread of that mailbox with that patient
  (:func:`closure_of`, :func:`threads_to_close`); the patient can no longer reply there;
- a patient blocks and unblocks professionals, never their declared médecin traitant
  (:func:`check_block`); a blocked professional's message is refused
  (:func:`check_message_to_patient`);
- a patient masks a document of their record from chosen professionals
  (:func:`check_mask`; the consent registry then never lets them read it);
- mail concerning a minor goes to the minor's own address (:func:`check_minor_addressing`).

Following the "pure checks, thin hooks" habit, each function takes small frozen facts
(:class:`PatientFacts`, :class:`Correspondent`, :class:`ThreadFacts`) that the delivery
service reads from the store and the directory, and returns a list of
:class:`~messaging.rules.Violation` with stable codes; the service raises
:class:`~messaging.errors.RuleViolation` for the first one. Reasons are written for the
person who will read them — often a patient — in French by default and in English with
``lang="en"``; :func:`explain` gives the text of a code.

Codes: ``patient-new-thread``, ``patient-to-patient``, ``thread-closed``,
``sender-blocked``, ``block-treating-doctor``, ``block-not-professional``,
``mask-not-own-document``, ``mask-author``, ``mask-nobody``, ``minor-own-address``.

Implementation notes:

- The subject and ``X-MSS-MES`` travel inside the sealed message, out of the server's
  sight. For clear input (SMTP, API) the service reads them before sealing; for an
  end-to-end submission the sender's client declares the closure. Trusting the sender here
  is sound: a closure only ever restricts replies *to that sender*.
- Pharmacies may always be written to, even in a thread they closed: the patient could
  open a new one anyway, so refusing the reply would only add friction.
- The médecin traitant is never treated as blocked, even if a block predates their
  declaration: the rule is that they cannot be blocked, whatever the order of events.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from messaging.rules import Violation
from messaging.types import Address, MailboxKind

__all__ = [
    "FIN_SUBJECT",
    "MES_HEADER",
    "REASONS",
    "Closure",
    "Correspondent",
    "PatientFacts",
    "ThreadFacts",
    "check_block",
    "check_mask",
    "check_message_to_patient",
    "check_minor_addressing",
    "check_patient_message",
    "closure_of",
    "explain",
    "threads_to_close",
]

FIN_SUBJECT = "[FIN]"
MES_HEADER = "X-MSS-MES"

REASONS: dict[str, tuple[str, str]] = {
    "patient-new-thread": (
        "Vous ne pouvez pas écrire en premier à {recipient}. Vous pouvez répondre à un message "
        "que ce professionnel vous a envoyé, ou écrire à une pharmacie.",
        "You cannot write first to {recipient}. You can reply to a message this professional "
        "sent you, or write to a pharmacy.",
    ),
    "patient-to-patient": (
        "Votre messagerie santé sert à échanger avec des professionnels de santé : vous ne "
        "pouvez pas écrire à {recipient}.",
        "Your health mailbox is for writing to health professionals: you cannot write to "
        "{recipient}.",
    ),
    "thread-closed": (
        "{recipient} a clos cette conversation : vous ne pouvez plus y répondre.",
        "{recipient} closed this conversation: you can no longer reply to it.",
    ),
    "sender-blocked": (
        "Ce patient n'accepte pas de messages de {sender}.",
        "This patient does not accept messages from {sender}.",
    ),
    "block-treating-doctor": (
        "Vous ne pouvez pas bloquer votre médecin traitant. Pour en changer, déclarez d'abord "
        "un nouveau médecin traitant.",
        "You cannot block your regular doctor (médecin traitant). To change, first declare a "
        "new regular doctor.",
    ),
    "block-not-professional": (
        "Seule la messagerie d'un professionnel ou d'un établissement de santé peut être bloquée.",
        "Only the mailbox of a health professional or organisation can be blocked.",
    ),
    "mask-not-own-document": (
        "Ce document ne fait pas partie de votre dossier.",
        "This document is not part of your record.",
    ),
    "mask-author": (
        "{professional} est l'auteur de ce document : on ne peut pas le lui masquer.",
        "{professional} wrote this document: it cannot be masked from them.",
    ),
    "mask-nobody": (
        "Choisissez au moins un professionnel à qui masquer ce document.",
        "Choose at least one professional to mask this document from.",
    ),
    "minor-own-address": (
        "Un message concernant un patient mineur doit être adressé à sa propre messagerie, "
        "{patient}.",
        "A message about a minor must be addressed to the minor's own mailbox, {patient}.",
    ),
}
"""French and English text of every code; ``{names}`` are filled by the checks."""


def explain(code: str, lang: str = "fr", **values: object) -> str:
    """The reason a person reads for ``code``, in French (default) or English."""
    french, english = REASONS[code]
    template = english if lang == "en" else french
    return template.format(**values)


def _violation(code: str, lang: str, **values: object) -> Violation:
    return Violation(code, explain(code, lang, **values))


class Closure(StrEnum):
    """What a message to a patient closes."""

    NONE = "none"
    THREAD = "thread"
    """``X-MSS-MES: FIN``: the message's own thread."""
    EARLIER = "earlier"
    """A subject of exactly ``[FIN]``: every earlier thread of the mailbox with the patient,
    and this message's own."""


@dataclass(frozen=True, slots=True)
class PatientFacts:
    """A patient as the rules see them: their address, médecin traitant, minority, blocks."""

    address: Address
    treating_doctor: Address | None = None
    minor: bool = False
    blocked: frozenset[Address] = frozenset()

    def has_blocked(self, mailbox: Address) -> bool:
        """Whether the patient's block stops ``mailbox`` (never their médecin traitant)."""
        return mailbox in self.blocked and mailbox != self.treating_doctor


@dataclass(frozen=True, slots=True)
class Correspondent:
    """A mailbox on the other side of a patient's exchange.

    ``pharmacy`` is true for the mailbox of a pharmacy or a pharmacist, as the directory
    says (profession or structure category); it is what the patient's exception needs.
    """

    address: Address
    kind: MailboxKind
    pharmacy: bool = False

    @property
    def is_patient(self) -> bool:
        return self.kind is MailboxKind.PAT


@dataclass(frozen=True, slots=True)
class ThreadFacts:
    """A conversation between one patient and one professional mailbox.

    ``opened_by`` is the sender of its first message; ``reply_to`` the ``Reply-To`` mailbox
    that message named (an APP mailbox replying through its organisation); ``closed_at``
    when a closure reached it.
    """

    thread_id: str
    patient: Address
    professional: Address
    opened_by: Address
    opened_at: datetime
    reply_to: Address | None = None
    closed_at: datetime | None = None

    def closed(self, at: datetime) -> bool:
        return self.closed_at is not None and self.closed_at <= at

    def answers_to(self) -> frozenset[Address]:
        """The mailboxes a patient's reply in this thread may go to."""
        found = {self.professional}
        if self.reply_to is not None:
            found.add(self.reply_to)
        return frozenset(found)


def closure_of(subject: str | None, mss_mes: str | None) -> Closure:
    """What a message to a patient closes, from its subject and ``X-MSS-MES`` header.

    The subject must be exactly ``[FIN]`` (surrounding whitespace, which header folding
    may add, aside); ``X-MSS-MES`` is compared without regard to case.
    """
    if subject is not None and subject.strip() == FIN_SUBJECT:
        return Closure.EARLIER
    if mss_mes is not None and mss_mes.strip().upper() == "FIN":
        return Closure.THREAD
    return Closure.NONE


def threads_to_close(
    *,
    sender: Correspondent,
    patient: Address,
    thread_id: str,
    at: datetime,
    closure: Closure,
    threads: Iterable[ThreadFacts],
) -> list[str]:
    """The ids of the threads a message from ``sender`` to ``patient`` closes.

    Patients close nothing; ``X-MSS-MES: FIN`` closes ``thread_id``; ``[FIN]`` closes it
    and every thread between ``sender`` and ``patient`` opened at or before ``at`` and not
    closed yet. ``thread_id`` is always listed for a closure, known thread or not (a
    ``[FIN]`` message opens a thread that is closed from the start).
    """
    if closure is Closure.NONE or sender.is_patient:
        return []
    closing = [thread_id]
    if closure is Closure.EARLIER:
        for thread in threads:
            if (
                thread.patient == patient
                and sender.address in thread.answers_to()
                and thread.opened_at <= at
                and not thread.closed(at)
                and thread.thread_id not in closing
            ):
                closing.append(thread.thread_id)
    return closing


def check_patient_message(
    patient: PatientFacts,
    recipients: Sequence[Correspondent],
    thread: ThreadFacts | None,
    at: datetime,
    *,
    lang: str = "fr",
) -> list[Violation]:
    """The violations of a message a patient sends.

    ``thread`` is the thread the message continues (the store's thread of this id for this
    patient), or None for a new conversation. Each recipient must be a pharmacy, or a
    mailbox the thread answers to, in a thread a professional opened that is not closed.
    """
    violations: list[Violation] = []
    for recipient in recipients:
        if recipient.is_patient:
            violations.append(_violation("patient-to-patient", lang, recipient=recipient.address))
            continue
        if recipient.pharmacy:
            continue
        replies_here = (
            thread is not None
            and thread.patient == patient.address
            and thread.opened_by != patient.address
            and recipient.address in thread.answers_to()
        )
        if not replies_here:
            violations.append(_violation("patient-new-thread", lang, recipient=recipient.address))
        elif thread is not None and thread.closed(at):
            violations.append(_violation("thread-closed", lang, recipient=recipient.address))
    return violations


def check_message_to_patient(
    sender: Address, patient: PatientFacts, *, lang: str = "fr"
) -> list[Violation]:
    """The violations of a message from ``sender`` to ``patient``: a block.

    The service records a ``block-attempted`` entry in the patient's access history when
    this refuses a message.
    """
    if patient.has_blocked(sender):
        return [_violation("sender-blocked", lang, sender=sender)]
    return []


def check_block(
    patient: PatientFacts, target: Correspondent, *, lang: str = "fr"
) -> list[Violation]:
    """The violations of ``patient`` blocking ``target``. Unblocking is always allowed."""
    if target.is_patient or target.address == patient.address:
        return [_violation("block-not-professional", lang)]
    if target.address == patient.treating_doctor:
        return [_violation("block-treating-doctor", lang)]
    return []


def check_mask(
    patient: PatientFacts,
    *,
    document_patient: Address,
    document_author: Address,
    professionals: Iterable[Address],
    lang: str = "fr",
) -> list[Violation]:
    """The violations of ``patient`` masking a document from ``professionals``.

    The document must be in the patient's own record, and its author always keeps it (they
    wrote it and hold its key).
    """
    if document_patient != patient.address:
        return [_violation("mask-not-own-document", lang)]
    chosen = list(professionals)
    if not chosen:
        return [_violation("mask-nobody", lang)]
    if document_author in chosen:
        return [_violation("mask-author", lang, professional=document_author)]
    return []


def check_minor_addressing(
    concerned: PatientFacts, recipients: Iterable[Address], *, lang: str = "fr"
) -> list[Violation]:
    """The violations of a message about ``concerned`` sent to ``recipients``.

    Mail about a minor goes to the minor's own address (DOMAIN.md, "Patients"): it must be
    among the recipients. Adults are not constrained here.
    """
    if concerned.minor and concerned.address not in set(recipients):
        return [_violation("minor-own-address", lang, patient=concerned.address)]
    return []

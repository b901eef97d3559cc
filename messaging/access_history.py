"""The patient's access history: a per-patient, hash-chained log of actions on their record.

Every action by someone else on a patient's record or mailbox — a document sent, a document
read through a consent, a consent asked, answered or revoked, a message refused because the
patient blocked its sender — is an entry the patient can read and verify (DOMAIN.md,
"Patients" and "Traces"). The store writes the entry in the same transaction as the action
it records; this module decides what an entry is, how it is chained and how a chain is
checked. It is pure: no storage, no clock.

Why a hash chain: each entry carries the hash of the entry before it, and its own hash
covers every field plus that link. Editing an entry changes its hash, which no longer
matches the one stored (``history-hash``), or, if the editor recomputes it, no longer
matches the link of the next entry (``history-link``); deleting, inserting or reordering an
entry breaks a link and the entry numbers (``history-sequence``). Only someone who rewrites
*every* later entry escapes those checks, and that is what the anchor is for: the patient's
client remembers the number and hash of the last entry it verified
(:class:`Anchor`) and :func:`verify_chain` reports a history that no longer contains it
(``history-anchor``) or stops before it (``history-truncated``, the one deletion a chain
alone cannot see: its last entries). A chain does not stop a determined operator from
rewriting history nobody anchored; it makes every such rewrite visible to anyone who kept
an anchor, which a plain table never does.

Implementation notes (invariants):

- **Canonical, unambiguous encoding** (:func:`canonical_encoding`): the context
  ``pli-access-history-v1\\x00``, the entry number as u64 big-endian, then every text field
  as u32 big-endian byte length and UTF-8 bytes (patient, actor, action, subject, time), the
  details as a u32 count of ``(key, value)`` pairs sorted by key, each written the same way,
  and the 32-byte link. Length prefixes make the encoding injective — no choice of field
  values can make two different entries encode alike — and trivial to reproduce in
  JavaScript. The hash is BLAKE2b-256 (libsodium's ``crypto_generichash``) of it.
- Times are UTC in RFC 3339 with microseconds (``2026-11-22T09:00:00.000000Z``): what
  PostgreSQL keeps, one spelling per instant.
- The first entry links to 32 zero bytes and is number 0; the patient's address is in
  every entry, so an entry moved to another patient's chain fails its hash.
- **Entries carry no message content.** :func:`append` accepts detail keys from
  :data:`DETAIL_KEYS` only (ids, addresses, codes), values of at most 200 characters
  without control characters: a subject line or a document title has nowhere to go.
- :class:`HistoryEntry` accepts any stored values, so a tampered row can always be loaded
  and reported by :func:`verify_chain`, never crash it; validation happens in
  :func:`append`.

Problem codes: ``history-hash``, ``history-link``, ``history-sequence``,
``history-patient``, ``history-malformed``, ``history-anchor``, ``history-truncated``.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from messaging.types import Address

__all__ = [
    "CONTEXT",
    "DETAIL_KEYS",
    "GENESIS",
    "MAX_DETAIL",
    "Action",
    "Anchor",
    "HistoryEntry",
    "Problem",
    "anchor_of",
    "append",
    "canonical_encoding",
    "entry_hash",
    "label",
    "verify_chain",
]

CONTEXT = b"pli-access-history-v1\x00"
GENESIS = bytes(32)
"""The link of the first entry of every chain."""
MAX_DETAIL = 200

DETAIL_KEYS = frozenset(
    {
        "envelope",  # an envelope id
        "document",  # a document's envelope id
        "thread",  # a thread id
        "grant",  # a consent request id (a grant is named by its request)
        "response",  # a consent response id
        "revocation",  # a consent revocation id
        "professional",  # an address
        "scope",  # record | categories | document
        "categories",  # category codes, comma-separated
        "decision",  # grant | refuse
        "until",  # an RFC 3339 time (end of a grant)
        "rule",  # the stable code of a refusing rule (sender-blocked…)
        "slots",  # a count of key slots shared or deleted
        "provenance",  # e2e | gateway
    }
)
"""Detail keys an entry may carry: identifiers, addresses and codes, never content."""

_FORBIDDEN_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


class Action(StrEnum):
    """What happened. Values are stable: they are hashed into every entry."""

    DOCUMENT_SENT = "document-sent"
    """A professional sent a document to the patient's record."""
    DOCUMENT_SHARED = "document-shared"
    """The patient's key for a document was re-wrapped for a professional under a grant."""
    DOCUMENT_READ_WITH_CONSENT = "document-read-with-consent"
    """A professional opened a document of the patient through a grant."""
    DOCUMENT_UNSHARED = "document-unshared"
    """The server deleted the slots shared under a revoked or expired grant."""
    CONSENT_REQUESTED = "consent-requested"
    CONSENT_ANSWERED = "consent-answered"
    CONSENT_REVOKED = "consent-revoked"
    BLOCKED = "blocked"
    """The patient blocked a professional."""
    UNBLOCKED = "unblocked"
    BLOCK_ATTEMPTED = "block-attempted"
    """A blocked professional tried to write; the message was refused."""
    BLOCK_REFUSED = "block-refused"
    """The patient tried to block their médecin traitant; the rules refused it."""
    MASKED = "masked"
    """The patient masked a document from professionals."""
    UNMASKED = "unmasked"
    THREAD_CLOSED = "thread-closed"
    """A professional closed a thread (``X-MSS-MES: FIN`` or ``[FIN]``)."""
    APPOINTMENT_ANSWERED = "appointment-answered"
    """The patient sent an appointment message (an answer to an invitation, or another
    time proposed). Sealed by the patient's browser, its content — which answer — is not
    the server's to know: the entry names the professional only."""


_LABELS: dict[Action, tuple[str, str]] = {
    Action.DOCUMENT_SENT: ("Document envoyé", "Document sent"),
    Action.DOCUMENT_SHARED: ("Document partagé", "Document shared"),
    Action.DOCUMENT_READ_WITH_CONSENT: (
        "Document consulté avec votre accord",
        "Document read with your consent",
    ),
    Action.DOCUMENT_UNSHARED: ("Partage de document retiré", "Document sharing removed"),
    Action.CONSENT_REQUESTED: ("Consentement demandé", "Consent requested"),
    Action.CONSENT_ANSWERED: ("Consentement répondu", "Consent answered"),
    Action.CONSENT_REVOKED: ("Consentement retiré", "Consent withdrawn"),
    Action.BLOCKED: ("Professionnel bloqué", "Professional blocked"),
    Action.UNBLOCKED: ("Professionnel débloqué", "Professional unblocked"),
    Action.BLOCK_ATTEMPTED: (
        "Message refusé d'un professionnel bloqué",
        "Message refused from a blocked professional",
    ),
    Action.BLOCK_REFUSED: (
        "Blocage du médecin traitant refusé",
        "Blocking the regular doctor refused",
    ),
    Action.MASKED: ("Document masqué", "Document masked"),
    Action.UNMASKED: ("Document démasqué", "Document unmasked"),
    Action.THREAD_CLOSED: ("Conversation close", "Conversation closed"),
    Action.APPOINTMENT_ANSWERED: ("Réponse à un rendez-vous", "Appointment answered"),
}


def label(action: str, lang: str = "fr") -> str:
    """What a patient reads for ``action`` (French by default, English with ``"en"``)."""
    try:
        french, english = _LABELS[Action(action)]
    except ValueError:
        return action
    return english if lang == "en" else french


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One entry of a patient's access history, as stored.

    ``details`` is a tuple of ``(key, value)`` pairs sorted by key; ``previous`` and
    ``hash`` are 32-byte BLAKE2b-256 values.
    """

    patient: Address
    seq: int
    actor: str
    action: str
    subject: str
    at: datetime
    details: tuple[tuple[str, str], ...]
    previous: bytes
    hash: bytes

    @property
    def detail_map(self) -> dict[str, str]:
        return dict(self.details)


@dataclass(frozen=True, slots=True)
class Anchor:
    """What a reader remembers of the last entry it verified."""

    seq: int
    hash: bytes


@dataclass(frozen=True, slots=True)
class Problem:
    """One inconsistency: the index of the entry in the list given, a code, a reason."""

    index: int
    code: str
    reason: str


def _field(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack(">I", len(data)) + data


def _time(at: datetime) -> str:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("history times must be timezone-aware")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_encoding(
    *,
    patient: Address,
    seq: int,
    actor: str,
    action: str,
    subject: str,
    at: datetime,
    details: Sequence[tuple[str, str]],
    previous: bytes,
) -> bytes:
    """The bytes an entry's hash covers (see the module docstring)."""
    if not 0 <= seq < 2**64:
        raise ValueError("an entry number is a u64")
    if len(previous) != 32:
        raise ValueError("a link is 32 bytes")
    parts = [
        CONTEXT,
        struct.pack(">Q", seq),
        _field(str(patient)),
        _field(actor),
        _field(action),
        _field(subject),
        _field(_time(at)),
        struct.pack(">I", len(details)),
    ]
    for key, value in sorted(details):
        parts.append(_field(key))
        parts.append(_field(value))
    parts.append(previous)
    return b"".join(parts)


def entry_hash(entry: HistoryEntry) -> bytes:
    """The hash ``entry`` should carry, computed from its other fields."""
    encoded = canonical_encoding(
        patient=entry.patient,
        seq=entry.seq,
        actor=entry.actor,
        action=entry.action,
        subject=entry.subject,
        at=entry.at,
        details=entry.details,
        previous=entry.previous,
    )
    return hashlib.blake2b(encoded, digest_size=32).digest()


def _check_text(value: str, what: str) -> None:
    if not 1 <= len(value) <= MAX_DETAIL or _FORBIDDEN_TEXT.search(value):
        raise ValueError(f"{what} is 1 to {MAX_DETAIL} characters without control characters")


def append(
    head: HistoryEntry | None,
    *,
    patient: Address,
    actor: str,
    action: Action,
    subject: str,
    at: datetime,
    details: Mapping[str, str] | None = None,
) -> HistoryEntry:
    """The entry that follows ``head`` (None for the first entry of ``patient``'s chain).

    ``actor`` is who acted (an address, or ``operator``), ``subject`` what the action was on
    (a document id, a professional's address, a request id). Raises ``ValueError`` for a
    detail key outside :data:`DETAIL_KEYS`, a text too long or with control characters, a
    head of another patient or a time before the head's.
    """
    _time(at)  # refuses a naive time
    at = at.astimezone(UTC)
    if head is not None and head.patient != patient:
        raise ValueError("the head belongs to another patient's history")
    if head is not None and at < head.at:
        raise ValueError("an entry cannot be older than the one before it")
    action = Action(action)
    _check_text(actor, "the actor")
    _check_text(subject, "the subject")
    pairs = tuple(sorted((details or {}).items()))
    for key, value in pairs:
        if key not in DETAIL_KEYS:
            raise ValueError(f"detail {key!r} is not one of the content-free detail keys")
        _check_text(value, f"detail {key!r}")
    unhashed = HistoryEntry(
        patient=patient,
        seq=0 if head is None else head.seq + 1,
        actor=actor,
        action=action.value,
        subject=subject,
        at=at,
        details=pairs,
        previous=GENESIS if head is None else head.hash,
        hash=b"",
    )
    return HistoryEntry(
        unhashed.patient,
        unhashed.seq,
        unhashed.actor,
        unhashed.action,
        unhashed.subject,
        unhashed.at,
        unhashed.details,
        unhashed.previous,
        entry_hash(unhashed),
    )


def anchor_of(entries: Sequence[HistoryEntry]) -> Anchor | None:
    """The anchor a reader keeps after verifying ``entries``."""
    if not entries:
        return None
    return Anchor(entries[-1].seq, entries[-1].hash)


def verify_chain(
    entries: Sequence[HistoryEntry],
    *,
    patient: Address | None = None,
    anchor: Anchor | None = None,
) -> list[Problem]:
    """Every inconsistency of a whole history, oldest entry first; empty when it holds.

    ``patient``, when given, must own every entry. ``anchor`` is what the reader kept from
    an earlier verification: the history must still contain that entry, unchanged.
    Each link is checked against the hash *stored* in the entry before, so one edited
    entry gives one ``history-hash`` problem and a rewritten one one ``history-link``.
    """
    problems: list[Problem] = []
    expected_previous = GENESIS
    for index, entry in enumerate(entries):
        if patient is not None and entry.patient != patient:
            problems.append(
                Problem(index, "history-patient", f"entry {index} belongs to {entry.patient}")
            )
        if entry.seq != index:
            problems.append(
                Problem(
                    index,
                    "history-sequence",
                    f"entry {index} is numbered {entry.seq}: entries were removed, added or moved",
                )
            )
        if entry.previous != expected_previous:
            problems.append(
                Problem(
                    index,
                    "history-link",
                    f"entry {index} does not follow the entry before it: an entry was "
                    "removed, added, moved or rewritten",
                )
            )
        try:
            intact = entry_hash(entry) == entry.hash
        except (ValueError, UnicodeEncodeError):
            problems.append(Problem(index, "history-malformed", f"entry {index} is malformed"))
        else:
            if not intact:
                problems.append(
                    Problem(
                        index,
                        "history-hash",
                        f"entry {index} does not match its hash: it was edited",
                    )
                )
        expected_previous = entry.hash
    if anchor is not None:
        if not 0 <= anchor.seq < len(entries):
            problems.append(
                Problem(
                    len(entries),
                    "history-truncated",
                    f"the history stops before entry {anchor.seq}, which was verified "
                    "earlier: entries were deleted",
                )
            )
        elif entries[anchor.seq].hash != anchor.hash:
            problems.append(
                Problem(
                    anchor.seq,
                    "history-anchor",
                    f"entry {anchor.seq} is not the one verified earlier: the history was "
                    "rewritten",
                )
            )
    return problems

"""Domain values of Pli: addresses, mailbox and message kinds, provenance, records.

Everything here is a frozen, slotted dataclass or an enum: plain values that every layer may
hold without reaching into a store, a directory or a cryptographic library. Addresses follow
RFC 5321 §4.1.2 (``local-part@domain``) with the simplifications of the trust space: the
domain is compared case-insensitively and stored in lower case, the local part is kept as
written but compared in lower case too, because every operator of the trust space does so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from messaging.errors import InvalidAddress

if TYPE_CHECKING:  # the patient port's values name Address: imported for annotations only
    from messaging.patient_ports import PatientEffects
if TYPE_CHECKING:  # the outbound values use Address from here
    from messaging.outbound import OutboundMessage

__all__ = [
    "Address",
    "MailboxKind",
    "MessageKind",
    "Provenance",
    "SignatureStatus",
    "FolderRole",
    "CredentialKind",
    "Credential",
    "AccountRecord",
    "FolderRecord",
    "MessageRecord",
    "BlobRef",
    "Placement",
    "Delivery",
    "PlacedMessage",
    "TraceEntry",
    "StoredMessage",
    "FlagMode",
    "FlagUpdate",
    "Changes",
]

_LOCAL_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")
_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


@dataclass(frozen=True, slots=True, order=True)
class Address:
    """A mailbox address, normalised to lower case (RFC 5321 §2.4 allows it for the domain)."""

    local: str
    domain: str

    @classmethod
    def parse(cls, text: str) -> Address:
        """Parse ``local@domain``; raise :class:`InvalidAddress` with the reason."""
        value = text.strip()
        if value.startswith("<") and value.endswith(">"):
            value = value[1:-1]
        local, sep, domain = value.rpartition("@")
        if not sep or not local or not domain:
            raise InvalidAddress(f"{text!r} is not of the form local@domain")
        if not _LOCAL_RE.match(local) or local.startswith(".") or local.endswith("."):
            raise InvalidAddress(f"{text!r} has an invalid local part")
        if ".." in local:
            raise InvalidAddress(f"{text!r} has an invalid local part")
        try:
            ascii_domain = domain.encode("idna").decode("ascii").lower()
        except UnicodeError as exc:
            raise InvalidAddress(f"{text!r} has an invalid domain") from exc
        labels = ascii_domain.split(".")
        if (
            len(ascii_domain) > 253
            or len(labels) < 2
            or not all(_LABEL_RE.match(x) for x in labels)
        ):
            raise InvalidAddress(f"{text!r} has an invalid domain")
        return cls(local.lower(), ascii_domain)

    def __str__(self) -> str:
        return f"{self.local}@{self.domain}"


class MailboxKind(StrEnum):
    """Mailbox types of the trust space (DOMAIN.md, "Mailboxes and identifiers")."""

    PER = "PER"
    ORG = "ORG"
    APP = "APP"
    CAB = "CAB"
    PAT = "PAT"


class MessageKind(StrEnum):
    """Typed secure messages; each has a module under ``messaging/kinds``."""

    NOTE = "note"
    DOCUMENT = "document"
    PRESCRIPTION = "prescription"
    CERTIFICATE = "certificate"
    APPOINTMENT = "appointment"
    CONSENT_REQUEST = "consent-request"
    CONSENT_RESPONSE = "consent-response"
    CONSENT_REVOCATION = "consent-revocation"
    RECEIPT = "receipt"
    NOTIFICATION = "notification"


class Provenance(StrEnum):
    """How a message entered Pli (ARCHITECTURE.md §3)."""

    E2E = "e2e"
    GATEWAY = "gateway"


class SignatureStatus(StrEnum):
    """What a reader may conclude from the envelope signature."""

    VALID = "valid"
    """Signed by the key the directory holds for the sender (or the operator key)."""
    UNKNOWN_SIGNER = "unknown-signer"
    """The signature is intact but made by a key nobody vouches for."""


class FolderRole(StrEnum):
    """SPECIAL-USE roles (RFC 6154) plus the inbox."""

    INBOX = "inbox"
    SENT = "sent"
    DRAFTS = "drafts"
    TRASH = "trash"
    ARCHIVE = "archive"
    JUNK = "junk"


class CredentialKind(StrEnum):
    """Each credential holds one copy of the account's key bundle."""

    PASSPHRASE = "passphrase"  # noqa: S105 - a kind, not a password
    APP_PASSWORD = "app-password"  # noqa: S105
    RECOVERY = "recovery"


@dataclass(frozen=True, slots=True)
class Credential:
    """A copy of the key bundle sealed under a key derived from one secret.

    ``auth_hash`` is the hash of the authentication key derived from that secret: the only
    thing a server ever compares. The secret itself is never stored.
    """

    id: str
    kind: CredentialKind
    label: str
    salt: bytes
    opslimit: int
    memlimit: int
    auth_hash: bytes
    sealed_bundle: bytes
    created_at: datetime
    last_used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """A local mailbox account and its public keys (raw 32-byte X25519 and Ed25519 keys)."""

    address: Address
    kind: MailboxKind
    display_name: str
    encryption_key: bytes
    signing_key: bytes
    created_at: datetime
    closed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class FolderRecord:
    """IMAP state of one folder (RFC 3501 §2.3.1.1, RFC 7162 §3.1)."""

    name: str
    role: FolderRole | None
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    messages: int
    unseen: int
    subscribed: bool = False
    """In the account's subscription list (RFC 3501 §6.3.6, LSUB; RFC 9051 LIST SUBSCRIBED)."""


@dataclass(frozen=True, slots=True)
class BlobRef:
    """A content-addressed blob: lower-case hex SHA-256 of its bytes, and its size."""

    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one copy of a delivered envelope goes, with the key slot that opens it."""

    account: Address
    folder: FolderRole | str
    """A role (a delivery: the account's folder with that role) or a folder name (APPEND)."""
    slot: bytes
    flags: frozenset[str] = frozenset()
    internal_date: datetime | None = None
    """The IMAP INTERNALDATE to record (APPEND); None means the time of the commit."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """Everything committed in one transaction for one envelope.

    The routing fields repeat what the envelope's visible header says, so a store can list
    and route without parsing envelopes. None of them is message content.
    """

    envelope_id: str
    thread_id: str
    kind: MessageKind
    sender: Address
    recipients: tuple[Address, ...]
    provenance: Provenance
    date: datetime
    plaintext_size: int
    blob: BlobRef
    placements: tuple[Placement, ...]
    trace: tuple[TraceEntry, ...] = ()
    patient: PatientEffects | None = None
    """Patient-side changes committed with the messages (threads, consent, history)."""
    outbound: tuple[OutboundMessage, ...] = ()
    """Copies for remote recipients, queued in the same transaction (messaging.outbound)."""
    message_id: str = ""
    """The clear message's Message-ID, remembered per INBOX recipient when not empty, so a
    copy relayed twice by a peer is recognised (:meth:`MailboxStore.delivered_before`)."""


@dataclass(frozen=True, slots=True)
class PlacedMessage:
    """The result of a committed placement: where it landed and under which UID."""

    account: Address
    folder: str
    uid: int
    modseq: int


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One message in one folder: IMAP state plus the routing fields."""

    folder: str
    uid: int
    modseq: int
    flags: frozenset[str]
    internal_date: datetime
    envelope_id: str
    thread_id: str
    kind: MessageKind
    sender: Address
    provenance: Provenance
    date: datetime
    plaintext_size: int
    blob: BlobRef


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message with the key slot that the owning account needs to open it."""

    record: MessageRecord
    slot: bytes
    inline: bytes | None = None
    """The encrypted envelope itself when the store keeps it (a small blob read with the
    record by ``get_messages``); None: read it from the blob store."""


@dataclass(frozen=True, slots=True)
class TraceEntry:
    """A functional trace line (DOMAIN.md, "Traces"): who did what, never message content."""

    actor: str
    action: str
    subject: str
    at: datetime
    details: dict[str, str] = field(default_factory=dict)


class FlagMode(StrEnum):
    """How :meth:`~messaging.ports.MailboxStore.update_flags` applies flags (RFC 3501 §6.4.6
    STORE ``+FLAGS`` / ``-FLAGS`` / ``FLAGS``)."""

    ADD = "add"
    REMOVE = "remove"
    REPLACE = "replace"


@dataclass(frozen=True, slots=True)
class FlagUpdate:
    """The outcome of a flag update (RFC 3501 §6.4.6, RFC 7162 §3.1.3).

    ``updated``: every requested message that exists and passed the ``UNCHANGEDSINCE`` test,
    in UID order, with its flags and MODSEQ after the update (a message whose flags did not
    change keeps its MODSEQ). ``failed``: the UIDs refused because their MODSEQ was greater
    than ``UNCHANGEDSINCE`` (the ``[MODIFIED …]`` response code), ascending. UIDs that do
    not exist are in neither list.
    """

    updated: list[MessageRecord]
    failed: list[int]


@dataclass(frozen=True, slots=True)
class Changes:
    """What changed in a folder after a MODSEQ (RFC 7162 §3.1.4.1 CHANGEDSINCE, §3.2.5.1
    QRESYNC).

    ``records``: messages added or whose flags changed with MODSEQ greater than the one
    asked, in UID order. ``vanished``: UIDs expunged after it, ascending (from the folder's
    tombstones). ``highestmodseq``: the folder's HIGHESTMODSEQ at the time of the read.
    """

    records: list[MessageRecord]
    vanished: list[int]
    highestmodseq: int
    uidvalidity: int

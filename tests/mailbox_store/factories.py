"""Records and deliveries for the store tests: plausible values, opaque bytes."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime

from messaging.types import (
    AccountRecord,
    Address,
    BlobRef,
    Credential,
    CredentialKind,
    Delivery,
    FolderRole,
    MailboxKind,
    MessageKind,
    Placement,
    Provenance,
    TraceEntry,
)

WHEN = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
SEEN = "\\Seen"


def address(name: str, domain: str = "medecin.pli.test") -> Address:
    return Address.parse(f"{name}@{domain}")


def account(
    who: Address, kind: MailboxKind = MailboxKind.PER, *, closed: bool = False
) -> AccountRecord:
    return AccountRecord(
        address=who,
        kind=kind,
        display_name=f"Dr {who.local.title()}",
        encryption_key=hashlib.sha256(b"enc" + str(who).encode()).digest(),
        signing_key=hashlib.sha256(b"sig" + str(who).encode()).digest(),
        created_at=WHEN,
        closed_at=WHEN if closed else None,
    )


def credential(
    ident: str,
    kind: CredentialKind = CredentialKind.PASSPHRASE,
    *,
    created_at: datetime = WHEN,
    label: str = "",
) -> Credential:
    return Credential(
        id=ident,
        kind=kind,
        label=label or ident,
        salt=b"s" * 16,
        opslimit=3,
        memlimit=64 * 1024 * 1024,
        auth_hash=hashlib.sha256(ident.encode()).digest(),
        sealed_bundle=b"bundle:" + ident.encode(),
        created_at=created_at,
    )


def blob(data: bytes = b"ciphertext") -> BlobRef:
    return BlobRef(hashlib.sha256(data).hexdigest(), len(data))


def slot_for(who: Address, envelope_id: str) -> bytes:
    return f"slot:{envelope_id}:{who}".encode()


def delivery(
    sender: Address,
    recipients: list[Address],
    *,
    envelope_id: str | None = None,
    thread_id: str = "thread-1",
    sent_copy: bool = True,
    trace: bool = False,
    kind: MessageKind = MessageKind.NOTE,
) -> Delivery:
    """A delivery to each recipient's INBOX, plus the sender's Sent copy (seen)."""
    envelope = envelope_id or uuid.uuid4().hex
    placements = [Placement(r, FolderRole.INBOX, slot_for(r, envelope)) for r in recipients]
    if sent_copy:
        placements.append(
            Placement(sender, FolderRole.SENT, slot_for(sender, envelope), frozenset({SEEN}))
        )
    entries = tuple(
        TraceEntry(str(sender), "deliver", str(r), WHEN, {"envelope": envelope}) for r in recipients
    )
    return Delivery(
        envelope_id=envelope,
        thread_id=thread_id,
        kind=kind,
        sender=sender,
        recipients=tuple(recipients),
        provenance=Provenance.E2E,
        date=WHEN,
        plaintext_size=1234,
        blob=blob(envelope.encode()),
        placements=tuple(placements),
        trace=entries if trace else (),
    )

"""How :class:`~messaging.service.DeliveryService` tells local from remote recipients and
seals the queued copy of a message for remote ones (:mod:`messaging.outbound`).

- Local: our domain (``settings.domain``) and its subdomains. Remote: a domain of the trust
  space's allow-list (:class:`~messaging.outbound.PeerDomains`). Anything else is refused
  (``relay-denied``): Pli is never an open relay.
- The queued copy is an envelope of its own (its id is the queue id), sealed for the queue
  key only and signed by the same signer as the local copy; the plaintext is read once more
  from the source, in the worker thread that seals.
"""

from __future__ import annotations

import email.policy
import io
from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from email.parser import BytesParser
from typing import BinaryIO

import crypto
from messaging.errors import RuleViolation
from messaging.outbound import (
    DsnRequest,
    OutboundMessage,
    OutboundRecipient,
    Relaying,
    is_local_domain,
    new_queue_id,
)
from messaging.types import AccountRecord, Address, MailboxKind, TraceEntry

__all__ = [
    "split_recipients",
    "with_remote_accounts",
    "outbound_message",
    "message_id_of",
    "queue_trace",
]

_MAX_HEAD = 256 * 1024

# check_recipients wants an account per recipient; a remote recipient has none here, and is
# neither unknown nor closed for that: its peer decides.
_REMOTE = AccountRecord(
    address=Address("remote", "peer.invalid"),
    kind=MailboxKind.PER,
    display_name="",
    encryption_key=b"",
    signing_key=b"",
    created_at=datetime(2000, 1, 1, tzinfo=UTC),
)


def split_recipients(
    recipients: Sequence[Address],
    relaying: Relaying | None,
    known: Collection[Address] = (),
) -> tuple[list[Address], list[Address]]:
    """(local, remote); raises ``RuleViolation("relay-denied")`` for a non-peer domain.

    ``known`` are addresses with a local account: local whatever their domain (accounts
    made before the instance's domain was set stay reachable).
    """
    if relaying is None:
        return list(recipients), []
    local: list[Address] = []
    remote: list[Address] = []
    for recipient in recipients:
        if recipient in known or is_local_domain(recipient.domain, relaying.local_domain):
            local.append(recipient)
        elif relaying.peers.allows(recipient.domain):
            remote.append(recipient)
        else:
            raise RuleViolation(
                "relay-denied",
                f"{recipient.domain} is not a domain of the trust space: relaying refused",
            )
    return local, remote


def with_remote_accounts(
    found: dict[Address, AccountRecord | None], remote: Sequence[Address]
) -> dict[Address, AccountRecord | None]:
    return {**found, **dict.fromkeys(remote, _REMOTE)}


def message_id_of(source: BinaryIO) -> str:
    """The ``Message-ID`` of the message (empty when it has none); the source is rewound."""
    start = source.tell()
    try:
        head = b""
        while len(head) < _MAX_HEAD:
            chunk = source.read(8192)
            if not chunk:
                break
            head += chunk
            if b"\r\n\r\n" in head or b"\n\n" in head:
                break
        headers = BytesParser(policy=email.policy.compat32).parsebytes(head, headersonly=True)
        value = headers.get("Message-ID", "")
        return " ".join(str(value).split())[:998]
    finally:
        source.seek(start)


def outbound_message(
    header: crypto.RoutingHeader,
    source: BinaryIO,
    signer: crypto.SigningKey,
    queue_key: crypto.EncryptionPublicKey,
    sender: Address,
    remote: Sequence[Address],
    dsn: DsnRequest | None,
    message_id: str,
    now: datetime,
) -> OutboundMessage:
    """Seal ``source`` for the queue key (blocking: run it in a worker thread)."""
    queue_id = new_queue_id()
    queue_header = replace(header, envelope_id=queue_id, recipients=tuple(str(r) for r in remote))
    start = source.tell()
    sink = io.BytesIO()
    try:
        result = crypto.seal_envelope(
            queue_header, source, sink, signer=signer, recipients=[queue_key]
        )
    finally:
        source.seek(start)
    request = dsn or DsnRequest()
    return OutboundMessage(
        queue_id=queue_id,
        mail_from=sender,
        recipients=tuple(
            OutboundRecipient(r, request.notify.get(r, frozenset()), request.orcpt.get(r, ""))
            for r in remote
        ),
        sealed=sink.getvalue(),
        slot=result.slots[0],
        size=header.size,
        message_id=message_id,
        created_at=now,
        envid=request.envid,
        ret=request.ret,
    )


def queue_trace(sender: Address, message: OutboundMessage, now: datetime) -> TraceEntry:
    return TraceEntry(
        actor=str(sender),
        action="queue",
        subject=",".join(str(r.address) for r in message.recipients),
        at=now,
        details={"queue": message.queue_id},
    )

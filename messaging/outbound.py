"""The outbound queue: messages for peer operators, kept until their relay is final.

A message for a recipient outside our domain is not a mailbox delivery: it waits in a durable
queue until the relay (``gateway_smtp/relay.py``) hands it to the peer's MX, the peer refuses
it for good, or it grows too old. This module holds the port and its values; the SQL and
in-memory queues live in ``mailbox_store/``.

- **Plaintext sealed at rest.** A queued message is an envelope (:mod:`crypto.envelope`)
  sealed for the instance's *queue key* (``$PLI_HOME/secrets/queue.key``) only; the store
  keeps ciphertext. :func:`open_queued` is the one place it is opened, just before relaying.
  Once every recipient is final the rows are deleted: the ciphertext is gone with them.
- **Same transaction as local delivery.** :class:`~messaging.types.Delivery` carries its
  queued part (``outbound``) so that a message for local and remote recipients is committed
  all at once; a message for remote recipients only goes through :meth:`OutboundQueue.enqueue`.
- **DSN parameters** (RFC 3461): ``NOTIFY`` and ``ORCPT`` per recipient, ``RET`` and
  ``ENVID`` per message, carried to the peer when it offers the DSN extension and honoured
  by our own reports otherwise.
- **Peer policy.** Only domains of the trust space's allow-list may be relayed to;
  :class:`PeerDomains` is the small question the delivery service asks (the SMTP gateway's
  allow-list answers it; :class:`StaticPeerDomains` is the settings' fixed list).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

import crypto
from messaging.errors import InvalidMessage
from messaging.types import Address

__all__ = [
    "NOTIFY_VALUES",
    "Ret",
    "RecipientState",
    "OutboundRecipient",
    "OutboundMessage",
    "QueuedRecipient",
    "QueuedMessage",
    "AttemptResult",
    "DsnRequest",
    "OutboundQueue",
    "PeerDomains",
    "StaticPeerDomains",
    "Relaying",
    "is_local_domain",
    "new_queue_id",
    "open_queued",
]

NOTIFY_VALUES = frozenset({"SUCCESS", "FAILURE", "DELAY", "NEVER"})
"""RFC 3461 §4.1: ``NEVER`` alone, or a set of the other three."""


class Ret(StrEnum):
    """RFC 3461 §4.3: what a failure report returns of the message."""

    FULL = "FULL"
    HDRS = "HDRS"


class RecipientState(StrEnum):
    QUEUED = "queued"
    DELIVERED = "delivered"
    FAILED = "failed"


def check_notify(notify: Iterable[str]) -> frozenset[str]:
    """Validate a NOTIFY set (upper-cased); empty means "the default" (FAILURE, DELAY)."""
    values = frozenset(v.upper() for v in notify)
    if not values <= NOTIFY_VALUES:
        raise InvalidMessage(f"NOTIFY {sorted(values)} is not RFC 3461", "dsn-invalid-notify")
    if "NEVER" in values and len(values) > 1:
        raise InvalidMessage("NOTIFY=NEVER stands alone (RFC 3461 §4.1)", "dsn-invalid-notify")
    return values


def _check_xtext_free(value: str, what: str) -> None:
    # ENVID and ORCPT go back on the wire as xtext and into report fields: printable ASCII
    # without spaces, nothing that could end a command or a header line.
    if len(value) > 100 or any(not (0x21 <= ord(c) <= 0x7E) for c in value):
        raise InvalidMessage(f"{what} must be at most 100 printable ASCII characters")


@dataclass(frozen=True, slots=True)
class OutboundRecipient:
    """One remote recipient and its RFC 3461 parameters."""

    address: Address
    notify: frozenset[str] = frozenset()
    """Empty: the default (report failure and delay); ``{"NEVER"}``: never report."""
    orcpt: str = ""
    """The original recipient as given by the client (``rfc822;addr``), or empty."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "notify", check_notify(self.notify))
        if self.orcpt:
            _check_xtext_free(self.orcpt, "ORCPT")

    def wants(self, event: str) -> bool:
        """Whether a report of ``event`` (``FAILURE``, ``DELAY``, ``SUCCESS``) is wanted."""
        if not self.notify:
            return event in {"FAILURE", "DELAY"}
        return event in self.notify


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A message to relay, sealed for the queue key, with its SMTP envelope."""

    queue_id: str
    mail_from: Address | None
    """The reverse path; ``None`` is the null path ``<>`` (reports), which is never reported on."""
    recipients: tuple[OutboundRecipient, ...]
    sealed: bytes = field(repr=False)
    slot: bytes = field(repr=False)
    size: int
    message_id: str
    created_at: datetime
    envid: str = ""
    ret: Ret | None = None

    def __post_init__(self) -> None:
        if not self.recipients:
            raise InvalidMessage("an outbound message needs a recipient")
        if self.envid:
            _check_xtext_free(self.envid, "ENVID")
        if self.created_at.utcoffset() is None:
            raise ValueError("created_at must be timezone-aware")


@dataclass(frozen=True, slots=True)
class QueuedRecipient:
    """The relay state of one recipient of a queued message."""

    recipient: OutboundRecipient
    state: RecipientState
    attempts: int
    next_attempt: datetime
    status: str = ""
    """The last RFC 3463 status (``4.4.1``, ``5.1.1``…), empty before the first attempt."""
    diagnostic: str = ""
    """The peer's last reply (``smtp; 550 5.1.1 …``) or our own explanation."""
    remote_mta: str = ""
    delay_reported: bool = False
    """A ``delayed`` report was already sent for this recipient."""

    @property
    def address(self) -> Address:
        return self.recipient.address


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    message: OutboundMessage
    recipients: tuple[QueuedRecipient, ...]

    @property
    def pending(self) -> tuple[QueuedRecipient, ...]:
        return tuple(r for r in self.recipients if r.state is RecipientState.QUEUED)


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What one attempt did for one recipient; ``next_attempt`` only for ``QUEUED``."""

    address: Address
    state: RecipientState
    status: str
    diagnostic: str
    at: datetime
    remote_mta: str = ""
    next_attempt: datetime | None = None
    delay_reported: bool = False


@dataclass(frozen=True, slots=True)
class DsnRequest:
    """The DSN parameters an SMTP client gave (RFC 3461), for :class:`DeliveryService`."""

    envid: str = ""
    ret: Ret | None = None
    notify: dict[Address, frozenset[str]] = field(default_factory=dict)
    orcpt: dict[Address, str] = field(default_factory=dict)


class OutboundQueue(Protocol):
    """Durable storage of outbound messages. Every write is one transaction."""

    async def enqueue(self, messages: Sequence[OutboundMessage]) -> None:
        """Commit ``messages``; durable on return. A known queue id raises ``InvalidMessage``."""
        ...

    async def claim(self, now: datetime, lease_until: datetime, limit: int) -> list[QueuedMessage]:
        """Messages with a recipient due at ``now``, oldest first, and messages whose
        recipients are all final but which were not removed (their report or removal was
        cut short), so that they are finished.

        Their due recipients are pushed to ``lease_until`` in the same transaction, so a
        relay that dies mid-attempt retries them after the lease, and two relays sharing a
        database do not take the same recipient at once.
        """
        ...

    async def get(self, queue_id: str) -> QueuedMessage:
        """Raises ``NotFound``."""
        ...

    async def record(self, queue_id: str, results: Sequence[AttemptResult]) -> None:
        """Store the outcome of an attempt, one result per recipient tried."""
        ...

    async def remove(self, queue_id: str) -> None:
        """Delete the message and its recipients (its sealed copy with them)."""
        ...

    async def list_queued(self) -> list[QueuedMessage]:
        """Every message still queued, oldest first (operations, tests)."""
        ...


class PeerDomains(Protocol):
    """Whether a domain belongs to an operator of the trust space (the allow-list)."""

    def allows(self, domain: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class StaticPeerDomains:
    """A fixed list of peer domains (settings), subdomains included."""

    domains: frozenset[str]

    def allows(self, domain: str) -> bool:
        domain = domain.lower().rstrip(".")
        return any(domain == d or domain.endswith("." + d) for d in self.domains)


def is_local_domain(domain: str, local: str) -> bool:
    """Our domain and its subdomains are delivered here; anything else is relayed."""
    domain, local = domain.lower().rstrip("."), local.lower().rstrip(".")
    return domain == local or domain.endswith("." + local)


@dataclass(frozen=True, slots=True)
class Relaying:
    """What :class:`~messaging.service.DeliveryService` needs to queue remote recipients."""

    local_domain: str
    peers: PeerDomains
    queue: OutboundQueue
    queue_key: crypto.EncryptionPublicKey


def new_queue_id() -> str:
    return "q" + secrets.token_hex(16)


def open_queued(message: OutboundMessage, queue_keys: crypto.MailboxKeys) -> bytes:
    """The plaintext of a queued message (RFC 5322 bytes), for the relay only."""
    plaintext, _opened = crypto.open_bytes(message.sealed, message.slot, queue_keys)
    return plaintext

"""Accepting envelopes sealed on the sender's machine (``e2e`` provenance from outside).

A client that seals itself (the Python sealing client of ``web/client``, the webmail's
JavaScript) hands the server a finished envelope (``docs/envelope.md``) and one key slot
per recipient, plus optionally one for its own Sent copy. The server cannot decrypt it and
must not need to: :class:`SealedIntake` reads only the routing header
(:func:`crypto.read_header`) and checks it against what the server knows itself.

Checks, each refusal an :class:`~messaging.errors.InvalidMessage` or
:class:`~messaging.errors.RuleViolation` with a stable code (nothing is stored then):

- the envelope parses up to its header (``sealed-header``), is ``e2e`` (``sealed-provenance``);
- ``from`` is the authenticated mailbox (``sealed-sender``), open, and ``sigkey`` is the
  signing key that mailbox published (``sealed-signer``): the signature a recipient will
  verify is then the sender's own, not a key the client made up;
- ``to`` are valid, distinct, known, open mailboxes, at most ``max_recipients``
  (the codes of :mod:`messaging.rules`), and the slots are exactly one per recipient
  (``sealed-slots``), each ``crypto.SLOT_BYTES`` long; a Sent slot is optional;
- the patient rules (:meth:`PatientDeliveryRules.before_sealed_delivery`) on what the routing
  header says: the thread a patient answers, blocks, closed accounts; consent messages and
  documents for a patient must be sealed by the server, which can read them;
- ``size`` is within ``max_message_size`` (``too-large``) and the envelope's length is
  plausible for it (``sealed-length``); ``id`` is 32 lower-case hex digits (``sealed-id``);
  ``date`` is within ``max_clock_skew`` of the server's clock (``sealed-date``); ``type``
  is a registered kind (``sealed-kind``).

Whether the ciphertext really opens is for the recipients to find out (the server has no
key); a recipient that fails to open an envelope sees an error, never altered content.

Then the envelope is copied as is to the blob store and delivered in one transaction with
``e2e`` provenance, exactly like :meth:`messaging.service.DeliveryService.send`. Nothing is
acknowledged before the store's commit.

Usage (the API's ``POST /v1/messages/sealed``, the webmail)::

    intake = SealedIntake(store=..., blobs=..., keys=..., notifier=..., clock=...)
    submitted = await intake.accept(sender, envelope_file, {recipient: slot, ...},
                                    sent_slot=own_slot)

``envelope_file`` is a seekable binary file (a spooled upload): it is read twice, once for
the header and once to copy it.
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

import crypto
from crypto.envelope import MAX_HEADER_BYTES
from messaging.errors import InvalidAddress, InvalidMessage, RuleViolation, UnknownMailbox
from messaging.patient_delivery import PatientDeliveryRules, Submission
from messaging.ports import BlobStore, Clock, KeyDirectory, MailboxStore, Notifier
from messaging.rules import check_recipients, check_sender, check_size
from messaging.service import Limits, Submitted
from messaging.types import (
    AccountRecord,
    Address,
    BlobRef,
    Delivery,
    FolderRole,
    MessageKind,
    Placement,
    Provenance,
    TraceEntry,
)

__all__ = ["SealedIntake", "max_envelope_size"]

_ID = re.compile(r"[0-9a-f]{32}")
_SEEN = frozenset({"\\Seen"})
_FRAME_OVERHEAD = 4 + 17  # length prefix + secretstream tag and MAC
_MIN_CHUNK = 4096
"""The smallest chunk the server accepts overhead for: a client sealing in chunks under
4 KiB makes envelopes that look padded, and refusing them bounds what a client may store."""


def max_envelope_size(plaintext_size: int) -> int:
    """The longest envelope the server stores for a plaintext of ``plaintext_size`` bytes."""
    frames = plaintext_size // _MIN_CHUNK + 2
    return 9 + MAX_HEADER_BYTES + 24 + plaintext_size + frames * _FRAME_OVERHEAD + 64


@dataclass(frozen=True, slots=True)
class _Checked:
    header: crypto.RoutingHeader
    sender: AccountRecord
    recipients: tuple[Address, ...]
    kind: MessageKind
    accounts: Mapping[Address, AccountRecord | None]


class SealedIntake:
    """Checks and stores envelopes sealed by their sender (see the module docstring)."""

    def __init__(
        self,
        *,
        store: MailboxStore,
        blobs: BlobStore,
        keys: KeyDirectory,
        notifier: Notifier,
        clock: Clock,
        limits: Limits | None = None,
        max_clock_skew: timedelta = timedelta(minutes=10),
        patients: PatientDeliveryRules | None = None,
    ) -> None:
        self._patients = patients
        self._store = store
        self._blobs = blobs
        self._keys = keys
        self._notifier = notifier
        self._clock = clock
        self._limits = limits or Limits()
        self._skew = max_clock_skew

    async def accept(
        self,
        sender: Address,
        envelope: BinaryIO,
        slots: Mapping[Address, bytes],
        *,
        sent_slot: bytes | None = None,
        actor: str | None = None,
    ) -> Submitted:
        """Check the envelope (module docstring), store it, deliver it; durable on return.

        ``actor`` names who submitted in the trace (the API client), by default the sender.
        """
        start = envelope.tell()
        length = envelope.seek(0, io.SEEK_END) - start
        envelope.seek(start)
        try:
            header = await asyncio.to_thread(crypto.read_header, envelope)
        except crypto.EnvelopeError as exc:
            reason = f"not a readable sealed envelope: {exc}"
            raise InvalidMessage(reason, "sealed-header") from None
        finally:
            envelope.seek(start)
        checked = await self._check(sender, header, length, slots, sent_slot)
        now = self._clock.now()
        effects = None
        if self._patients is not None:  # the patient rules, on what the header says
            effects = await self._patients.before_sealed_delivery(
                Submission(
                    sender=sender,
                    sender_account=checked.sender,
                    recipients=checked.recipients,
                    accounts=checked.accounts,
                    kind=checked.kind,
                    envelope_id=header.envelope_id,
                    thread_id=header.thread_id,
                    thread_given=True,
                    at=now,
                    provenance=Provenance.E2E.value,
                )
            )
        blob = await asyncio.to_thread(self._copy, envelope)
        targets: list[tuple[Address, FolderRole, bytes, frozenset[str]]] = [
            (r, FolderRole.INBOX, slots[r], frozenset()) for r in checked.recipients
        ]
        if sent_slot is not None:
            targets.append((sender, FolderRole.SENT, sent_slot, _SEEN))
        placed = await self._store.deliver(
            Delivery(
                envelope_id=header.envelope_id,
                thread_id=header.thread_id,
                kind=checked.kind,
                sender=sender,
                recipients=checked.recipients,
                provenance=Provenance.E2E,
                date=now,
                plaintext_size=header.size,
                blob=blob,
                placements=tuple(
                    Placement(account=a, folder=role, slot=slot, flags=flags)
                    for a, role, slot, flags in targets
                ),
                trace=tuple(
                    TraceEntry(
                        actor=actor or str(sender),
                        action="deliver",
                        subject=str(r),
                        at=now,
                        details={
                            "envelope": header.envelope_id,
                            "kind": checked.kind.value,
                            "provenance": Provenance.E2E.value,
                            "sealed": "client",
                        },
                    )
                    for r in checked.recipients
                ),
                patient=effects,
            )
        )
        for item in placed:
            self._notifier.publish(item.account, f"exists {item.folder} {item.uid}")
        if self._patients is not None and effects is not None:
            await self._patients.after_delivery(effects, checked.kind)
        return Submitted(header.envelope_id, header.thread_id, checked.kind, tuple(placed))

    async def _check(
        self,
        sender: Address,
        header: crypto.RoutingHeader,
        length: int,
        slots: Mapping[Address, bytes],
        sent_slot: bytes | None,
    ) -> _Checked:
        if header.provenance != Provenance.E2E.value:
            raise InvalidMessage("a client-sealed envelope must be e2e", "sealed-provenance")
        try:
            declared_sender = Address.parse(header.sender)
            recipients = tuple(Address.parse(r) for r in header.recipients)
        except InvalidAddress as exc:
            raise InvalidMessage(str(exc), "sealed-header") from None
        if declared_sender != sender:
            raise RuleViolation(
                "sealed-sender", f"the envelope is from {declared_sender}, not from {sender}"
            )
        account = await self._store.get_account(sender)
        violations = check_sender(account, sender)
        if violations:
            raise RuleViolation(violations[0].code, violations[0].reason)
        assert account is not None  # noqa: S101 - check_sender refused None
        published = await self._keys.lookup(sender)
        if published is None or published.signing_key != header.signer.raw:
            raise RuleViolation(
                "sealed-signer", f"the envelope is not signed with the published key of {sender}"
            )
        found = {r: await self._store.get_account(r) for r in recipients}
        violations = check_recipients(recipients, found, self._limits.max_recipients)
        if violations:
            first = violations[0]
            if first.code == "unknown-recipient":
                raise UnknownMailbox(first.reason)
            raise RuleViolation(first.code, "; ".join(v.reason for v in violations))
        violations = check_size(header.size, self._limits.max_message_size)
        if violations:
            raise InvalidMessage(violations[0].reason, "too-large")
        if length > max_envelope_size(header.size):
            raise InvalidMessage(
                f"an envelope of {length} bytes is too long for {header.size} bytes of content",
                "sealed-length",
            )
        if set(slots) != set(recipients):
            raise InvalidMessage(
                "exactly one key slot per recipient of the header is required", "sealed-slots"
            )
        for slot in [*slots.values(), *([sent_slot] if sent_slot is not None else [])]:
            if len(slot) != crypto.SLOT_BYTES:
                raise InvalidMessage(
                    f"a key slot is {crypto.SLOT_BYTES} bytes, not {len(slot)}", "sealed-slots"
                )
        if not _ID.fullmatch(header.envelope_id):
            raise InvalidMessage("the envelope id is not 32 lower-case hex digits", "sealed-id")
        if not header.thread_id or len(header.thread_id) > 128:
            raise InvalidMessage("the thread id must be 1 to 128 characters", "sealed-id")
        date = datetime.strptime(header.date, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        if abs(date - self._clock.now()) > self._skew:
            reason = "the envelope's date is too far from the server's clock"
            raise InvalidMessage(reason, "sealed-date")
        try:
            kind = MessageKind(header.kind)
        except ValueError:
            raise InvalidMessage(f"unknown message type {header.kind!r}", "sealed-kind") from None
        return _Checked(header, account, recipients, kind, found)

    def _copy(self, envelope: BinaryIO) -> BlobRef:
        with self._blobs.writer() as writer:
            while chunk := envelope.read(1024 * 1024):
                writer.write(chunk)
            return writer.finish()

"""The delivery service: submit → check rules → seal → commit → notify.

Implementation notes (invariants):

- Plaintext never reaches the store. A clear message is sealed in a worker thread straight
  into a blob writer; only the envelope (ciphertext plus the routing header) and the key
  slots are handed to :class:`~messaging.ports.MailboxStore`.
- One envelope per submission, shared by every recipient: the blob is content-addressed and
  each recipient (and the sender's Sent copy) gets a key slot of its own.
- Nothing is acknowledged before :meth:`MailboxStore.deliver` returns, i.e. before the blob
  was fsynced and the transaction committed. A failure before that leaves at most an
  orphan blob, which no message references (collected by a later sweep), never a
  half-visible message.
- Provenance ``e2e``: signed by the sender's own key, unlocked for this submission.
  Provenance ``gateway``: arrived in clear (SMTP from a peer, the API), signed by the
  operator key, and the header records who handed it over.
"""

from __future__ import annotations

import asyncio
import email.policy
import io
import logging
import secrets
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesParser
from typing import BinaryIO

import crypto
from messaging.account_cache import AccountCache
from messaging.errors import InvalidMessage, NotFound, PliError, RuleViolation, UnknownMailbox
from messaging.kinds import classify, declared_kind
from messaging.outbound import DsnRequest, OutboundMessage, Relaying
from messaging.outbound_split import (
    message_id_of,
    outbound_message,
    queue_trace,
    split_recipients,
    with_remote_accounts,
)
from messaging.patient_delivery import MDN_SENT, PatientDeliveryRules, Submission
from messaging.ports import BlobStore, Clock, KeyDirectory, MailboxStore, Notifier
from messaging.rules import Violation, check_recipients, check_sender, check_size
from messaging.types import (
    AccountRecord,
    Address,
    BlobRef,
    Delivery,
    FolderRole,
    MessageKind,
    MessageRecord,
    PlacedMessage,
    Placement,
    Provenance,
    SignatureStatus,
    StoredMessage,
    TraceEntry,
)

__all__ = ["DeliveryService", "Limits", "Submitted", "OpenedMessage"]

_SEEN = frozenset({"\\Seen"})
_MAX_HEADER_SECTION = 256 * 1024
_MAX_STRUCTURE_PARSE = 2 * 1024 * 1024
_VOUCHED_MAX = 4096
_OPEN_WORKERS = 2
"""Worker threads decrypting one batch of messages (libsodium releases the GIL)."""


@dataclass(frozen=True, slots=True)
class Limits:
    max_message_size: int = 25 * 1024 * 1024
    max_recipients: int = 100
    account_cache_seconds: float = 5.0


@dataclass(frozen=True, slots=True)
class Submitted:
    envelope_id: str
    thread_id: str
    kind: MessageKind
    placed: tuple[PlacedMessage, ...]
    duplicates: tuple[Address, ...] = ()
    """Recipients that had this Message-ID already (a peer's retransmission): skipped."""


@dataclass(frozen=True, slots=True)
class OpenedMessage:
    record: MessageRecord
    raw: bytes
    provenance: Provenance
    signature: SignatureStatus
    signer: str
    """Who signed: the sender's address (e2e) or the operator with the peer (gateway)."""
    gateway_peer: str | None


class DeliveryService:
    def __init__(
        self,
        *,
        store: MailboxStore,
        blobs: BlobStore,
        keys: KeyDirectory,
        notifier: Notifier,
        clock: Clock,
        operator_key: crypto.SigningKey,
        limits: Limits | None = None,
        patients: PatientDeliveryRules | None = None,
        relaying: Relaying | None = None,
    ) -> None:
        self._patients = patients
        self._store = store
        self._blobs = blobs
        self._keys = keys
        self._notifier = notifier
        self._clock = clock
        self._operator_key = operator_key
        self._limits = limits or Limits()
        self._accounts = AccountCache(store, ttl=self._limits.account_cache_seconds)
        self._relaying = relaying
        # (sender, signing key) pairs the directory vouched for. A key once published stays
        # among the sender's signing keys (rotations keep history), so a remembered pair
        # stays true; only pairs found are kept, so a new key is never missed.
        self._vouched: OrderedDict[tuple[str, bytes], None] = OrderedDict()

    @property
    def operator_public_key(self) -> crypto.SigningPublicKey:
        return self._operator_key.public

    # -- submission -----------------------------------------------------------------------

    async def send(
        self,
        sender: Address,
        sender_keys: crypto.MailboxKeys,
        recipients: Sequence[Address],
        message: bytes | BinaryIO,
        *,
        size: int | None = None,
        thread_id: str | None = None,
        kind: MessageKind | None = None,
        dsn: DsnRequest | None = None,
    ) -> Submitted:
        """Seal with the sender's own key (``e2e``), deliver, keep a Sent copy."""
        account = await self._accounts.get(sender)
        _raise_if(check_sender(account, sender))
        assert account is not None  # noqa: S101 - check_sender refused None above
        if account.signing_key != sender_keys.signing_public.raw:
            raise RuleViolation("wrong-key", f"the unlocked keys are not those of {sender}")
        return await self._submit(
            sender=sender,
            recipients=recipients,
            message=message,
            size=size,
            thread_id=thread_id,
            kind=kind,
            signer=sender_keys.signing_key,
            provenance=Provenance.E2E,
            gateway=None,
            sent_copy=account,
            dsn=dsn,
        )

    async def receive(
        self,
        sender: Address,
        recipients: Sequence[Address],
        message: bytes | BinaryIO,
        *,
        gateway: crypto.GatewayInfo,
        size: int | None = None,
        thread_id: str | None = None,
        kind: MessageKind | None = None,
        sent_copy_for: Address | None = None,
        dsn: DsnRequest | None = None,
    ) -> Submitted:
        """Seal a message that arrived in clear under the operator key (``gateway``)."""
        sent_copy = None
        if sent_copy_for is not None:
            sent_copy = await self._accounts.get(sent_copy_for)
            _raise_if(check_sender(sent_copy, sent_copy_for))
        return await self._submit(
            sender=sender,
            recipients=recipients,
            message=message,
            size=size,
            thread_id=thread_id,
            kind=kind,
            signer=self._operator_key,
            provenance=Provenance.GATEWAY,
            gateway=gateway,
            sent_copy=sent_copy,
            dsn=dsn,
        )

    async def _submit(
        self,
        *,
        sender: Address,
        recipients: Sequence[Address],
        message: bytes | BinaryIO,
        size: int | None,
        thread_id: str | None,
        kind: MessageKind | None,
        signer: crypto.SigningKey,
        provenance: Provenance,
        gateway: crypto.GatewayInfo | None,
        sent_copy: AccountRecord | None,
        dsn: DsnRequest | None = None,
    ) -> Submitted:
        source, size = _as_source(message, size)
        _raise_if(check_size(size, self._limits.max_message_size))
        # Remote recipients (relaying configured) are queued, not placed: see outbound.py.
        found = await self._accounts.get_many(recipients)
        known = [r for r, account in found.items() if account is not None]
        local, remote = split_recipients(recipients, self._relaying, known)
        found = with_remote_accounts(found, remote)
        _raise_if(check_recipients(recipients, found, self._limits.max_recipients))
        if kind is None:
            kind = _classify(source, size)
        # A message in clear is deduplicated per recipient on its Message-ID: a peer (or our
        # own relay) killed between the 250 and its bookkeeping sends it again.
        message_id = message_id_of(source) if provenance is Provenance.GATEWAY else ""
        seen = await self._store.delivered_before(message_id, local) if message_id else set()
        if seen:
            local = [r for r in local if r not in seen]
            for r in seen:
                await self._store.record_trace(
                    TraceEntry(str(sender), "duplicate", str(r), self._clock.now(), {})
                )
            if not local and not remote and sent_copy is None:
                return Submitted("", thread_id or "", kind, (), tuple(seen))
        targets: list[tuple[Address, FolderRole, frozenset[str]]] = [
            (r, FolderRole.INBOX, frozenset()) for r in local
        ]
        if sent_copy is not None:
            targets.append((sent_copy.address, FolderRole.SENT, _SEEN))
        public_keys = []
        for address, _role, _flags in targets:
            published = await self._keys.lookup(address)
            if published is None:
                raise UnknownMailbox(f"no published key for {address}")
            public_keys.append(crypto.EncryptionPublicKey(published.encryption_key))
        now = self._clock.now()
        # One read of the system's randomness for both identifiers: it is a system call,
        # and this is the hot path.
        random_ids = secrets.token_bytes(32)
        effects = None
        if self._patients is not None:  # patient rules: may refuse, before anything is sealed
            submission = Submission(
                sender=sender,
                sender_account=sent_copy
                if sent_copy is not None and sent_copy.address == sender
                else await self._accounts.get(sender),
                recipients=tuple(recipients),
                accounts=found,
                kind=kind,
                envelope_id=random_ids[:16].hex(),
                thread_id=thread_id or random_ids[16:].hex(),
                thread_given=thread_id is not None,
                at=now,
                provenance=provenance.value,
            )
            effects = await self._patients.before_delivery(submission, source, size)
            if effects is not None and effects.thread_id is not None:
                thread_id = effects.thread_id
        header = crypto.RoutingHeader(
            envelope_id=random_ids[:16].hex(),
            thread_id=thread_id or random_ids[16:].hex(),
            kind=kind.value,
            sender=str(sender),
            recipients=tuple(str(r) for r in recipients),
            size=size,
            date=_rfc3339(now),
            provenance=provenance.value,
            signer=signer.public,
            gateway=gateway,
        )
        outbound: tuple[OutboundMessage, ...] = ()
        if remote:
            assert self._relaying is not None  # noqa: S101 - split_recipients needs it
            outbound = (
                await asyncio.to_thread(
                    outbound_message,
                    header,
                    source,
                    signer,
                    self._relaying.queue_key,
                    sender,
                    remote,
                    dsn,
                    message_id or message_id_of(source),
                    now,
                ),
            )
            if not targets:
                await self._relaying.queue.enqueue(outbound)
                await self._store.record_trace(queue_trace(sender, outbound[0], now))
                return Submitted(outbound[0].queue_id, header.thread_id, kind, ())
        blob, slots = await asyncio.to_thread(self._seal, header, source, signer, public_keys)
        placements = tuple(
            Placement(account=address, folder=role, slot=slot, flags=flags)
            for (address, role, flags), slot in zip(targets, slots, strict=True)
        )
        trace = tuple(
            TraceEntry(
                actor=str(sender),
                action="deliver",
                subject=str(r),
                at=now,
                details={
                    "envelope": header.envelope_id,
                    "kind": kind.value,
                    "provenance": provenance.value,
                },
            )
            for r in local
        ) + tuple(queue_trace(sender, m, now) for m in outbound)
        placed = await self._store.deliver(
            Delivery(
                envelope_id=header.envelope_id,
                thread_id=header.thread_id,
                kind=kind,
                sender=sender,
                recipients=tuple(recipients),
                provenance=provenance,
                date=now,
                plaintext_size=size,
                blob=blob,
                placements=placements,
                trace=trace,
                patient=effects,
                outbound=outbound,
                message_id=message_id,
            )
        )
        for item in placed:
            self._notifier.publish(item.account, f"exists {item.folder} {item.uid}")
        if self._patients is not None and effects is not None:
            await self._patients.after_delivery(effects, kind)
        return Submitted(header.envelope_id, header.thread_id, kind, tuple(placed), tuple(seen))

    def _seal(
        self,
        header: crypto.RoutingHeader,
        source: BinaryIO,
        signer: crypto.SigningKey,
        recipients: list[crypto.EncryptionPublicKey],
    ) -> tuple[BlobRef, tuple[bytes, ...]]:
        with self._blobs.writer() as writer:
            result = crypto.seal_envelope(
                header, source, writer, signer=signer, recipients=recipients
            )
            return writer.finish(), result.slots

    # -- reading --------------------------------------------------------------------------

    async def open_message(
        self,
        address: Address,
        keys: crypto.MailboxKeys,
        folder: str,
        uid: int,
        *,
        displayed: bool = False,
    ) -> OpenedMessage:
        """Open a message. ``displayed``: its reader is shown it now (the webmail, ``pli
        read``), so a patient's read receipt is sent if it asked for one (RFC 8098); a mail
        client fetching over IMAP sends its own receipts and leaves it False."""
        stored = await self._store.get_message(address, folder, uid)
        record = stored.record
        sink = io.BytesIO()
        opened = await asyncio.to_thread(self._open, record.blob, stored.slot, keys, sink)
        header = opened.header
        if header.envelope_id != record.envelope_id or header.sender != str(record.sender):
            # The store handed back an envelope that is not the one it listed: refuse it.
            raise InvalidMessage("the stored envelope does not match its message record")
        status = await self._signature_status(header)
        peer = header.gateway.peer if header.gateway else None
        signer = "operator" if header.provenance == Provenance.GATEWAY.value else header.sender
        if displayed and self._patients is not None:  # a patient's read receipt, if asked
            receipt = await self._patients.read_receipt(address, record, sink.getvalue())
            if receipt is not None:
                try:
                    await self.send(
                        address, keys, [receipt[0]], receipt[1], thread_id=record.thread_id
                    )
                except PliError as error:  # a receipt never stops the patient from reading
                    logging.getLogger("pli.patients").warning(
                        "read receipt not sent", extra={"reason": type(error).__name__}
                    )
                else:
                    record = await self._store.set_flags(
                        address, folder, uid, record.flags | {MDN_SENT}
                    )
        return OpenedMessage(
            record=record,
            raw=sink.getvalue(),
            provenance=Provenance(header.provenance),
            signature=status,
            signer=signer,
            gateway_peer=peer,
        )

    async def open_messages(
        self, address: Address, keys: crypto.MailboxKeys, folder: str, uids: Sequence[int]
    ) -> dict[int, OpenedMessage | Exception]:
        """:meth:`open_message` (not ``displayed``) for many UIDs of one folder, as an IMAP
        FETCH over a range needs: one store read for the records, slots and inline
        envelopes, the decryption in up to ``_OPEN_WORKERS`` worker threads (a thread hop
        per slice, not per message), each signer looked up once. A UID that no longer
        exists is absent; a message that cannot be opened maps to its error, so that the
        caller serves the others and reports that one. Raises ``NotFound`` for an unknown
        folder."""
        stored = await self._store.get_messages(address, folder, uids)
        if not stored:
            return {}
        size = -(-len(stored) // _OPEN_WORKERS)
        slices = [stored[i : i + size] for i in range(0, len(stored), size)]
        done = await asyncio.gather(
            *(asyncio.to_thread(self._open_slice, part, keys) for part in slices)
        )
        found: dict[int, OpenedMessage | Exception] = {}
        for part, results in zip(slices, done, strict=True):
            for message, result in zip(part, results, strict=True):
                record = message.record
                if isinstance(result, Exception):
                    found[record.uid] = result
                    continue
                header, raw = result
                if header.envelope_id != record.envelope_id or header.sender != str(record.sender):
                    found[record.uid] = InvalidMessage(
                        "the stored envelope does not match its message record"
                    )
                    continue
                found[record.uid] = OpenedMessage(
                    record=record,
                    raw=raw,
                    provenance=Provenance(header.provenance),
                    signature=await self._signature_status(header),
                    signer="operator"
                    if header.provenance == Provenance.GATEWAY.value
                    else header.sender,
                    gateway_peer=header.gateway.peer if header.gateway else None,
                )
        return found

    def _open_slice(
        self, messages: Sequence[StoredMessage], keys: crypto.MailboxKeys
    ) -> list[tuple[crypto.RoutingHeader, bytes] | Exception]:
        """Decrypt ``messages`` in this worker thread; an envelope that fails is reported
        in its place (missing blob, failed authentication) and the others
        go on, as :meth:`open_message` would have raised it."""
        results: list[tuple[crypto.RoutingHeader, bytes] | Exception] = []
        for message in messages:
            sink = io.BytesIO()
            ref = message.record.blob
            try:
                if message.inline is not None and len(message.inline) == ref.size:
                    opened = crypto.open_envelope(
                        io.BytesIO(message.inline), message.slot, keys, sink
                    )
                else:
                    opened = self._open(ref, message.slot, keys, sink)
            except (PliError, crypto.CryptoError) as error:
                results.append(error)
                continue
            results.append((opened.header, sink.getvalue()))
        return results

    def _open(
        self, ref: BlobRef, slot: bytes, keys: crypto.MailboxKeys, sink: BinaryIO
    ) -> crypto.OpenedEnvelope:
        with self._blobs.open(ref) as source:
            return crypto.open_envelope(source, slot, keys, sink)

    async def _signature_status(self, header: crypto.RoutingHeader) -> SignatureStatus:
        if header.provenance == Provenance.GATEWAY.value:
            trusted = header.signer == self._operator_key.public
        else:
            pair = (header.sender, header.signer.raw)
            trusted = pair in self._vouched
            if not trusted:
                known = await self._keys.signing_keys(Address.parse(header.sender))
                trusted = header.signer.raw in known
            if trusted:  # reading a folder opens many messages of few senders
                self._vouched[pair] = None
                self._vouched.move_to_end(pair)
                if len(self._vouched) > _VOUCHED_MAX:
                    self._vouched.popitem(last=False)
        return SignatureStatus.VALID if trusted else SignatureStatus.UNKNOWN_SIGNER

    async def route(self, recipient: Address) -> bool:
        """True for a remote recipient the relay may take, False for a local one.

        Raises ``RuleViolation("relay-denied")`` for a domain that is neither ours nor a
        peer's: the SMTP gateway answers it ``550 5.7.1`` at RCPT.
        """
        if self._relaying is None:
            return False
        known = [recipient] if await self._accounts.get(recipient) is not None else []
        _local, remote = split_recipients([recipient], self._relaying, known)
        return bool(remote)

    async def list_messages(self, address: Address, folder: str) -> list[MessageRecord]:
        try:
            return await self._store.list_messages(address, folder)
        except NotFound:
            raise NotFound(f"{address} has no folder {folder!r}") from None

    # -- APPEND (RFC 3501 §6.3.11, RFC 4315 APPENDUID, RFC 7889 APPENDLIMIT) ---------------

    @property
    def append_limit(self) -> int:
        """The largest message :meth:`append` accepts (the ``APPENDLIMIT`` to announce)."""
        return self._limits.max_message_size

    async def append(
        self,
        address: Address,
        keys: crypto.MailboxKeys,
        folder: str,
        message: bytes | BinaryIO,
        *,
        flags: frozenset[str] = frozenset(),
        internal_date: datetime | None = None,
        size: int | None = None,
    ) -> PlacedMessage:
        """File a plaintext message uploaded by the account itself into one of its folders.

        Sealed (in a worker thread) for the account's own key only and signed by it:
        provenance ``e2e``, sender and only recipient the account, since the account is
        who vouches for it. Durable when this returns (APPEND OK). Raises
        ``InvalidMessage`` above :attr:`append_limit` (nothing stored), ``NotFound`` for
        an unknown folder (the gateway answers ``NO [TRYCREATE]``), ``RuleViolation`` when
        ``keys`` are not the account's.
        """
        account = await self._accounts.get(address)
        _raise_if(check_sender(account, address))
        assert account is not None  # noqa: S101 - check_sender refused None above
        if account.signing_key != keys.signing_public.raw:
            raise RuleViolation("wrong-key", f"the unlocked keys are not those of {address}")
        source, size = _as_source(message, size)
        _raise_if(check_size(size, self._limits.max_message_size))
        kind = _classify(source, size)
        stored_flags = frozenset(f for f in flags if f.lower() != "\\recent")  # session state
        for flag in stored_flags:  # refused before sealing: no orphan blob for a bad flag
            if not flag or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in flag):
                raise InvalidMessage(f"invalid flag {flag!r}")
        now = self._clock.now()
        random_ids = secrets.token_bytes(32)
        header = crypto.RoutingHeader(
            envelope_id=random_ids[:16].hex(),
            thread_id=random_ids[16:].hex(),
            kind=kind.value,
            sender=str(address),
            recipients=(str(address),),
            size=size,
            date=_rfc3339(now),
            provenance=Provenance.E2E.value,
            signer=keys.signing_key.public,
            gateway=None,
        )
        blob, slots = await asyncio.to_thread(
            self._seal, header, source, keys.signing_key, [keys.encryption_public]
        )
        [placed] = await self._store.deliver(
            Delivery(
                envelope_id=header.envelope_id,
                thread_id=header.thread_id,
                kind=kind,
                sender=address,
                recipients=(address,),
                provenance=Provenance.E2E,
                date=now,
                plaintext_size=size,
                blob=blob,
                placements=(
                    Placement(address, folder, slots[0], stored_flags, internal_date or now),
                ),
                trace=(
                    TraceEntry(
                        actor=str(address),
                        action="append",
                        subject=str(address),
                        at=now,
                        details={"envelope": header.envelope_id, "folder": folder},
                    ),
                ),
            )
        )
        self._notifier.publish(placed.account, f"exists {placed.folder} {placed.uid}")
        return placed


def _raise_if(violations: list[Violation]) -> None:
    if not violations:
        return
    first = violations[0]
    if first.code in {"unknown-recipient", "unknown-sender"}:
        raise UnknownMailbox(first.reason)
    if first.code == "too-large":
        raise InvalidMessage(first.reason)
    raise RuleViolation(first.code, "; ".join(v.reason for v in violations))


def _as_source(message: bytes | BinaryIO, size: int | None) -> tuple[BinaryIO, int]:
    if isinstance(message, bytes | bytearray):
        return io.BytesIO(message), len(message)
    if size is None:
        start = message.tell()
        size = message.seek(0, io.SEEK_END) - start
        message.seek(start)
    return message, size


def _classify(source: BinaryIO, size: int) -> MessageKind:
    """Type a message: by its declared ``X-Pli-Type``, else by its MIME structure.

    The header section is read first: a declared, registered type settles it at once. An
    undeclared message up to ``_MAX_STRUCTURE_PARSE`` bytes is parsed whole (a Thunderbird
    reply to an invitation is typed by its ``text/calendar`` part); a larger one is typed by
    its headers only, so typing never costs more than sealing.
    """
    parser = BytesParser(policy=email.policy.compat32)
    start = source.tell()
    try:
        head = b""
        while len(head) < _MAX_HEADER_SECTION:
            chunk = source.read(8192)
            if not chunk:
                break
            head += chunk
            if b"\r\n\r\n" in head or b"\n\n" in head:
                break
        headers = parser.parsebytes(head, headersonly=True)
        if declared_kind(headers) is not None or size > _MAX_STRUCTURE_PARSE:
            return classify(headers)
        source.seek(start)
        return classify(parser.parsebytes(source.read(size)))
    finally:
        source.seek(start)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

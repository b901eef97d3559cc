"""The ports of the messaging domain: what the delivery service needs from the outside.

Each port is a :class:`typing.Protocol`; ``mailbox_store/`` and ``directory/`` implement them,
``pli/wiring.py`` picks the implementations. An in-memory implementation of every storage
port exists beside the SQL one and passes the same contract tests.

Durability promise of :class:`MailboxStore`: when :meth:`MailboxStore.deliver` returns, the
delivery is committed to stable storage (its blob was fsynced before). Concurrent calls may
be committed together in one transaction (group commit); that is invisible to callers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, BinaryIO, Protocol, runtime_checkable

from messaging.types import (
    AccountRecord,
    Address,
    BlobRef,
    Changes,
    Credential,
    Delivery,
    FlagMode,
    FlagUpdate,
    FolderRecord,
    MailboxKind,
    MessageRecord,
    PlacedMessage,
    StoredMessage,
    TraceEntry,
)

if TYPE_CHECKING:  # the proofs' module uses these ports itself
    from crypto.merkle import SignedTreeHead
    from messaging.transparency import ConsistencyProof, KeyProof

__all__ = [
    "BlobWriter",
    "BlobStore",
    "MailboxStore",
    "KeyDirectory",
    "KeyLog",
    "KeyPublisher",
    "PublishedKeys",
    "Notifier",
    "Clock",
    "ChangeWatch",
]


class BlobWriter(Protocol):
    """A writable sink for one blob. Blocking: use it from a worker thread.

    ``write`` appends bytes; ``finish`` makes the blob durable (fsync of the file and of its
    directory) under its content address and returns the reference; a writer closed
    without ``finish`` leaves nothing behind.
    """

    def write(self, data: bytes, /) -> int: ...

    def finish(self) -> BlobRef: ...


class BlobStore(Protocol):
    """Content-addressed, write-once storage of encrypted blobs."""

    def writer(self) -> AbstractContextManager[BlobWriter]:
        """A new blob writer; blocking, use from a worker thread."""
        ...

    def open(self, ref: BlobRef) -> BinaryIO:
        """Open a stored blob for reading; blocking. Raises ``NotFound``."""
        ...

    def exists(self, ref: BlobRef) -> bool: ...


class ChangeWatch(Protocol):
    """What :meth:`MailboxStore.watch` returns: an async iterator of changed folder names
    that holds resources until ``aclose()`` (or until the store closes, which ends it)."""

    def __aiter__(self) -> ChangeWatch: ...

    async def __anext__(self) -> str: ...

    async def aclose(self) -> None: ...

    async def ready(self) -> None:
        """Return once every change committed from now on will be reported (a feed that
        listens or polls for other processes needs a moment to start). Read the state you
        compare against after this, and no change falls between the two."""
        ...


class MailboxStore(Protocol):
    """Accounts, credentials, folders, messages, key slots and the trace.

    Every method is a coroutine and every write is one transaction. The store never
    interprets bytes: key material, slots and bundles are opaque to it.
    """

    async def create_account(
        self, account: AccountRecord, credentials: Sequence[Credential]
    ) -> None:
        """Create the account, its credentials and its default folders in one transaction.

        Raises ``AccountExists`` when the address is taken.
        """
        ...

    async def get_account(self, address: Address) -> AccountRecord | None: ...

    async def list_accounts(self, kind: MailboxKind | None = None) -> list[AccountRecord]: ...

    async def list_credentials(self, address: Address) -> list[Credential]:
        """Credentials that are not revoked, oldest first."""
        ...

    async def add_credential(self, address: Address, credential: Credential) -> None: ...

    async def revoke_credential(self, address: Address, credential_id: str) -> None:
        """Raises ``NotFound`` when the account has no such live credential."""
        ...

    async def replace_credentials(
        self, address: Address, remove_ids: Sequence[str], add: Sequence[Credential]
    ) -> None:
        """Remove and add credentials atomically (a passphrase change)."""
        ...

    async def touch_credential(self, address: Address, credential_id: str, at: datetime) -> None:
        """Record a successful use (last login)."""
        ...

    async def list_folders(self, address: Address) -> list[FolderRecord]: ...

    async def deliver(self, delivery: Delivery) -> list[PlacedMessage]:
        """Commit the envelope, one message per placement, the slots and the trace.

        All or nothing; durable on return. Raises ``UnknownMailbox`` for a placement whose
        account does not exist (nothing of the delivery is then committed), ``Unavailable``
        when storage cannot be reached.
        """
        ...

    async def list_messages(self, address: Address, folder: str) -> list[MessageRecord]:
        """Messages of a folder in UID order. Raises ``NotFound`` for an unknown folder."""
        ...

    async def get_message(self, address: Address, folder: str, uid: int) -> StoredMessage:
        """One message and the account's key slot. Raises ``NotFound``."""
        ...

    async def get_messages(
        self, address: Address, folder: str, uids: Sequence[int]
    ) -> list[StoredMessage]:
        """The messages of ``uids`` that exist, in UID order, with the account's key slots
        and, for envelopes the store keeps itself, their bytes (``StoredMessage.inline``):
        a FETCH over a range in a few round trips. Raises ``NotFound`` for an unknown
        folder."""
        ...

    async def find_message(self, address: Address, envelope_id: str) -> StoredMessage:
        """The account's copy of an envelope (any folder). Raises ``NotFound``."""
        ...

    async def set_flags(
        self, address: Address, folder: str, uid: int, flags: frozenset[str]
    ) -> MessageRecord:
        """Replace the flags of a message; bumps its MODSEQ. Raises ``NotFound``."""
        ...

    async def record_trace(self, entry: TraceEntry) -> None: ...

    async def delivered_before(
        self, message_id: str, recipients: Sequence[Address]
    ) -> set[Address]:
        """Those of ``recipients`` whose INBOX already received a delivery with this
        ``message_id`` (receiving-side deduplication of what peers relay twice)."""
        ...

    async def list_trace(self, subject: str | None = None, limit: int = 100) -> list[TraceEntry]:
        """Newest first."""
        ...

    async def close(self) -> None:
        """Finish commits in flight, then release connections."""
        ...

    # -- IMAP mailbox state (RFC 3501, RFC 9051, RFC 7162 CONDSTORE/QRESYNC, RFC 6851 MOVE,
    # RFC 4315 UIDPLUS). Each call is one transaction; every change bumps the folder's
    # HIGHESTMODSEQ and gives each message it touches that MODSEQ. Folder names use "/" as
    # the hierarchy delimiter; INBOX is case-insensitive. ``NotFound`` for an unknown
    # account or folder.

    async def folder_status(self, address: Address, folder: str) -> FolderRecord:
        """One folder's counts and IMAP state (SELECT, STATUS). Raises ``NotFound``."""
        ...

    async def create_folder(self, address: Address, name: str) -> FolderRecord:
        """Create a folder (and no parents: "a/b" needs no "a"). Its UIDVALIDITY is greater
        than that of any folder the account ever had, so a folder recreated under a deleted
        one's name is never mistaken for it. Raises ``AlreadyExists`` when the name is taken,
        ``InvalidMessage`` for an invalid name."""
        ...

    async def rename_folder(self, address: Address, old: str, new: str) -> None:
        """Rename ``old`` and its children (``old/…`` → ``new/…``); each keeps its UIDVALIDITY
        and messages, subscriptions follow. Renaming INBOX creates ``new`` and moves INBOX's
        messages into it, leaving INBOX empty (RFC 3501 §6.3.5). Raises ``NotFound``,
        ``AlreadyExists`` when ``new`` (or a renamed child) exists."""
        ...

    async def delete_folder(self, address: Address, name: str) -> None:
        """Delete a folder and its messages (not its children, not its subscription: RFC 3501
        §6.3.4). Raises ``RuleViolation`` (code ``folder-role``) for INBOX and role folders,
        ``NotFound``."""
        ...

    async def set_subscribed(self, address: Address, name: str, subscribed: bool) -> None:
        """SUBSCRIBE / UNSUBSCRIBE. Subscribing needs an existing folder (``NotFound``);
        unsubscribing any name succeeds."""
        ...

    async def list_subscriptions(self, address: Address) -> list[str]:
        """Subscribed names, sorted; may name folders that no longer exist (RFC 3501 §6.3.6)."""
        ...

    async def fetch_records(
        self, address: Address, folder: str, uids: Sequence[int]
    ) -> list[MessageRecord]:
        """The messages of ``uids`` that exist, in UID order; one query for any count."""
        ...

    async def update_flags(
        self,
        address: Address,
        folder: str,
        uids: Sequence[int],
        mode: FlagMode,
        flags: frozenset[str],
        *,
        unchanged_since: int | None = None,
    ) -> FlagUpdate:
        """STORE: add, remove or replace flags of ``uids``. ``\\Recent`` is session state and
        is never stored (ignored here). With ``unchanged_since`` (CONDSTORE), messages whose
        MODSEQ is greater are left alone and reported in ``failed``. Each changed message
        gets a new MODSEQ (one per call, shared by all of them)."""
        ...

    async def expunge(
        self, address: Address, folder: str, uids: Sequence[int] | None = None
    ) -> list[int]:
        """Remove the messages flagged ``\\Deleted`` (only among ``uids`` when given: UID
        EXPUNGE), record their tombstones for ``changes_since``, return their UIDs
        ascending. The account's key slot goes when its last copy of an envelope goes."""
        ...

    async def copy_messages(
        self, address: Address, source: str, uids: Sequence[int], target: str
    ) -> list[tuple[int, int]]:
        """COPY: ``(source uid, new uid)`` pairs in source UID order (UIDPLUS COPYUID).
        Copies share the envelope and the account's key slot (nothing re-encrypted) and keep
        flags and INTERNALDATE. Missing UIDs are skipped. Raises ``NotFound`` when either
        folder does not exist (the gateway answers ``NO [TRYCREATE]``)."""
        ...

    async def move_messages(
        self, address: Address, source: str, uids: Sequence[int], target: str
    ) -> list[tuple[int, int]]:
        """MOVE (RFC 6851): copy then expunge from ``source`` (whatever their flags), in one
        transaction; the source UIDs get tombstones."""
        ...

    async def changes_since(self, address: Address, folder: str, modseq: int) -> Changes:
        """Messages changed or added after ``modseq`` and UIDs expunged after it."""
        ...

    def watch(self, address: Address) -> ChangeWatch:
        """Folder names of ``address`` whose state changed, soon after the commit of any
        change made by this process or another one sharing the database (PostgreSQL
        LISTEN/NOTIFY, SQLite polling). ``"*"`` means "any folder may have changed" (a
        folder created, renamed or deleted, or a reconnection). Events are hints to
        coalesce: read the state with ``folder_status`` / ``changes_since``. Closing the
        iterator (``aclose``) releases everything it held."""
        ...


class PublishedKeys(Protocol):
    """The public keys a directory vouches for, for one address."""

    @property
    def address(self) -> Address: ...

    @property
    def encryption_key(self) -> bytes: ...

    @property
    def signing_key(self) -> bytes: ...


class KeyDirectory(Protocol):
    """Where senders find recipients' keys and readers check signers' keys."""

    async def lookup(self, address: Address) -> PublishedKeys | None:
        """The current keys of ``address``, or None when it is unknown."""
        ...

    async def signing_keys(self, address: Address) -> list[bytes]:
        """Every signing key ``address`` has published, current and past (rotations)."""
        ...


class KeyPublisher(Protocol):
    """Where a new account's public keys are published (the transparency log)."""

    async def publish(self, address: Address, encryption_key: bytes, signing_key: bytes) -> object:
        """Make these the current keys of ``address``; publishing them again is a no-op."""
        ...


class KeyLog(KeyDirectory, Protocol):
    """A key directory whose answers come with transparency-log proofs (RFC 9162 style)."""

    async def lookup_with_proof(
        self, address: Address, *, known_size: int | None = None
    ) -> KeyProof | None:
        """The latest leaf of ``address`` with its inclusion (and consistency) proofs."""
        ...

    async def consistency_proof(self, old_size: int, new_size: int) -> ConsistencyProof: ...

    async def latest_head(self) -> SignedTreeHead: ...


class Notifier(Protocol):
    """In-process fan-out of "something changed in this mailbox" events."""

    def publish(self, address: Address, event: str) -> None: ...

    def subscribe(self, address: Address) -> AsyncIterator[str]: ...


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...


@runtime_checkable
class Closeable(Protocol):
    async def close(self) -> None: ...

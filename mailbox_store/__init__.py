"""The mailbox store: accounts, folders, messages, key slots, the trace, and blobs.

Implements :class:`messaging.ports.MailboxStore` (``SqlMailboxStore`` on SQLite or
PostgreSQL, ``InMemoryMailboxStore`` as the reference) and :class:`messaging.ports.BlobStore`
(``FileBlobStore``, ``InMemoryBlobStore``). It stores bytes and never interprets them: key
material, key slots and envelopes are opaque here, and the package never imports ``crypto``.

Promises: a delivery is durable when ``deliver`` returns (concurrent deliveries share one
commit, see :mod:`mailbox_store.group_commit`); IMAP state follows RFC 3501 and RFC 7162
(UIDVALIDITY stable, UIDs strictly increasing per folder, one MODSEQ per change); blobs are
content-addressed and write-once.
"""

from mailbox_store.blobs import FileBlobStore, InMemoryBlobStore
from mailbox_store.group_commit import CommitStats
from mailbox_store.memory import InMemoryMailboxStore
from mailbox_store.migrate import migrate
from mailbox_store.sql import SqlMailboxStore
from mailbox_store.tiered import TieredBlobStore

__all__ = [
    "CommitStats",
    "FileBlobStore",
    "InMemoryBlobStore",
    "InMemoryMailboxStore",
    "SqlMailboxStore",
    "TieredBlobStore",
    "migrate",
]

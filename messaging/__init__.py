"""The messaging domain of Pli: typed secure messages, rules, ports and the services.

Adapters (SMTP, IMAP, HTTP) talk to :class:`DeliveryService` and :class:`AccountService`;
storage and directory implement the ports in :mod:`messaging.ports`.
"""

from messaging.accounts import AccountService, CreatedAccount, NewAppPassword, UnlockedAccount
from messaging.clock import ManualClock, SystemClock
from messaging.errors import (
    AccountExists,
    AuthenticationFailed,
    InvalidAddress,
    InvalidMessage,
    MailboxClosed,
    NotFound,
    PliError,
    RuleViolation,
    Unavailable,
    UnknownMailbox,
)
from messaging.keydirectory import LocalKeyDirectory
from messaging.mime import Attachment, Draft, ReadMessage, build_message, parse_message
from messaging.notify import InProcessNotifier
from messaging.service import DeliveryService, Limits, OpenedMessage, Submitted
from messaging.types import (
    AccountRecord,
    Address,
    CredentialKind,
    FolderRole,
    MailboxKind,
    MessageKind,
    MessageRecord,
    Provenance,
    SignatureStatus,
)

__all__ = [
    "AccountExists",
    "AccountRecord",
    "AccountService",
    "Address",
    "Attachment",
    "AuthenticationFailed",
    "CreatedAccount",
    "CredentialKind",
    "DeliveryService",
    "Draft",
    "FolderRole",
    "InProcessNotifier",
    "InvalidAddress",
    "InvalidMessage",
    "Limits",
    "LocalKeyDirectory",
    "MailboxClosed",
    "MailboxKind",
    "ManualClock",
    "MessageKind",
    "MessageRecord",
    "NewAppPassword",
    "NotFound",
    "OpenedMessage",
    "PliError",
    "Provenance",
    "ReadMessage",
    "RuleViolation",
    "SignatureStatus",
    "Submitted",
    "SystemClock",
    "Unavailable",
    "UnknownMailbox",
    "UnlockedAccount",
    "build_message",
    "parse_message",
]

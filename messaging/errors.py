"""Errors of the messaging domain.

The hierarchy, drawn once::

    PliError
    ├── InvalidAddress        an address that does not parse
    ├── InvalidMessage        input that is not an acceptable message (MIME, size, type)
    ├── RuleViolation         a message the rules refuse (patient rules, authorisations)
    ├── UnknownMailbox        no such local mailbox
    ├── MailboxClosed         the mailbox exists but accepts nothing
    ├── AuthenticationFailed  wrong or unknown credentials (never says which)
    ├── AccountExists         creating an address that is taken
    ├── NotFound              no such message, folder or credential
    ├── Unavailable           storage cannot be reached now; the caller may retry later
    └── AlreadyExists         creating a folder whose name is taken

Gateways map each class to their protocol's reply (SMTP code, IMAP NO/BAD, HTTP problem).
"""

from __future__ import annotations

__all__ = [
    "PliError",
    "InvalidAddress",
    "InvalidMessage",
    "RuleViolation",
    "UnknownMailbox",
    "MailboxClosed",
    "AuthenticationFailed",
    "AccountExists",
    "NotFound",
    "Unavailable",
    "AlreadyExists",
]


class PliError(Exception):
    """Base class of every error Pli raises on purpose."""


class InvalidAddress(PliError, ValueError):
    """An address that does not parse."""


class InvalidMessage(PliError, ValueError):
    """Input that is not an acceptable message; ``code`` names the check that failed.

    Codes are stable strings (``zip-bomb``, ``xml-entity``, ``ins-key``…) that gateways map
    to their protocol's replies and that tests assert on.
    """

    def __init__(self, reason: str, code: str = "invalid-message") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class RuleViolation(PliError):
    """A message that the rules refuse; ``code`` names the rule."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class UnknownMailbox(PliError, LookupError):
    """No such local mailbox."""


class MailboxClosed(PliError):
    """The mailbox exists but is closed."""


class AuthenticationFailed(PliError):
    """Wrong or unknown credentials; the message never says which."""

    def __init__(self) -> None:
        super().__init__("authentication failed")


class AccountExists(PliError):
    """The address is already taken."""


class NotFound(PliError, LookupError):
    """No such message, folder or credential."""


class Unavailable(PliError):
    """Storage cannot be reached now; nothing was committed, the caller may retry."""


class AlreadyExists(PliError):
    """A folder (or another named thing) of that name exists already."""

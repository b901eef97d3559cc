"""IMAP4rev1 front of Pli (issue "IMAP"), protocol apart from storage.

RFC 3501 with the IMAP4rev2 (RFC 9051) behaviour clients rely on, and the extensions listed
in ``docs/imap.md``. The gateway talks to mailboxes only through
:class:`messaging.mailbox_session.MailboxAccess`; ``pli serve`` starts it.

Modules: :mod:`~gateway_imap.parser` (reading commands, limits),
:mod:`~gateway_imap.responses` (strings, literals, modified UTF-7),
:mod:`~gateway_imap.mime` (structure from raw bytes), :mod:`~gateway_imap.fetch`,
:mod:`~gateway_imap.search`, :mod:`~gateway_imap.provenance` (the header we add),
:mod:`~gateway_imap.auth`, :mod:`~gateway_imap.session`, :mod:`~gateway_imap.server`.
"""

from gateway_imap.auth import ThrottleSettings
from gateway_imap.parser import ReaderLimits
from gateway_imap.server import ImapServer, ImapSettings
from gateway_imap.session import SessionSettings

__all__ = ["ImapServer", "ImapSettings", "ReaderLimits", "SessionSettings", "ThrottleSettings"]

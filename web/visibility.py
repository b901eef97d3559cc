"""Who may see which mailbox: the one rule every face of the directory applies.

Liste rouge and retired mailboxes are never shown, to anyone: the answer is the one an
unknown address gets. Patients' mailboxes (their address carries the INS) are shown to
authenticated professionals only, who need their keys to write to them.
"""

from __future__ import annotations

from messaging.directory import MailboxEntry
from messaging.types import MailboxKind

__all__ = ["visible"]


def visible(entry: MailboxEntry | None, *, professional: bool) -> bool:
    """Whether a caller may see ``entry`` at all."""
    if entry is None or entry.liste_rouge or entry.retired:
        return False
    return professional or entry.kind is not MailboxKind.PAT

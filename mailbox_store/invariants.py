"""What every :class:`~messaging.ports.MailboxStore` implementation enforces the same way.

The SQL store and the in-memory reference store both call these functions, so they agree
on the rules that are not a matter of storage:

- **Default folders.** An account is created with INBOX, Sent, Drafts, Trash, Archive and
  Junk, each with its role (RFC 6154 SPECIAL-USE, plus the inbox), in that order.
- **Folder names.** ``INBOX`` is case-insensitive (RFC 3501 §5.1); every other name is
  compared as written.
- **UIDVALIDITY** (RFC 3501 §2.3.1.1) is the creation time of the folder in seconds since
  the epoch, as a non-zero unsigned 32-bit number. That is the value the RFC suggests: it
  is stable (stored once, never recomputed, never touched by a migration) and a folder
  created later gets a greater value. UIDNEXT starts at 1 and HIGHESTMODSEQ at 0
  (RFC 7162 §3.1: the first change gives MODSEQ 1).
- **Flags** are IMAP atoms: non-empty, without white space or control characters (the SQL
  store keeps a set of flags as one sorted, space-separated text).
- **Folder names** (:func:`check_folder_name`): "/" is the hierarchy delimiter; a name is
  non-empty, at most 255 characters per level and 1,024 in all, has no empty level, no
  control character and no LIST wildcard (``*``, ``%``).
- **Flags in IMAP operations** (:func:`apply_flags`): system flags are stored in their RFC
  3501 spelling whatever the case given; keywords compare case-insensitively;
  ``\\Recent`` is session state and never stored.
- **UIDVALIDITY of a new folder** (:func:`next_uidvalidity`) is greater than every value
  the account ever used, so a folder recreated under an old name is never confused with
  the old one, even within the same second.
- **Consistency** of one folder's IMAP state (:func:`folder_state_problems`, run by the
  tests after every operation): UIDs strictly increasing below UIDNEXT, MODSEQs up to
  HIGHESTMODSEQ, tombstones (VANISHED) disjoint from live UIDs, counts that match.
- **Deliveries** place at least one copy, carry lower-case hex SHA-256 digests,
  non-negative sizes and timezone-aware dates; invalid input raises ``InvalidMessage``
  (or ``ValueError`` for naive datetimes, a programming error) before anything is written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from messaging.errors import InvalidMessage
from messaging.types import (
    Address,
    Credential,
    Delivery,
    FolderRecord,
    FolderRole,
    MessageRecord,
)

__all__ = [
    "DEFAULT_FOLDERS",
    "address_key",
    "address_from_key",
    "canonical_folder_name",
    "uidvalidity_at",
    "check_aware",
    "check_flags",
    "check_credentials",
    "check_delivery",
    "flags_to_text",
    "flags_from_text",
    "is_seen",
    "to_utc",
    "SEEN",
    "SystemClock",
    "check_folder_name",
    "apply_flags",
    "storable_flags",
    "is_deleted",
    "next_uidvalidity",
    "is_inferior",
    "MAX_UIDVALIDITY",
    "folder_state_problems",
]

DEFAULT_FOLDERS: tuple[tuple[str, FolderRole], ...] = (
    ("INBOX", FolderRole.INBOX),
    ("Sent", FolderRole.SENT),
    ("Drafts", FolderRole.DRAFTS),
    ("Trash", FolderRole.TRASH),
    ("Archive", FolderRole.ARCHIVE),
    ("Junk", FolderRole.JUNK),
)
"""Folders created with every account, in creation (and listing) order."""

SEEN = "\\seen"
"""The ``\\Seen`` system flag, lower-cased: flags are compared case-insensitively."""

_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")
_MAX_UINT32 = 0xFFFFFFFF


class SystemClock:
    """The wall clock, timezone-aware UTC (the default :class:`~messaging.ports.Clock`)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


def address_key(address: Address) -> str:
    """The stored form of an address: ``local@domain`` in lower case."""
    return str(address).lower()


def address_from_key(text: str) -> Address:
    local, _, domain = text.rpartition("@")
    return Address(local, domain)


def canonical_folder_name(name: str) -> str:
    """``INBOX`` in any case is the inbox (RFC 3501 §5.1); other names are kept as given."""
    return "INBOX" if name.upper() == "INBOX" else name


def uidvalidity_at(created_at: datetime) -> int:
    """UIDVALIDITY of a folder created at ``created_at``: epoch seconds, 1..2**32-1."""
    seconds = int(created_at.timestamp())
    return min(max(seconds, 1), _MAX_UINT32)


def check_aware(*values: datetime | None) -> None:
    """Refuse naive datetimes: the store keeps UTC and cannot guess a zone."""
    for value in values:
        if value is not None and value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: give a timezone-aware UTC time")


def to_utc(value: datetime) -> datetime:
    check_aware(value)
    return value.astimezone(UTC)


def check_flags(flags: Iterable[str]) -> None:
    for flag in flags:
        if not flag or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in flag):
            raise InvalidMessage(f"invalid flag {flag!r}")


def flags_to_text(flags: Iterable[str]) -> str:
    return " ".join(sorted(set(flags)))


def flags_from_text(text: str) -> frozenset[str]:
    return frozenset(text.split())


def is_seen(flags: Iterable[str]) -> bool:
    return any(flag.lower() == SEEN for flag in flags)


def check_credentials(credentials: Iterable[Credential]) -> None:
    seen: set[str] = set()
    for credential in credentials:
        check_aware(credential.created_at, credential.last_used_at)
        if credential.id in seen:
            raise ValueError(f"credential id {credential.id!r} given twice")
        seen.add(credential.id)


def check_delivery(delivery: Delivery) -> None:
    """Validate what does not need the database; raise before anything is written."""
    check_aware(delivery.date, *(entry.at for entry in delivery.trace))
    if not delivery.envelope_id:
        raise InvalidMessage("a delivery needs an envelope id")
    if not delivery.placements:
        raise InvalidMessage(f"delivery {delivery.envelope_id} places no copy")
    if not _DIGEST_RE.match(delivery.blob.digest):
        raise InvalidMessage(f"delivery {delivery.envelope_id}: blob digest is not SHA-256 hex")
    if delivery.blob.size < 0 or delivery.plaintext_size < 0:
        raise InvalidMessage(f"delivery {delivery.envelope_id}: negative size")
    for placement in delivery.placements:
        check_flags(placement.flags)
        check_aware(placement.internal_date)
        if not isinstance(placement.folder, FolderRole):
            check_folder_name(placement.folder)


# -- IMAP mailbox state ---------------------------------------------------------------------

MAX_UIDVALIDITY = _MAX_UINT32
DELIMITER = "/"
_MAX_LEVEL = 255
_MAX_NAME = 1024
_SYSTEM_FLAGS = {
    flag.lower(): flag for flag in ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")
}
_RECENT = "\\recent"
DELETED = "\\deleted"


def check_folder_name(name: str) -> None:
    """Refuse a folder name the store cannot keep (see the module docstring)."""
    levels = name.split(DELIMITER)
    if (
        not name
        or len(name) > _MAX_NAME
        or any(not level or len(level) > _MAX_LEVEL for level in levels)
        or any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 or ch in "*%" for ch in name)
    ):
        raise InvalidMessage(f"invalid folder name {name!r}", code="folder-name")


def is_inferior(name: str, parent: str) -> bool:
    """True when ``name`` is below ``parent`` in the hierarchy (``a/b`` below ``a``)."""
    return name.startswith(parent + DELIMITER)


def storable_flags(flags: Iterable[str]) -> frozenset[str]:
    """``flags`` as stored: system flags spelt as in RFC 3501, ``\\Recent`` dropped, one
    spelling per keyword (compared case-insensitively)."""
    check_flags(flags)
    kept: dict[str, str] = {}
    for flag in flags:
        lower = flag.lower()
        if lower != _RECENT:
            kept.setdefault(lower, _SYSTEM_FLAGS.get(lower, flag))
    return frozenset(kept.values())


def apply_flags(current: frozenset[str], mode: str, flags: frozenset[str]) -> frozenset[str]:
    """The flags after a STORE of ``flags`` with ``mode`` (``add``, ``remove``, ``replace``,
    the values of :class:`messaging.types.FlagMode`); ``flags`` went through
    :func:`storable_flags`."""
    if mode == "replace":
        return flags
    wanted = {flag.lower() for flag in flags}
    if mode == "remove":
        return frozenset(flag for flag in current if flag.lower() not in wanted)
    if mode == "add":
        have = {flag.lower() for flag in current}
        return current | frozenset(flag for flag in flags if flag.lower() not in have)
    raise ValueError(f"unknown flag mode {mode!r}")


def is_deleted(flags: Iterable[str]) -> bool:
    return any(flag.lower() == DELETED for flag in flags)


def next_uidvalidity(now: datetime, floor: int) -> int:
    """UIDVALIDITY of a folder created at ``now`` by an account whose folders had at most
    ``floor``: the creation time, or one more than ``floor`` when that is not greater."""
    value = max(uidvalidity_at(now), floor + 1)
    if value > MAX_UIDVALIDITY:
        raise InvalidMessage("this account has used every UIDVALIDITY", code="uidvalidity")
    return value


def folder_state_problems(
    status: FolderRecord, records: Sequence[MessageRecord], vanished: Sequence[int]
) -> list[str]:
    """What is wrong with one folder's state (``records`` in UID order, ``vanished`` from
    ``changes_since(0)``); empty when it is consistent."""
    problems: list[str] = []
    uids = [record.uid for record in records]
    if not 1 <= status.uidvalidity <= MAX_UIDVALIDITY:
        problems.append(f"UIDVALIDITY {status.uidvalidity} out of range")
    if any(later <= earlier for earlier, later in zip(uids, uids[1:], strict=False)):
        problems.append("UIDs are not strictly increasing")
    if uids and not 1 <= uids[0] <= uids[-1] < status.uidnext:
        problems.append(f"UIDs {uids[0]}..{uids[-1]} not below UIDNEXT {status.uidnext}")
    if any(not 1 <= record.modseq <= status.highestmodseq for record in records):
        problems.append(f"a MODSEQ is above HIGHESTMODSEQ {status.highestmodseq}")
    if set(vanished) & set(uids):
        problems.append(f"UIDs both live and expunged: {sorted(set(vanished) & set(uids))}")
    if any(not 1 <= uid < status.uidnext for uid in vanished):
        problems.append("an expunged UID was never given")
    if status.messages != len(records):
        problems.append(f"{status.messages} messages counted, {len(records)} listed")
    if status.unseen != sum(1 for record in records if not is_seen(record.flags)):
        problems.append("UNSEEN does not match the flags")
    if any(record.folder != status.name for record in records):
        problems.append("a record names another folder")
    return problems

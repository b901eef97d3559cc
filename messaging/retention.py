"""Account lifecycle: opposition, closure, retention and the purge decision.

What it implements (DOMAIN.md, "Patients"): a patient's account is created unless the
person objects within six weeks of its creation; it can be closed later; after closure its
data is kept ten years, then purged. This module decides; it deletes nothing. The lead's
scheduled job lists the accounts, calls :func:`plan_purge`, prints
:meth:`PurgePlan.report` (the dry run) and, when not dry-running, deletes what
:attr:`PurgePlan.purge` names.

Implementation notes:

- **Nothing but closed accounts past their retention is ever planned for purge.** An open
  account, an account closed less than the retention period ago, and an account whose
  closure date lies in the future (a clock that jumped, a bad row) are kept. The decision
  is a pure function of the records and of ``now``, so the job runs with any
  :class:`~messaging.ports.Clock` and the tests with ``ManualClock``.
- **Retention counts calendar years** (ten years after 2026-03-15 is 2036-03-15). A
  closure on 29 February is kept until 1 March: a purge may be late by a day, never early.
- **Opposition closes the account** on the day it is expressed, and the same retention then
  applies: whether data of an opposed account may be deleted at once is a legal question
  the sources leave open, and keeping it is the reversible choice.
- Times must be timezone-aware; naive times raise ``ValueError`` rather than being
  guessed.

Codes: ``opposition-too-late``, ``opposition-closed``, ``opposition-not-patient``,
``account-closed``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from messaging.rules import Violation
from messaging.types import AccountRecord, Address, MailboxKind

__all__ = [
    "RetentionPolicy",
    "PurgeItem",
    "PurgePlan",
    "add_years",
    "check_closure",
    "check_opposition",
    "plan_purge",
]

_REASONS: dict[str, tuple[str, str]] = {
    "opposition-too-late": (
        "Le délai d'opposition de {weeks} semaines après la création du compte est passé "
        "(il courait jusqu'au {deadline}). Vous pouvez fermer votre compte.",
        "The {weeks}-week period to object after the account was created is over (it ran "
        "until {deadline}). You can close your account.",
    ),
    "opposition-closed": (
        "Ce compte est déjà fermé.",
        "This account is already closed.",
    ),
    "opposition-not-patient": (
        "Seul un compte patient créé automatiquement peut faire l'objet d'une opposition.",
        "Only a patient account created automatically can be objected to.",
    ),
    "account-closed": (
        "Ce compte est déjà fermé.",
        "This account is already closed.",
    ),
}


def _violation(code: str, lang: str, **values: object) -> Violation:
    french, english = _REASONS[code]
    return Violation(code, (english if lang == "en" else french).format(**values))


def _aware(at: datetime, what: str) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware")
    return at


def add_years(at: datetime, years: int) -> datetime:
    """``at`` moved ``years`` calendar years later; 29 February goes to 1 March."""
    try:
        return at.replace(year=at.year + years)
    except ValueError:  # 29 February in a year that has none
        return at.replace(year=at.year + years, month=3, day=1)


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long data lives: the opposition window and the retention after closure."""

    retention_years: int = 10
    opposition_window: timedelta = field(default=timedelta(weeks=6))

    def __post_init__(self) -> None:
        if self.retention_years < 0 or self.opposition_window < timedelta(0):
            raise ValueError("retention and opposition window cannot be negative")

    def purge_due(self, closed_at: datetime) -> datetime:
        """When an account closed at ``closed_at`` may be purged."""
        return add_years(_aware(closed_at, "closed_at"), self.retention_years)

    def opposition_deadline(self, created_at: datetime) -> datetime:
        """The last instant an objection to an account created at ``created_at`` counts."""
        return _aware(created_at, "created_at") + self.opposition_window


@dataclass(frozen=True, slots=True)
class PurgeItem:
    """A closed account and the date from which it may be purged."""

    address: Address
    kind: MailboxKind
    closed_at: datetime
    due_at: datetime


@dataclass(frozen=True, slots=True)
class PurgePlan:
    """The purge decision at ``now``: what goes (``purge``) and what closed accounts stay."""

    now: datetime
    policy: RetentionPolicy
    purge: tuple[PurgeItem, ...]
    retained: tuple[PurgeItem, ...]
    open_accounts: int

    @property
    def addresses(self) -> list[Address]:
        """The accounts to purge, oldest closure first."""
        return [item.address for item in self.purge]

    def report(self, lang: str = "fr") -> str:
        """The dry-run report: counts, then every account with its dates."""
        day = "%Y-%m-%d"
        if lang == "en":
            lines = [
                f"Purge at {self.now.astimezone(UTC):%Y-%m-%d %H:%M} UTC, retention "
                f"{self.policy.retention_years} years: {len(self.purge)} account(s) to purge, "
                f"{len(self.retained)} closed account(s) retained, "
                f"{self.open_accounts} open account(s) untouched."
            ]
            lines += [
                f"  purge  {i.address} ({i.kind.value}) closed {i.closed_at:{day}}, "
                f"due {i.due_at:{day}}"
                for i in self.purge
            ]
            lines += [
                f"  retain {i.address} ({i.kind.value}) closed {i.closed_at:{day}}, "
                f"due {i.due_at:{day}}"
                for i in self.retained
            ]
        else:
            lines = [
                f"Purge du {self.now.astimezone(UTC):%Y-%m-%d %H:%M} UTC, conservation "
                f"{self.policy.retention_years} ans : {len(self.purge)} compte(s) à purger, "
                f"{len(self.retained)} compte(s) fermé(s) conservé(s), "
                f"{self.open_accounts} compte(s) ouvert(s) non concerné(s)."
            ]
            lines += [
                f"  purger    {i.address} ({i.kind.value}) fermé le {i.closed_at:{day}}, "
                f"échéance {i.due_at:{day}}"
                for i in self.purge
            ]
            lines += [
                f"  conserver {i.address} ({i.kind.value}) fermé le {i.closed_at:{day}}, "
                f"échéance {i.due_at:{day}}"
                for i in self.retained
            ]
        return "\n".join(lines) + "\n"


def plan_purge(
    accounts: Iterable[AccountRecord],
    now: datetime,
    retention: RetentionPolicy | None = None,
) -> PurgePlan:
    """Which accounts to purge at ``now``: the closed ones whose retention has run out."""
    policy = retention if retention is not None else RetentionPolicy()
    _aware(now, "now")
    purge: list[PurgeItem] = []
    retained: list[PurgeItem] = []
    open_accounts = 0
    for account in accounts:
        if account.closed_at is None:
            open_accounts += 1
            continue
        item = PurgeItem(
            account.address, account.kind, account.closed_at, policy.purge_due(account.closed_at)
        )
        # A closure dated after ``now`` is kept whatever its due date says.
        if item.due_at <= now and account.closed_at <= now:
            purge.append(item)
        else:
            retained.append(item)

    def order(item: PurgeItem) -> tuple[datetime, str]:
        return (item.closed_at, str(item.address))

    return PurgePlan(
        now=now,
        policy=policy,
        purge=tuple(sorted(purge, key=order)),
        retained=tuple(sorted(retained, key=order)),
        open_accounts=open_accounts,
    )


def check_opposition(
    account: AccountRecord,
    at: datetime,
    policy: RetentionPolicy | None = None,
    *,
    lang: str = "fr",
) -> list[Violation]:
    """The violations of an objection to ``account`` made at ``at``.

    An objection concerns a patient account, open, within the window after its creation.
    When it passes, the service closes the account with ``closed_at = at``.
    """
    policy = policy if policy is not None else RetentionPolicy()
    _aware(at, "at")
    if account.kind is not MailboxKind.PAT:
        return [_violation("opposition-not-patient", lang)]
    if account.closed_at is not None:
        return [_violation("opposition-closed", lang)]
    deadline = policy.opposition_deadline(account.created_at)
    if at > deadline:
        weeks = policy.opposition_window // timedelta(weeks=1)
        return [
            _violation("opposition-too-late", lang, weeks=weeks, deadline=f"{deadline:%Y-%m-%d}")
        ]
    return []


def check_closure(account: AccountRecord, at: datetime, *, lang: str = "fr") -> list[Violation]:
    """The violations of closing ``account`` at ``at``: it must still be open."""
    _aware(at, "at")
    if account.closed_at is not None:
        return [_violation("account-closed", lang)]
    return []

"""The rules a submission must pass before anything is sealed or stored.

Pure functions: they take plain values and return the violations they find, so gateways can
call them at the earliest protocol step (an SMTP RCPT, an HTTP validation) and the delivery
service calls them again before committing. Patient rules arrive with the typed messages.
"""

from __future__ import annotations

from collections.abc import Sequence

from messaging.types import AccountRecord, Address

__all__ = ["Violation", "check_recipients", "check_size", "check_sender"]


class Violation:
    """One refused point: a stable code and a reason a person can read."""

    __slots__ = ("code", "reason")

    def __init__(self, code: str, reason: str) -> None:
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"Violation({self.code!r}, {self.reason!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Violation) and (self.code, self.reason) == (
            other.code,
            other.reason,
        )

    def __hash__(self) -> int:
        return hash((self.code, self.reason))


def check_size(size: int, limit: int) -> list[Violation]:
    if size > limit:
        return [Violation("too-large", f"message of {size} bytes exceeds the {limit}-byte limit")]
    return []


def check_sender(sender: AccountRecord | None, address: Address) -> list[Violation]:
    if sender is None:
        return [Violation("unknown-sender", f"{address} is not a local mailbox")]
    if sender.closed_at is not None:
        return [Violation("sender-closed", f"{address} is closed")]
    return []


def check_recipients(
    recipients: Sequence[Address], found: dict[Address, AccountRecord | None], max_recipients: int
) -> list[Violation]:
    violations: list[Violation] = []
    if not recipients:
        violations.append(Violation("no-recipient", "a message needs at least one recipient"))
    if len(recipients) > max_recipients:
        violations.append(
            Violation("too-many-recipients", f"at most {max_recipients} recipients per message")
        )
    if len(set(recipients)) != len(recipients):
        violations.append(Violation("duplicate-recipient", "a recipient is listed twice"))
    for address in recipients:
        account = found.get(address)
        if account is None:
            violations.append(Violation("unknown-recipient", f"{address} is not a known mailbox"))
        elif account.closed_at is not None:
            violations.append(Violation("recipient-closed", f"{address} is closed"))
    return violations

"""A clock for the tests of the directory and of the mailbox store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class StepClock:
    """A clock that moves ``step`` forward each time it is read."""

    def __init__(
        self,
        start: datetime = datetime(2026, 3, 1, 8, 30, tzinfo=UTC),
        step: timedelta = timedelta(seconds=1),
    ) -> None:
        self.current = start
        self.step = step

    def now(self) -> datetime:
        self.current += self.step
        return self.current

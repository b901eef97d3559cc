"""``InMemoryOutboundQueue``: the reference :class:`~messaging.outbound.OutboundQueue`.

Dictionaries, nothing durable; it passes the same contract tests as
:class:`~mailbox_store.outbound_sql.SqlOutboundQueue`
(``tests/mailbox_store/test_outbound_contract.py``). Like the in-memory mailbox store, each
method checks first and then mutates without awaiting, so no coroutine sees half a write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from messaging.errors import InvalidMessage, NotFound
from messaging.outbound import (
    AttemptResult,
    OutboundMessage,
    QueuedMessage,
    QueuedRecipient,
    RecipientState,
)

__all__ = ["InMemoryOutboundQueue"]


class InMemoryOutboundQueue:
    def __init__(self) -> None:
        self._messages: dict[str, QueuedMessage] = {}

    def check_new(self, messages: Sequence[OutboundMessage]) -> None:
        """Refuse known queue ids before anything is written (used by the memory store)."""
        ids = [m.queue_id for m in messages]
        if len(set(ids)) != len(ids) or any(i in self._messages for i in ids):
            raise InvalidMessage("a queue id is already queued")

    def add(self, messages: Sequence[OutboundMessage]) -> None:
        """Write checked ``messages`` (no await: atomic for the event loop)."""
        for message in messages:
            self._messages[message.queue_id] = QueuedMessage(
                message,
                tuple(
                    QueuedRecipient(r, RecipientState.QUEUED, 0, message.created_at)
                    for r in message.recipients
                ),
            )

    async def enqueue(self, messages: Sequence[OutboundMessage]) -> None:
        self.check_new(messages)
        self.add(messages)

    def _ordered(self) -> list[QueuedMessage]:
        return sorted(
            self._messages.values(), key=lambda q: (q.message.created_at, q.message.queue_id)
        )

    async def claim(self, now: datetime, lease_until: datetime, limit: int) -> list[QueuedMessage]:
        claimed: list[QueuedMessage] = []
        for queued in self._ordered():
            if len(claimed) >= limit:
                break
            due = [
                r.state is RecipientState.QUEUED and r.next_attempt <= now
                for r in queued.recipients
            ]
            if not queued.pending:  # finished, not yet removed: to be finished again
                claimed.append(queued)
                continue
            if not any(due):
                continue
            claimed.append(queued)
            self._messages[queued.message.queue_id] = replace(
                queued,
                recipients=tuple(
                    replace(r, next_attempt=lease_until) if is_due else r
                    for r, is_due in zip(queued.recipients, due, strict=True)
                ),
            )
        return claimed

    async def get(self, queue_id: str) -> QueuedMessage:
        try:
            return self._messages[queue_id]
        except KeyError:
            raise NotFound(f"no queued message {queue_id!r}") from None

    async def record(self, queue_id: str, results: Sequence[AttemptResult]) -> None:
        queued = await self.get(queue_id)
        recipients = list(queued.recipients)
        for result in results:
            index = next((i for i, r in enumerate(recipients) if r.address == result.address), None)
            if index is None:
                raise NotFound(f"{queue_id!r} has no recipient {result.address}")
            before = recipients[index]
            recipients[index] = replace(
                before,
                state=result.state,
                status=result.status,
                diagnostic=result.diagnostic,
                remote_mta=result.remote_mta,
                attempts=before.attempts + 1,
                next_attempt=result.next_attempt or result.at,
                delay_reported=before.delay_reported or result.delay_reported,
            )
        self._messages[queue_id] = replace(queued, recipients=tuple(recipients))

    async def remove(self, queue_id: str) -> None:
        self._messages.pop(queue_id, None)

    async def list_queued(self) -> list[QueuedMessage]:
        return self._ordered()

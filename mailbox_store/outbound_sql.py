"""``SqlOutboundQueue``: the :class:`~messaging.outbound.OutboundQueue` on the store's database.

It shares the mailbox store's engine, so :meth:`SqlMailboxStore.deliver` can write the queued
part of a delivery in the delivery's own transaction (:func:`insert_outbound`).

Implementation notes:

- **Claiming.** :meth:`SqlOutboundQueue.claim` reads the due recipients and pushes them to
  the lease in one write transaction. On PostgreSQL the read takes ``FOR UPDATE SKIP
  LOCKED``, so two relays sharing the database never take the same recipient; SQLite's
  ``BEGIN IMMEDIATE`` serialises writers anyway.
- **Deletion.** :meth:`SqlOutboundQueue.remove` deletes the recipients and the message row
  (the sealed copy) explicitly rather than through ``ON DELETE CASCADE``, which SQLite only
  honours with foreign keys switched on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mailbox_store import engine as engines
from mailbox_store.invariants import address_from_key, address_key
from mailbox_store.outbound_tables import OutboundMessageRow, OutboundRecipientRow, ReceivedIdRow
from messaging.errors import InvalidMessage, NotFound
from messaging.outbound import (
    AttemptResult,
    OutboundMessage,
    OutboundRecipient,
    QueuedMessage,
    QueuedRecipient,
    RecipientState,
    Ret,
)
from messaging.types import Address, Delivery, FolderRole

__all__ = ["SqlOutboundQueue", "insert_outbound", "received_id_rows", "delivered_before"]


def _message_values(message: OutboundMessage) -> dict[str, Any]:
    return {
        "queue_id": message.queue_id,
        "mail_from": None if message.mail_from is None else address_key(message.mail_from),
        "message_id": message.message_id,
        "envid": message.envid,
        "ret": None if message.ret is None else message.ret.value,
        "size": message.size,
        "sealed": message.sealed,
        "slot": message.slot,
        "created_at": message.created_at,
    }


def _recipient_values(message: OutboundMessage) -> list[dict[str, Any]]:
    return [
        {
            "queue_id": message.queue_id,
            "position": position,
            "address": address_key(recipient.address),
            "notify": " ".join(sorted(recipient.notify)),
            "orcpt": recipient.orcpt,
            "state": RecipientState.QUEUED.value,
            "attempts": 0,
            "next_attempt": message.created_at,
            "status": "",
            "diagnostic": "",
            "remote_mta": "",
            "delay_reported": False,
        }
        for position, recipient in enumerate(message.recipients)
    ]


async def insert_outbound(connection: AsyncConnection, messages: Sequence[OutboundMessage]) -> None:
    """Write ``messages`` in the caller's transaction."""
    if not messages:
        return
    await connection.execute(insert(OutboundMessageRow), [_message_values(m) for m in messages])
    await connection.execute(
        insert(OutboundRecipientRow), [v for m in messages for v in _recipient_values(m)]
    )


def received_id_rows(delivery: Delivery, now: datetime) -> list[dict[str, Any]]:
    """The Message-ID rows of ``delivery``: one per INBOX placement (deduplication)."""
    if not delivery.message_id:
        return []
    return [
        {
            "recipient": address_key(p.account),
            "message_id": delivery.message_id,
            "envelope_id": delivery.envelope_id,
            "received_at": now,
        }
        for p in delivery.placements
        if p.folder is FolderRole.INBOX
    ]


async def delivered_before(
    connection: AsyncConnection, message_id: str, recipients: Sequence[Address]
) -> set[Address]:
    if not message_id or not recipients:
        return set()
    keys = {address_key(r): r for r in recipients}
    found = await connection.execute(
        select(ReceivedIdRow.recipient).where(
            ReceivedIdRow.message_id == message_id, ReceivedIdRow.recipient.in_(keys)
        )
    )
    return {keys[key] for key in found.scalars()}


def _queued(message: Row[Any], recipients: Sequence[Row[Any]]) -> QueuedMessage:
    outbound = OutboundMessage(
        queue_id=message.queue_id,
        mail_from=None if message.mail_from is None else address_from_key(message.mail_from),
        recipients=tuple(
            OutboundRecipient(address_from_key(r.address), frozenset(r.notify.split()), r.orcpt)
            for r in recipients
        ),
        sealed=message.sealed,
        slot=message.slot,
        size=message.size,
        message_id=message.message_id,
        created_at=message.created_at,
        envid=message.envid,
        ret=None if message.ret is None else Ret(message.ret),
    )
    return QueuedMessage(
        outbound,
        tuple(
            QueuedRecipient(
                recipient=recipient,
                state=RecipientState(r.state),
                attempts=r.attempts,
                next_attempt=r.next_attempt,
                status=r.status,
                diagnostic=r.diagnostic,
                remote_mta=r.remote_mta,
                delay_reported=r.delay_reported,
            )
            for recipient, r in zip(outbound.recipients, recipients, strict=True)
        ),
    )


class SqlOutboundQueue:
    """The outbound queue in the mailbox store's database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**engines.WRITE)
        self._postgres = engine.dialect.name == "postgresql"

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncConnection]:
        async with engines.translate_errors(), self._engine.connect() as connection:
            yield connection

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncConnection]:
        async with engines.translate_errors(), self._writer.begin() as connection:
            yield connection

    async def enqueue(self, messages: Sequence[OutboundMessage]) -> None:
        try:
            async with self._writing() as connection:
                await insert_outbound(connection, messages)
        except IntegrityError as error:
            raise InvalidMessage("a queue id is already queued") from error

    async def _load(
        self, connection: AsyncConnection, queue_ids: Sequence[str]
    ) -> list[QueuedMessage]:
        if not queue_ids:
            return []
        messages = (
            await connection.execute(
                select(OutboundMessageRow.__table__)
                .where(OutboundMessageRow.queue_id.in_(queue_ids))
                .order_by(OutboundMessageRow.created_at, OutboundMessageRow.queue_id)
            )
        ).all()
        recipients = (
            await connection.execute(
                select(OutboundRecipientRow.__table__)
                .where(OutboundRecipientRow.queue_id.in_(queue_ids))
                .order_by(OutboundRecipientRow.queue_id, OutboundRecipientRow.position)
            )
        ).all()
        by_id: dict[str, list[Row[Any]]] = {}
        for row in recipients:
            by_id.setdefault(row.queue_id, []).append(row)
        # Read committed (PostgreSQL): a message removed between the two reads has lost its
        # recipients already; it is gone, not a message without recipients.
        return [_queued(m, by_id[m.queue_id]) for m in messages if m.queue_id in by_id]

    async def claim(self, now: datetime, lease_until: datetime, limit: int) -> list[QueuedMessage]:
        due = (
            select(OutboundRecipientRow.queue_id, OutboundRecipientRow.position)
            .where(
                OutboundRecipientRow.state == RecipientState.QUEUED.value,
                OutboundRecipientRow.next_attempt <= now,
            )
            .order_by(OutboundRecipientRow.next_attempt)
            .limit(max(limit, 0) * 8)
        )
        if self._postgres:
            due = due.with_for_update(skip_locked=True)
        # Messages whose recipients are all final but which are still here: their report or
        # their removal was cut short (the database went away); they are finished first.
        pending = (
            select(OutboundRecipientRow.queue_id)
            .where(
                OutboundRecipientRow.queue_id == OutboundMessageRow.queue_id,
                OutboundRecipientRow.state == RecipientState.QUEUED.value,
            )
            .exists()
        )
        finished = (
            select(OutboundMessageRow.queue_id)
            .where(~pending)
            .order_by(OutboundMessageRow.created_at)
            .limit(max(limit, 0))
        )
        async with self._writing() as connection:
            queue_ids: list[str] = list((await connection.execute(finished)).scalars())
            rows = (await connection.execute(due)).all()
            for queue_id, _position in rows:
                if queue_id not in queue_ids and len(queue_ids) < limit:
                    queue_ids.append(queue_id)
            claimed = await self._load(connection, queue_ids)
            for queue_id, position in rows:
                if queue_id in queue_ids:
                    await connection.execute(
                        update(OutboundRecipientRow)
                        .where(
                            OutboundRecipientRow.queue_id == queue_id,
                            OutboundRecipientRow.position == position,
                        )
                        .values(next_attempt=lease_until)
                    )
        return claimed

    async def get(self, queue_id: str) -> QueuedMessage:
        async with self._reading() as connection:
            found = await self._load(connection, [queue_id])
        if not found:
            raise NotFound(f"no queued message {queue_id!r}")
        return found[0]

    async def record(self, queue_id: str, results: Sequence[AttemptResult]) -> None:
        async with self._writing() as connection:
            for result in results:
                values: dict[str, Any] = {
                    "state": result.state.value,
                    "status": result.status,
                    "diagnostic": result.diagnostic,
                    "remote_mta": result.remote_mta,
                    "attempts": OutboundRecipientRow.attempts + 1,
                    "next_attempt": result.next_attempt or result.at,
                }
                if result.delay_reported:
                    values["delay_reported"] = True
                done = await connection.execute(
                    update(OutboundRecipientRow)
                    .where(
                        OutboundRecipientRow.queue_id == queue_id,
                        OutboundRecipientRow.address == address_key(result.address),
                    )
                    .values(values)
                )
                if done.rowcount == 0:
                    raise NotFound(f"{queue_id!r} has no recipient {result.address}")

    async def remove(self, queue_id: str) -> None:
        async with self._writing() as connection:
            await connection.execute(
                delete(OutboundRecipientRow).where(OutboundRecipientRow.queue_id == queue_id)
            )
            await connection.execute(
                delete(OutboundMessageRow).where(OutboundMessageRow.queue_id == queue_id)
            )

    async def list_queued(self) -> list[QueuedMessage]:
        async with self._reading() as connection:
            ids = (
                await connection.execute(
                    select(OutboundMessageRow.queue_id).order_by(
                        OutboundMessageRow.created_at, OutboundMessageRow.queue_id
                    )
                )
            ).scalars()
            return await self._load(connection, list(ids))

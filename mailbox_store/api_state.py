"""The application API's state over SQL (:class:`messaging.api_clients.ApiState`).

Same engine and transaction discipline as :class:`mailbox_store.SqlMailboxStore` (writes
in ``BEGIN IMMEDIATE`` on SQLite); get one with :meth:`SqlMailboxStore.api_state`.

Idempotency claims rely on the primary key ``(client_id, key)``: of two concurrent
requests with one key, exactly one insert succeeds, the other reads the winner's row.

The writes of a send (its idempotency claim, then its answer with the per-recipient rows
and webhook events) and the call trace go through one :class:`GroupCommitter`: concurrent
requests share one transaction and one flush instead of paying one ``fsync`` each, the cost
that bounded the API's sends per second (one SQLite write lock, taken ~3 times per send).
Each caller still returns only once the transaction carrying its write has committed.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mailbox_store import engine as engines
from mailbox_store.api_tables import (
    ApiClientRow,
    ApiIdempotencyRow,
    ApiSendRow,
    ApiWebhookDeliveryRow,
    ApiWebhookRow,
)
from mailbox_store.group_commit import CommitStats, GroupCommitter
from mailbox_store.invariants import address_key
from mailbox_store.tables import AccountRow, FolderRow, MessageRow, TraceRow
from messaging.api_clients import (
    ApiClient,
    IdempotencyRecord,
    SentRecipient,
    Webhook,
    WebhookDelivery,
)
from messaging.errors import NotFound
from messaging.types import Address, TraceEntry

__all__ = ["SqlApiState"]


def _client(row: Any) -> ApiClient:  # noqa: ANN401 - a SQLAlchemy row
    return ApiClient(
        client_id=row.client_id,
        address=Address.parse(row.address),
        name=row.name,
        scopes=frozenset(row.scopes.split()),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        rate_per_minute=row.rate_per_minute,
        daily_quota=row.daily_quota,
    )


def _send(row: Any) -> SentRecipient:  # noqa: ANN401
    return SentRecipient(
        envelope_id=row.envelope_id,
        client_id=row.client_id,
        recipient=Address.parse(row.recipient),
        kind=row.kind,
        provenance=row.provenance,
        status=row.status,
        delivered_at=row.delivered_at,
        read_at=row.read_at,
    )


def _webhook(row: Any) -> Webhook:  # noqa: ANN401
    return Webhook(
        id=row.id,
        client_id=row.client_id,
        url=row.url,
        events=frozenset(row.events.split()),
        created_at=row.created_at,
    )


def _delivery(row: Any) -> WebhookDelivery:  # noqa: ANN401
    return WebhookDelivery(
        id=row.id,
        webhook_id=row.webhook_id,
        client_id=row.client_id,
        event=row.event,
        payload=row.payload,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        attempts=row.attempts,
        state=row.state,
        last_status=row.last_status,
        last_error=row.last_error,
        delivered_at=row.delivered_at,
    )


def _idempotency(row: Any) -> IdempotencyRecord:  # noqa: ANN401
    return IdempotencyRecord(
        client_id=row.client_id,
        key=row.key,
        request_hash=row.request_hash,
        created_at=row.created_at,
        status=row.status,
        body=row.body,
        headers=row.headers,
    )


@dataclass(frozen=True, slots=True)
class _Claim:
    record: IdempotencyRecord
    stale_before: datetime


@dataclass(frozen=True, slots=True)
class _Complete:
    client_id: str
    key: str
    status: int
    body: bytes
    headers: str
    sends: Sequence[SentRecipient]
    events: Sequence[WebhookDelivery]


@dataclass(frozen=True, slots=True)
class _Release:
    client_id: str
    key: str


@dataclass(frozen=True, slots=True)
class _Calls:
    entries: Sequence[TraceEntry]


_WEBHOOK_CACHE_SECONDS = 2.0

_Write = _Claim | _Complete | _Release | _Calls
_RELAXED = (_Claim, _Calls)
"""Writes that need not be durable before they return (see :meth:`SqlApiState._writing`)."""


class SqlApiState:
    def __init__(self, engine: AsyncEngine, *, max_group: int = 128) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**engines.WRITE)
        self._hooks: dict[str, tuple[float, list[Webhook]]] = {}
        self._batch: GroupCommitter[_Write, IdempotencyRecord | None] = GroupCommitter(
            self._commit_group, self._commit_one, max_group=max_group
        )

    @property
    def stats(self) -> CommitStats:
        """What the batched writer did (transactions per write, for tests and metrics)."""
        return self._batch.stats

    async def close(self) -> None:
        """Commit the writes queued, then accept no more (before the engine is disposed)."""
        await self._batch.close()

    async def _commit_group(self, writes: Sequence[_Write]) -> list[IdempotencyRecord | None]:
        relaxed = all(isinstance(w, _RELAXED) for w in writes)
        async with self._writing(relaxed=relaxed) as connection:
            return [await _apply(connection, w) for w in writes]

    async def _commit_one(self, write: _Write) -> IdempotencyRecord | None:
        if isinstance(write, _Claim):
            return await self._claim_alone(write)
        async with self._writing(relaxed=isinstance(write, _RELAXED)) as connection:
            return await _apply(connection, write)

    async def _claim_alone(self, claim: _Claim) -> IdempotencyRecord | None:
        try:
            async with self._writing(relaxed=True) as connection:
                return await _claim(connection, claim)
        except IntegrityError:
            # A concurrent request inserted first (PostgreSQL read committed): theirs.
            async with self._reading() as connection:
                row = (
                    await connection.execute(
                        select(ApiIdempotencyRow.__table__).where(_key_of(claim.record))
                    )
                ).one()
            return _idempotency(row)

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncConnection]:
        async with engines.translate_errors(), self._engine.connect() as connection:
            yield connection

    @asynccontextmanager
    async def _writing(self, *, relaxed: bool = False) -> AsyncIterator[AsyncConnection]:
        """A write transaction; ``relaxed`` ones need not be durable before they return.

        Relaxed (PostgreSQL's ``synchronous_commit = off`` for that transaction only): an
        idempotency claim and trace lines. A claim lost in a crash belongs to a request that
        was not answered; a later durable commit flushes the relaxed ones before it.
        """
        async with engines.translate_errors(), self._writer.begin() as connection:
            if relaxed and self._engine.dialect.name == "postgresql":
                await connection.execute(text("SET LOCAL synchronous_commit TO OFF"))
            yield connection

    # -- clients --------------------------------------------------------------------------

    async def create_client(self, client: ApiClient) -> None:
        async with self._writing() as connection:
            await connection.execute(
                insert(ApiClientRow).values(
                    client_id=client.client_id,
                    address=str(client.address),
                    name=client.name,
                    scopes=" ".join(sorted(client.scopes)),
                    created_at=client.created_at,
                    revoked_at=client.revoked_at,
                    rate_per_minute=client.rate_per_minute,
                    daily_quota=client.daily_quota,
                )
            )

    async def get_client(self, client_id: str) -> ApiClient | None:
        async with self._reading() as connection:
            row = (
                await connection.execute(
                    select(ApiClientRow.__table__).where(ApiClientRow.client_id == client_id)
                )
            ).one_or_none()
        return None if row is None else _client(row)

    async def list_clients(self) -> list[ApiClient]:
        async with self._reading() as connection:
            rows = await connection.execute(
                select(ApiClientRow.__table__).order_by(ApiClientRow.created_at)
            )
            return [_client(r) for r in rows]

    async def revoke_client(self, client_id: str, at: datetime) -> None:
        async with self._writing() as connection:
            await connection.execute(
                update(ApiClientRow)
                .where(ApiClientRow.client_id == client_id, ApiClientRow.revoked_at.is_(None))
                .values(revoked_at=at)
            )

    # -- idempotency ----------------------------------------------------------------------

    async def claim_idempotency(
        self, record: IdempotencyRecord, *, stale_before: datetime
    ) -> IdempotencyRecord | None:
        return await self._batch.submit(_Claim(record, stale_before))

    async def complete_idempotency(
        self,
        client_id: str,
        key: str,
        status: int,
        body: bytes,
        headers: str,
        sends: Sequence[SentRecipient] = (),
        events: Sequence[WebhookDelivery] = (),
    ) -> None:
        await self._batch.submit(
            _Complete(client_id, key, status, body, headers, tuple(sends), tuple(events))
        )

    async def release_idempotency(self, client_id: str, key: str) -> None:
        await self._batch.submit(_Release(client_id, key))

    # -- sends ----------------------------------------------------------------------------

    async def record_sends(
        self, sends: Sequence[SentRecipient], events: Sequence[WebhookDelivery] = ()
    ) -> None:
        if not sends and not events:
            return
        await self._batch.submit(_Complete("", "", 0, b"", "", tuple(sends), tuple(events)))

    async def record_calls(self, entries: Sequence[TraceEntry]) -> None:
        if not entries:
            return
        await self._batch.submit(_Calls(tuple(entries)))

    async def list_sends(self, client_id: str, envelope_id: str) -> list[SentRecipient]:
        async with self._reading() as connection:
            rows = await connection.execute(
                select(ApiSendRow.__table__)
                .where(ApiSendRow.client_id == client_id, ApiSendRow.envelope_id == envelope_id)
                .order_by(ApiSendRow.recipient)
            )
            return [_send(r) for r in rows]

    async def unread_sends(self, limit: int) -> list[SentRecipient]:
        async with self._reading() as connection:
            rows = await connection.execute(
                select(ApiSendRow.__table__)
                .where(ApiSendRow.status == "delivered")
                .order_by(ApiSendRow.delivered_at)
                .limit(limit)
            )
            return [_send(r) for r in rows]

    async def mark_read(self, envelope_id: str, recipient: Address, at: datetime) -> bool:
        async with self._writing() as connection:
            result = await connection.execute(
                update(ApiSendRow)
                .where(
                    ApiSendRow.envelope_id == envelope_id,
                    ApiSendRow.recipient == str(recipient),
                    ApiSendRow.status == "delivered",
                )
                .values(status="read", read_at=at)
            )
            return bool(result.rowcount)

    async def seen_sends(self, limit: int) -> list[SentRecipient]:
        # Two queries for the whole batch: the worker used to ask the store once per send.
        sends = await self.unread_sends(limit)
        if not sends:
            return []
        async with self._reading() as connection:
            rows = await connection.execute(
                select(AccountRow.address, MessageRow.envelope_id, MessageRow.seen)
                .select_from(MessageRow)
                .join(FolderRow, FolderRow.id == MessageRow.folder_id)
                .join(AccountRow, AccountRow.id == FolderRow.account_id)
                .where(
                    MessageRow.envelope_id.in_({s.envelope_id for s in sends}),
                    AccountRow.address.in_({address_key(s.recipient) for s in sends}),
                )
                .order_by(FolderRow.id, MessageRow.uid)
            )
            first: dict[tuple[str, str], bool] = {}
            for address, envelope_id, seen in rows:
                first.setdefault((address, envelope_id), bool(seen))
        return [s for s in sends if first.get((address_key(s.recipient), s.envelope_id))]

    async def count_sends_since(self, client_id: str, since: datetime) -> int:
        async with self._reading() as connection:
            found = await connection.execute(
                select(func.count(func.distinct(ApiSendRow.envelope_id))).where(
                    ApiSendRow.client_id == client_id, ApiSendRow.delivered_at >= since
                )
            )
            return int(found.scalar_one())

    # -- webhooks -------------------------------------------------------------------------

    async def create_webhook(self, webhook: Webhook) -> None:
        self._hooks.pop(webhook.client_id, None)
        async with self._writing() as connection:
            await connection.execute(
                insert(ApiWebhookRow).values(
                    id=webhook.id,
                    client_id=webhook.client_id,
                    url=webhook.url,
                    events=" ".join(sorted(webhook.events)),
                    created_at=webhook.created_at,
                )
            )

    async def list_webhooks(self, client_id: str | None = None) -> list[Webhook]:
        # Every send asks for its client's webhooks: kept a few seconds per client, dropped
        # at once by this process's own changes (another process's show within the TTL).
        if client_id is not None:
            cached = self._hooks.get(client_id)
            if cached is not None and cached[0] > time.monotonic():
                return list(cached[1])
            found = await self._list_webhooks(client_id)
            self._hooks[client_id] = (time.monotonic() + _WEBHOOK_CACHE_SECONDS, found)
            return list(found)
        return await self._list_webhooks(None)

    async def _list_webhooks(self, client_id: str | None) -> list[Webhook]:
        query = select(ApiWebhookRow.__table__).order_by(ApiWebhookRow.created_at)
        if client_id is not None:
            query = query.where(ApiWebhookRow.client_id == client_id)
        async with self._reading() as connection:
            return [_webhook(r) for r in await connection.execute(query)]

    async def delete_webhook(self, client_id: str, webhook_id: str) -> None:
        self._hooks.pop(client_id, None)
        async with self._writing() as connection:
            result = await connection.execute(
                delete(ApiWebhookRow).where(
                    ApiWebhookRow.client_id == client_id, ApiWebhookRow.id == webhook_id
                )
            )
            if not result.rowcount:
                raise NotFound(f"no webhook {webhook_id}")

    async def enqueue_deliveries(self, deliveries: Sequence[WebhookDelivery]) -> None:
        if not deliveries:
            return
        async with self._writing() as connection:
            await connection.execute(
                insert(ApiWebhookDeliveryRow), [_delivery_values(d) for d in deliveries]
            )

    async def due_deliveries(self, now: datetime, limit: int) -> list[WebhookDelivery]:
        async with self._reading() as connection:
            rows = await connection.execute(
                select(ApiWebhookDeliveryRow.__table__)
                .where(
                    ApiWebhookDeliveryRow.state == "pending",
                    ApiWebhookDeliveryRow.next_attempt_at <= now,
                )
                .order_by(ApiWebhookDeliveryRow.next_attempt_at)
                .limit(limit)
            )
            return [_delivery(r) for r in rows]

    async def update_delivery(self, delivery: WebhookDelivery) -> None:
        values = _delivery_values(delivery)
        del values["id"]
        async with self._writing() as connection:
            await connection.execute(
                update(ApiWebhookDeliveryRow)
                .where(ApiWebhookDeliveryRow.id == delivery.id)
                .values(values)
            )

    async def list_deliveries(self, client_id: str, limit: int) -> list[WebhookDelivery]:
        async with self._reading() as connection:
            rows = await connection.execute(
                select(ApiWebhookDeliveryRow.__table__)
                .where(ApiWebhookDeliveryRow.client_id == client_id)
                .order_by(ApiWebhookDeliveryRow.created_at.desc(), ApiWebhookDeliveryRow.id)
                .limit(limit)
            )
            return [_delivery(r) for r in rows]


def _insert_new(connection: AsyncConnection) -> Any:  # noqa: ANN401 - a dialect's insert
    if connection.dialect.name == "postgresql":
        return postgresql_insert(ApiIdempotencyRow)
    return sqlite_insert(ApiIdempotencyRow)


def _key_of(record: IdempotencyRecord) -> Any:  # noqa: ANN401 - a SQL condition
    return and_(
        ApiIdempotencyRow.client_id == record.client_id, ApiIdempotencyRow.key == record.key
    )


async def _apply(connection: AsyncConnection, write: _Write) -> IdempotencyRecord | None:
    """One write of a group, in the group's transaction."""
    if isinstance(write, _Claim):
        return await _claim(connection, write)
    if isinstance(write, _Complete):
        if write.key:
            await connection.execute(
                update(ApiIdempotencyRow)
                .where(
                    ApiIdempotencyRow.client_id == write.client_id,
                    ApiIdempotencyRow.key == write.key,
                )
                .values(status=write.status, body=write.body, headers=write.headers)
            )
        await _insert_sends(connection, write.sends, write.events)
        return None
    if isinstance(write, _Release):
        await connection.execute(
            delete(ApiIdempotencyRow).where(
                ApiIdempotencyRow.client_id == write.client_id,
                ApiIdempotencyRow.key == write.key,
                ApiIdempotencyRow.status.is_(None),
            )
        )
        return None
    await connection.execute(
        insert(TraceRow),
        [
            {
                "at": e.at,
                "actor": e.actor,
                "action": e.action,
                "subject": e.subject,
                "details": e.details,
            }
            for e in write.entries
        ],
    )
    return None


async def _claim(connection: AsyncConnection, claim: _Claim) -> IdempotencyRecord | None:
    """Insert the claim, or take over a stale one; else the row already there.

    Within one group, a second claim of the same key sees the first one's insert (same
    transaction), so of two concurrent duplicates exactly one still wins.
    """
    record = claim.record
    key = _key_of(record)
    values = {
        "client_id": record.client_id,
        "key": record.key,
        "request_hash": record.request_hash,
        "created_at": record.created_at,
        "status": None,
        "body": b"",
        "headers": "",
    }
    # One statement when the key is new (the common case): insert unless it exists.
    fresh = _insert_new(connection).values(values).on_conflict_do_nothing()
    if (await connection.execute(fresh)).rowcount == 1:
        return None
    existing = (await connection.execute(select(ApiIdempotencyRow.__table__).where(key))).one()
    if existing.status is None and existing.created_at < claim.stale_before:
        await connection.execute(update(ApiIdempotencyRow).where(key).values(values))
        return None
    return _idempotency(existing)


async def _insert_sends(
    connection: AsyncConnection,
    sends: Sequence[SentRecipient],
    events: Sequence[WebhookDelivery],
) -> None:
    if events:
        await connection.execute(
            insert(ApiWebhookDeliveryRow), [_delivery_values(d) for d in events]
        )
    if sends:
        await connection.execute(
            insert(ApiSendRow),
            [
                {
                    "envelope_id": s.envelope_id,
                    "recipient": str(s.recipient),
                    "client_id": s.client_id,
                    "kind": s.kind,
                    "provenance": s.provenance,
                    "status": s.status,
                    "delivered_at": s.delivered_at,
                    "read_at": s.read_at,
                }
                for s in sends
            ],
        )


def _delivery_values(d: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "webhook_id": d.webhook_id,
        "client_id": d.client_id,
        "event": d.event,
        "payload": d.payload,
        "created_at": d.created_at,
        "next_attempt_at": d.next_attempt_at,
        "attempts": d.attempts,
        "state": d.state,
        "last_status": d.last_status,
        "last_error": d.last_error,
        "delivered_at": d.delivered_at,
    }

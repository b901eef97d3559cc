"""The application API's SQL state: its writes are batched, and batching keeps every promise.

Idempotency claims, answers and trace lines of concurrent requests share transactions
(:class:`mailbox_store.api_state.SqlApiState`); these tests check that two claims of one
key still let exactly one win, that an answer is readable once its call returned, that a
stale claim is taken over, and that closing the store writes what was queued.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from mailbox_store import SqlMailboxStore
from messaging.api_clients import IdempotencyRecord
from messaging.errors import Unavailable
from messaging.types import TraceEntry

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


@pytest.fixture
async def opened(database_url: str) -> AsyncIterator[SqlMailboxStore]:
    store = await SqlMailboxStore.open(database_url)
    try:
        yield store
    finally:
        await store.close()


def record(key: str, request_hash: str = "h1", at: datetime = T0) -> IdempotencyRecord:
    return IdempotencyRecord("client-1", key, request_hash, at)


async def test_of_concurrent_claims_of_one_key_exactly_one_wins(opened: SqlMailboxStore) -> None:
    state = opened.api_state()
    outcomes = await asyncio.gather(
        *(
            state.claim_idempotency(record("k"), stale_before=T0 - timedelta(minutes=2))
            for _ in range(20)
        )
    )
    assert sum(outcome is None for outcome in outcomes) == 1
    losers = [o for o in outcomes if o is not None]
    assert all(o.key == "k" and o.status is None and o.request_hash == "h1" for o in losers)


async def test_concurrent_writes_share_transactions(opened: SqlMailboxStore) -> None:
    state = opened.api_state()
    before = state.stats.transactions
    claims = await asyncio.gather(
        *(state.claim_idempotency(record(f"k{i}"), stale_before=T0) for i in range(40))
    )
    assert claims == [None] * 40
    assert state.stats.deliveries >= 40
    assert state.stats.transactions - before < 40


async def test_an_answer_is_replayed_once_its_call_returned(opened: SqlMailboxStore) -> None:
    state = opened.api_state()
    assert await state.claim_idempotency(record("k"), stale_before=T0) is None
    await state.complete_idempotency("client-1", "k", 201, b'{"id":"e1"}', "{}")
    found = await state.claim_idempotency(record("k"), stale_before=T0)
    assert found is not None
    assert (found.status, found.body) == (201, b'{"id":"e1"}')
    other = await state.claim_idempotency(record("k", "h2"), stale_before=T0)
    assert other is not None and other.request_hash == "h1"


async def test_a_released_key_can_be_claimed_again(opened: SqlMailboxStore) -> None:
    state = opened.api_state()
    assert await state.claim_idempotency(record("k"), stale_before=T0) is None
    await state.release_idempotency("client-1", "k")
    assert await state.claim_idempotency(record("k"), stale_before=T0) is None


async def test_a_stale_claim_is_taken_over_and_a_fresh_one_is_not(opened: SqlMailboxStore) -> None:
    state = opened.api_state()
    assert await state.claim_idempotency(record("k", at=T0), stale_before=T0) is None
    later = T0 + timedelta(minutes=5)
    fresh = await state.claim_idempotency(record("k", at=later), stale_before=T0)
    assert fresh is not None and fresh.status is None
    taken = await state.claim_idempotency(record("k", at=later), stale_before=later)
    assert taken is None


async def test_closing_the_store_writes_what_was_queued(database_url: str) -> None:
    store = await SqlMailboxStore.open(database_url)
    state = store.api_state()
    entry = TraceEntry("api:client-1", "api-call", "client-1", T0, {"status": "201"})
    pending = asyncio.ensure_future(state.record_calls([entry]))
    await asyncio.sleep(0)
    await store.close()
    await pending
    with pytest.raises(Unavailable):
        await state.claim_idempotency(record("k"), stale_before=T0)
    reopened = await SqlMailboxStore.open(database_url)
    try:
        trace = await reopened.list_trace("client-1")
        assert [t.action for t in trace] == ["api-call"]
    finally:
        await reopened.close()

"""Group commit: concurrent deliveries share transactions, bad ones fail alone, close drains.

The SQL tests run on SQLite and PostgreSQL (``database_url``); the committer's own rules
(cancellation, Unavailable, group size) are checked with plain coroutines.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from mailbox_store import SqlMailboxStore
from mailbox_store.group_commit import GroupCommitter
from messaging.errors import InvalidMessage, Unavailable, UnknownMailbox
from messaging.types import Address
from tests.mailbox_store import factories as f

ALICE = f.address("alice")
BOB = f.address("bob")
NOBODY = f.address("nobody")


@pytest.fixture
async def sql_store(database_url: str) -> AsyncIterator[SqlMailboxStore]:
    store = await SqlMailboxStore.open(database_url)
    try:
        await store.create_account(f.account(ALICE), [])
        await store.create_account(f.account(BOB), [])
        yield store
    finally:
        await store.close()


async def inbox_envelopes(store: SqlMailboxStore, who: Address) -> list[str]:
    return [m.envelope_id for m in await store.list_messages(who, "INBOX")]


async def test_concurrent_deliveries_share_few_transactions(sql_store: SqlMailboxStore) -> None:
    sent = [f.delivery(ALICE, [BOB]) for _ in range(32)]

    results = await asyncio.gather(*(sql_store.deliver(d) for d in sent))

    assert sorted(p.uid for placed in results for p in placed if p.account == BOB) == list(
        range(1, 33)
    )
    assert sql_store.stats.deliveries == 32
    assert sql_store.stats.transactions <= 4, sql_store.stats
    assert sql_store.stats.largest_group >= 8
    assert sql_store.stats.fallbacks == 0


async def test_a_lone_delivery_is_committed_without_waiting(sql_store: SqlMailboxStore) -> None:
    await sql_store.deliver(f.delivery(ALICE, [BOB]))

    assert (sql_store.stats.transactions, sql_store.stats.deliveries) == (1, 1)


async def test_a_group_never_exceeds_its_maximum(database_url: str) -> None:
    store = await SqlMailboxStore.open(database_url, group_commit_max=4)
    try:
        await store.create_account(f.account(ALICE), [])
        await store.create_account(f.account(BOB), [])
        await asyncio.gather(*(store.deliver(f.delivery(ALICE, [BOB])) for _ in range(20)))
        assert store.stats.largest_group == 4
        assert store.stats.transactions >= 5
        assert store.stats.deliveries == 20
    finally:
        await store.close()


async def test_an_unknown_mailbox_fails_alone_without_sinking_its_group(
    sql_store: SqlMailboxStore,
) -> None:
    good = [f.delivery(ALICE, [BOB]) for _ in range(10)]
    bad = f.delivery(ALICE, [BOB, NOBODY])

    outcomes = await asyncio.gather(
        *(sql_store.deliver(d) for d in [*good[:5], bad, *good[5:]]), return_exceptions=True
    )

    assert isinstance(outcomes[5], UnknownMailbox)
    assert all(isinstance(o, list) for i, o in enumerate(outcomes) if i != 5)
    assert sorted(await inbox_envelopes(sql_store, BOB)) == sorted(d.envelope_id for d in good)
    assert sql_store.stats.fallbacks == 0  # refused up front, the group committed once
    assert sql_store.stats.deliveries == 10


async def test_a_conflicting_delivery_falls_back_to_one_by_one(sql_store: SqlMailboxStore) -> None:
    earlier = f.delivery(ALICE, [BOB], envelope_id="already-here")
    await sql_store.deliver(earlier)
    good = [f.delivery(ALICE, [BOB]) for _ in range(6)]
    twin = f.delivery(BOB, [ALICE], envelope_id="already-here")

    outcomes = await asyncio.gather(
        *(sql_store.deliver(d) for d in [*good[:3], twin, *good[3:]]), return_exceptions=True
    )

    assert isinstance(outcomes[3], InvalidMessage)
    assert all(isinstance(o, list) for i, o in enumerate(outcomes) if i != 3)
    assert sql_store.stats.fallbacks >= 1
    inbox = await inbox_envelopes(sql_store, BOB)
    assert sorted(inbox) == sorted(["already-here", *(d.envelope_id for d in good)])
    assert await inbox_envelopes(sql_store, ALICE) == []  # nothing of the twin
    assert [m.uid for m in await sql_store.list_messages(BOB, "INBOX")] == list(range(1, 8))


async def test_twins_in_one_group_land_once(sql_store: SqlMailboxStore) -> None:
    first = f.delivery(ALICE, [BOB], envelope_id="twin")
    second = f.delivery(ALICE, [BOB], envelope_id="twin")

    outcomes = await asyncio.gather(
        sql_store.deliver(first), sql_store.deliver(second), return_exceptions=True
    )

    assert isinstance(outcomes[0], list)
    assert isinstance(outcomes[1], InvalidMessage)
    assert await inbox_envelopes(sql_store, BOB) == ["twin"]


async def test_close_drains_the_queue_then_refuses(database_url: str) -> None:
    store = await SqlMailboxStore.open(database_url)
    await store.create_account(f.account(ALICE), [])
    await store.create_account(f.account(BOB), [])
    sent = [f.delivery(ALICE, [BOB]) for _ in range(20)]

    tasks = [asyncio.create_task(store.deliver(d)) for d in sent]
    await asyncio.sleep(0)  # every task has queued its delivery
    await store.close()

    assert all(task.done() and not task.cancelled() for task in tasks)
    assert all(len(task.result()) == 2 for task in tasks)
    with pytest.raises(Unavailable):
        await store.deliver(f.delivery(ALICE, [BOB]))

    reopened = await SqlMailboxStore.open(database_url)
    try:
        assert sorted(await inbox_envelopes(reopened, BOB)) == sorted(d.envelope_id for d in sent)
    finally:
        await reopened.close()


# -- the committer on its own -------------------------------------------------------------


class Recorder:
    """Commits integers; refuses negative ones, and fails any group holding a 13."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []
        self.singles: list[int] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def group(self, items: Sequence[int]) -> list[int | Exception]:
        await self.gate.wait()
        if 13 in items:
            raise RuntimeError("unlucky group")
        self.groups.append(list(items))
        return [ValueError(i) if i < 0 else i * 10 for i in items]

    async def one(self, item: int) -> int:
        if item == 13 or item < 0:
            raise ValueError(item)
        self.singles.append(item)
        return item * 10


async def test_the_committer_resolves_each_caller_with_its_own_outcome() -> None:
    recorder = Recorder()
    committer = GroupCommitter(recorder.group, recorder.one, max_group=64)

    outcomes = await asyncio.gather(
        *(committer.submit(i) for i in (1, -2, 3, 13, 5)), return_exceptions=True
    )
    await committer.close()

    assert outcomes[0] == 10 and outcomes[2] == 30 and outcomes[4] == 50
    assert isinstance(outcomes[1], ValueError) and isinstance(outcomes[3], ValueError)
    assert recorder.groups == []  # the group with 13 failed as a whole ...
    assert recorder.singles == [1, 3, 5]  # ... so every item was retried alone
    assert committer.stats.fallbacks == 1
    assert (committer.stats.transactions, committer.stats.deliveries) == (3, 3)
    assert committer.stats.refused == 2


async def test_unavailable_fails_the_whole_group_without_retrying() -> None:
    singles: list[int] = []

    async def group(_items: Sequence[int]) -> list[int | Exception]:
        raise Unavailable("database down")

    async def one(item: int) -> int:
        singles.append(item)
        return item

    committer = GroupCommitter(group, one)
    outcomes = await asyncio.gather(
        *(committer.submit(i) for i in range(5)), return_exceptions=True
    )
    await committer.close()

    assert all(isinstance(o, Unavailable) for o in outcomes)
    assert singles == []
    assert committer.stats.transactions == 0


async def test_a_caller_cancelled_before_its_group_starts_is_never_committed() -> None:
    recorder = Recorder()
    committer = GroupCommitter(recorder.group, recorder.one)
    recorder.gate.clear()
    first = asyncio.create_task(committer.submit(1))
    await asyncio.sleep(0.01)  # the committer is now stuck committing [1]
    second = asyncio.create_task(committer.submit(2))
    third = asyncio.create_task(committer.submit(3))
    await asyncio.sleep(0)
    second.cancel()
    recorder.gate.set()

    assert await first == 10
    assert await third == 30
    with pytest.raises(asyncio.CancelledError):
        await second
    await committer.close()
    assert recorder.groups == [[1], [3]]


async def test_close_is_idempotent_and_works_before_any_item() -> None:
    recorder = Recorder()
    committer = GroupCommitter(recorder.group, recorder.one)
    await committer.close()
    await committer.close()
    with pytest.raises(Unavailable):
        await committer.submit(1)


def test_a_group_holds_at_least_one_item() -> None:
    recorder = Recorder()
    with pytest.raises(ValueError, match="max_group"):
        GroupCommitter(recorder.group, recorder.one, max_group=0)

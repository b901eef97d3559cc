"""``MailboxStore.watch``: changed folders reach watchers of this store and, on SQL, watchers
of another store instance sharing the database (another process, another front)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from mailbox_store import SqlMailboxStore
from messaging.errors import Unavailable
from messaging.ports import ChangeWatch, MailboxStore
from messaging.types import Address, FlagMode
from tests.mailbox_store import factories as f
from tests.mailbox_store.conftest import StepClock
from tests.support.databases import fresh_database

ALICE = f.address("alice")
BOB = f.address("bob")
WITHIN = 1.0  # seconds: the promise of the port
QUIET = 0.6  # seconds to wait for an event that must not come


async def make(store: MailboxStore, *who: Address) -> None:
    for one in who:
        await store.create_account(f.account(one), [f.credential(f"pw-{one.local}")])


async def next_event(events: ChangeWatch, timeout: float = WITHIN) -> str:
    return await asyncio.wait_for(anext(events), timeout)


async def events_until(events: ChangeWatch, wanted: str) -> list[str]:
    """Events up to ``wanted`` (coalesced hints may come first), each within the promise."""
    seen: list[str] = []
    for _ in range(20):
        seen.append(await next_event(events))
        if seen[-1] in (wanted, "*"):
            return seen
    raise AssertionError(f"no {wanted!r} among {seen}")


async def test_watchers_hear_of_every_kind_of_change(store: MailboxStore) -> None:
    await make(store, ALICE, BOB)
    events = store.watch(ALICE)
    try:
        await store.deliver(f.delivery(BOB, [ALICE], sent_copy=False))
        assert "INBOX" in await events_until(events, "INBOX")

        await store.update_flags(ALICE, "INBOX", [1], FlagMode.ADD, frozenset({"\\Deleted"}))
        assert "INBOX" in await events_until(events, "INBOX")

        await store.expunge(ALICE, "INBOX")
        assert "INBOX" in await events_until(events, "INBOX")

        await store.create_folder(ALICE, "Cas")
        assert (await events_until(events, "*"))[-1] == "*"
    finally:
        await events.aclose()


async def test_a_watcher_hears_nothing_of_other_accounts(store: MailboxStore) -> None:
    await make(store, ALICE, BOB)
    events = store.watch(ALICE)
    try:
        await store.deliver(f.delivery(ALICE, [BOB], sent_copy=False))
        with pytest.raises(TimeoutError):
            await next_event(events, QUIET)
    finally:
        await events.aclose()


async def test_a_closed_watch_ends_and_a_closed_store_ends_its_watches(
    store: MailboxStore,
) -> None:
    await make(store, ALICE)
    first = store.watch(ALICE)
    second = store.watch(ALICE)
    waiting = asyncio.ensure_future(anext(second))

    await first.aclose()
    with pytest.raises(StopAsyncIteration):
        await next_event(first)

    await store.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, WITHIN)
    with pytest.raises(Unavailable):
        store.watch(ALICE)


async def test_events_are_coalesced_and_bounded(store: MailboxStore) -> None:
    await make(store, ALICE, BOB)
    events = store.watch(ALICE)
    try:
        for _ in range(30):
            await store.deliver(f.delivery(BOB, [ALICE], sent_copy=False))
        heard = [await next_event(events)]
        while True:
            try:
                heard.append(await next_event(events, QUIET))
            except TimeoutError:
                break
            assert len(heard) <= 2, heard
        # Thirty changes, one pending hint (SQLite's poller may add one of its own).
        assert set(heard) == {"INBOX"}
    finally:
        await events.aclose()


# -- across store instances (processes, fronts) -------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
async def two_fronts(
    request: pytest.FixtureRequest, tmp_path: Path, clock: StepClock
) -> AsyncIterator[tuple[SqlMailboxStore, SqlMailboxStore]]:
    """Two stores on one database: what two processes (or two fronts) sharing it see."""
    async with fresh_database(request, request.param, tmp_path) as url:
        first = await SqlMailboxStore.open(url, clock=clock, watch_poll_interval=0.1)
        second = await SqlMailboxStore.open(url, clock=clock, watch_poll_interval=0.1)
        try:
            yield first, second
        finally:
            await first.close()
            await second.close()


async def test_another_front_hears_of_changes_within_a_second(
    two_fronts: tuple[SqlMailboxStore, SqlMailboxStore],
) -> None:
    writer, watcher = two_fronts
    await make(writer, ALICE, BOB)
    events = watcher.watch(ALICE)
    try:
        await asyncio.wait_for(events.ready(), WITHIN)  # LISTEN / first poll in place

        [placed] = await writer.deliver(f.delivery(BOB, [ALICE], sent_copy=False))
        assert "INBOX" in await events_until(events, "INBOX")
        status = await watcher.folder_status(ALICE, "INBOX")
        assert (status.messages, status.highestmodseq) == (1, placed.modseq)

        await writer.update_flags(ALICE, "INBOX", [1], FlagMode.ADD, frozenset({"\\Seen"}))
        assert "INBOX" in await events_until(events, "INBOX")
        changes = await watcher.changes_since(ALICE, "INBOX", placed.modseq)
        assert [r.flags for r in changes.records] == [{"\\Seen"}]

        await writer.move_messages(ALICE, "INBOX", [1], "Archive")
        seen = await events_until(events, "Archive")
        assert "INBOX" in seen or "*" in seen or "INBOX" in await events_until(events, "INBOX")
        assert (await watcher.changes_since(ALICE, "INBOX", 0)).vanished == [1]

        await writer.rename_folder(ALICE, "Archive", "Classement")
        assert (await events_until(events, "*"))[-1] == "*"
    finally:
        await events.aclose()


async def test_uids_from_two_fronts_never_collide(
    two_fronts: tuple[SqlMailboxStore, SqlMailboxStore],
) -> None:
    first, second = two_fronts
    await make(first, ALICE, BOB)
    await first.create_folder(ALICE, "Cas")

    for _ in range(10):
        await first.deliver(f.delivery(BOB, [ALICE], sent_copy=False))

    results = await asyncio.gather(
        *(
            store.copy_messages(ALICE, "INBOX", [uid], "Cas")
            for store, uid in zip((first, second) * 5, range(1, 11), strict=True)
        )
    )

    new_uids = [new for pairs in results for _, new in pairs]
    assert sorted(new_uids) == list(range(1, 11))
    assert (await second.folder_status(ALICE, "Cas")).uidnext == 11


async def test_unsubscribing_stops_the_poller_or_listener(
    two_fronts: tuple[SqlMailboxStore, SqlMailboxStore],
) -> None:
    _, watcher = two_fronts
    await make(watcher, ALICE)
    feed = watcher._feed  # the store's change feed: released when nobody watches

    def running() -> bool:
        return feed.running

    events = watcher.watch(ALICE)
    await asyncio.sleep(0.2)
    assert feed.running

    await events.aclose()
    for _ in range(50):
        if not running():
            break
        await asyncio.sleep(0.05)
    assert not running()


async def test_a_change_right_after_ready_is_never_missed(
    two_fronts: tuple[SqlMailboxStore, SqlMailboxStore],
) -> None:
    writer, watcher = two_fronts
    await make(writer, ALICE, BOB)
    for round_ in range(3):  # a fresh feed each time: nobody else keeps it running
        events = watcher.watch(ALICE)
        try:
            await asyncio.wait_for(events.ready(), WITHIN)
            await writer.update_flags(ALICE, "Sent", [], FlagMode.ADD, frozenset())  # no-op
            await writer.create_folder(ALICE, f"Round {round_}")
            assert (await events_until(events, "*"))[-1] == "*"
        finally:
            await events.aclose()


_OTHER_PROCESS = """
import asyncio, sys
from mailbox_store import SqlMailboxStore
from messaging.types import FlagMode
from tests.mailbox_store import factories as f

async def main(url: str) -> None:
    store = await SqlMailboxStore.open(url)
    try:
        await store.deliver(f.delivery(f.address("bob"), [f.address("alice")], sent_copy=False))
        await store.update_flags(
            f.address("alice"), "INBOX", [1], FlagMode.ADD, frozenset({"\\\\Flagged"})
        )
    finally:
        await store.close()

asyncio.run(main(sys.argv[1]))
"""


async def test_a_change_made_by_another_process_is_heard(
    two_fronts: tuple[SqlMailboxStore, SqlMailboxStore],
) -> None:
    _, watcher = two_fronts
    await make(watcher, ALICE, BOB)
    url = watcher._engine.url.render_as_string(hide_password=False)
    events = watcher.watch(ALICE)
    try:
        await asyncio.wait_for(events.ready(), WITHIN)
        other = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _OTHER_PROCESS, url, cwd=Path(__file__).parents[2]
        )
        assert await asyncio.wait_for(other.wait(), 60) == 0

        assert "INBOX" in await events_until(events, "INBOX")
        [record] = await watcher.list_messages(ALICE, "INBOX")
        assert record.flags == {"\\Flagged"}
    finally:
        await events.aclose()


async def test_a_lost_listen_connection_is_replaced_and_watchers_are_told(
    request: pytest.FixtureRequest, tmp_path: Path, clock: StepClock
) -> None:
    async with fresh_database(request, "postgresql", tmp_path) as url:
        writer = await SqlMailboxStore.open(url, clock=clock, watch_poll_interval=0.1)
        watcher = await SqlMailboxStore.open(url, clock=clock, watch_poll_interval=0.1)
        try:
            await make(writer, ALICE, BOB)
            events = watcher.watch(ALICE)
            await asyncio.wait_for(events.ready(), WITHIN)

            async with writer._engine.connect() as admin:  # the server drops the listener
                killed = await admin.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND query LIKE 'LISTEN%'"
                    )
                )
                assert killed.scalars().all() == [True]

            assert await next_event(events, 5.0) == "*"  # changes may have been missed
            await asyncio.wait_for(events.ready(), 5.0)
            await writer.deliver(f.delivery(BOB, [ALICE], sent_copy=False))
            assert "INBOX" in await events_until(events, "INBOX")
            await events.aclose()
        finally:
            await writer.close()
            await watcher.close()

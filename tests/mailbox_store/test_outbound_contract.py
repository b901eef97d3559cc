"""The outbound queue's contract, on every implementation (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from messaging.errors import InvalidMessage, NotFound, UnknownMailbox
from messaging.outbound import (
    AttemptResult,
    OutboundMessage,
    OutboundQueue,
    OutboundRecipient,
    RecipientState,
    Ret,
    new_queue_id,
)
from messaging.ports import MailboxStore
from tests.mailbox_store import factories as f

WHEN = f.WHEN
ALICE = f.address("alice")
PEER_1 = f.address("bob", "ch-peer.test")
PEER_2 = f.address("carol", "ch-peer.test")


def queue_of(store: MailboxStore) -> OutboundQueue:
    queue: OutboundQueue = store.outbound  # type: ignore[attr-defined]
    return queue


def outbound(*recipients: Any, created: Any = WHEN, **extra: Any) -> OutboundMessage:
    return OutboundMessage(
        queue_id=new_queue_id(),
        mail_from=ALICE,
        recipients=tuple(
            r if isinstance(r, OutboundRecipient) else OutboundRecipient(r) for r in recipients
        ),
        sealed=b"sealed-ciphertext" * 10,
        slot=b"slot" * 20,
        size=170,
        message_id="<m1@medecin.pli.test>",
        created_at=created,
        **extra,
    )


async def test_enqueued_message_reads_back_whole(store: MailboxStore) -> None:
    queue = queue_of(store)
    message = outbound(
        OutboundRecipient(PEER_1, frozenset({"SUCCESS", "FAILURE"}), "rfc822;bob@ch-peer.test"),
        PEER_2,
        envid="ENV-42",
        ret=Ret.HDRS,
    )
    await queue.enqueue([message])

    got = await queue.get(message.queue_id)
    assert got.message == message
    assert [r.state for r in got.recipients] == [RecipientState.QUEUED] * 2
    assert [r.attempts for r in got.recipients] == [0, 0]
    assert [m.message.queue_id for m in await queue.list_queued()] == [message.queue_id]


async def test_a_queue_id_is_queued_once(store: MailboxStore) -> None:
    queue = queue_of(store)
    message = outbound(PEER_1)
    await queue.enqueue([message])
    with pytest.raises(InvalidMessage):
        await queue.enqueue([message])
    assert len(await queue.list_queued()) == 1


async def test_claim_takes_due_recipients_and_leases_them(store: MailboxStore) -> None:
    queue = queue_of(store)
    early, late = outbound(PEER_1), outbound(PEER_2, created=WHEN + timedelta(hours=1))
    await queue.enqueue([late, early])

    lease = WHEN + timedelta(minutes=5)
    claimed = await queue.claim(WHEN, lease, limit=10)
    assert [c.message.queue_id for c in claimed] == [early.queue_id]
    # Leased: not due again before the lease ends, due after it.
    assert await queue.claim(WHEN + timedelta(minutes=1), lease, limit=10) == []
    again = await queue.claim(lease + timedelta(hours=1), lease + timedelta(hours=2), limit=10)
    assert [c.message.queue_id for c in again] == [early.queue_id, late.queue_id]
    assert await queue.claim(lease + timedelta(hours=1), lease, limit=0) == []


async def test_record_keeps_each_recipients_outcome(store: MailboxStore) -> None:
    queue = queue_of(store)
    message = outbound(PEER_1, PEER_2)
    await queue.enqueue([message])
    later = WHEN + timedelta(minutes=10)
    await queue.record(
        message.queue_id,
        [
            AttemptResult(PEER_1, RecipientState.DELIVERED, "2.0.0", "smtp; 250 ok", WHEN, "mx"),
            AttemptResult(
                PEER_2,
                RecipientState.QUEUED,
                "4.4.1",
                "smtp; 421 try later",
                WHEN,
                "mx",
                next_attempt=later,
                delay_reported=True,
            ),
        ],
    )
    got = await queue.get(message.queue_id)
    one, two = got.recipients
    assert (one.state, one.status, one.attempts) == (RecipientState.DELIVERED, "2.0.0", 1)
    assert (two.state, two.next_attempt, two.delay_reported) == (RecipientState.QUEUED, later, True)
    assert got.pending == (two,)
    assert await queue.claim(WHEN + timedelta(minutes=9), later, limit=5) == []
    assert len(await queue.claim(later, later + timedelta(minutes=1), limit=5)) == 1
    with pytest.raises(NotFound):
        await queue.record(
            message.queue_id,
            [AttemptResult(ALICE, RecipientState.FAILED, "5.0.0", "x", WHEN)],
        )


async def test_remove_destroys_the_sealed_copy(store: MailboxStore) -> None:
    queue = queue_of(store)
    message = outbound(PEER_1)
    await queue.enqueue([message])
    await queue.remove(message.queue_id)
    with pytest.raises(NotFound):
        await queue.get(message.queue_id)
    assert await queue.list_queued() == []
    await queue.remove(message.queue_id)  # removing twice is harmless


async def test_delivery_and_its_queued_part_commit_together(store: MailboxStore) -> None:
    queue = queue_of(store)
    bob = f.address("bob")
    await store.create_account(f.account(ALICE), [])
    await store.create_account(f.account(bob), [])
    message = outbound(PEER_1)
    delivery = dataclasses.replace(f.delivery(ALICE, [bob]), outbound=(message,))
    await store.deliver(delivery)
    assert [m.message.queue_id for m in await queue.list_queued()] == [message.queue_id]
    assert len(await store.list_messages(bob, "INBOX")) == 1


async def test_a_refused_delivery_queues_nothing(store: MailboxStore) -> None:
    queue = queue_of(store)
    await store.create_account(f.account(ALICE), [])
    nobody = f.address("nobody")
    refused = dataclasses.replace(f.delivery(ALICE, [nobody]), outbound=(outbound(PEER_1),))
    with pytest.raises(UnknownMailbox):
        await store.deliver(refused)
    assert await queue.list_queued() == []


async def test_message_ids_received_in_an_inbox_are_remembered(store: MailboxStore) -> None:
    bob, dan = f.address("bob"), f.address("dan")
    for who in (ALICE, bob, dan):
        await store.create_account(f.account(who), [])
    first = dataclasses.replace(f.delivery(ALICE, [bob]), message_id="<m1@peer>")
    await store.deliver(first)
    # The sender's Sent copy is not an INBOX delivery: only bob received <m1@peer>.
    assert await store.delivered_before("<m1@peer>", [ALICE, bob, dan]) == {bob}
    assert await store.delivered_before("<other@peer>", [bob]) == set()
    again = dataclasses.replace(f.delivery(ALICE, [bob]), message_id="<m1@peer>")
    with pytest.raises(InvalidMessage):
        await store.deliver(again)
    assert len(await store.list_messages(bob, "INBOX")) == 1


async def test_a_finished_message_not_yet_removed_is_claimed_again(store: MailboxStore) -> None:
    queue = queue_of(store)
    done, waiting = outbound(PEER_1), outbound(PEER_2, created=WHEN + timedelta(hours=1))
    await queue.enqueue([done, waiting])
    await queue.record(
        done.queue_id,
        [AttemptResult(PEER_1, RecipientState.DELIVERED, "2.0.0", "smtp; 250", WHEN)],
    )
    # The relay died before removing it: whatever the time, it is handed out to be finished.
    claimed = await queue.claim(WHEN, WHEN + timedelta(minutes=5), limit=10)
    assert [c.message.queue_id for c in claimed] == [done.queue_id]
    assert claimed[0].pending == ()
    await queue.remove(done.queue_id)
    assert await queue.claim(WHEN, WHEN, limit=10) == []

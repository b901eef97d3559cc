"""The MailboxStore contract, run against every implementation (memory, SQLite, PostgreSQL).

What passes here is what ``messaging.ports.MailboxStore`` means; a new implementation
joins the ``store`` fixture and must pass all of it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest

from messaging.errors import (
    AccountExists,
    InvalidMessage,
    MailboxClosed,
    NotFound,
    Unavailable,
    UnknownMailbox,
)
from messaging.ports import MailboxStore
from messaging.types import (
    Address,
    BlobRef,
    CredentialKind,
    FolderRole,
    MailboxKind,
    MessageKind,
    Placement,
    Provenance,
    TraceEntry,
)
from tests.mailbox_store import factories as f
from tests.mailbox_store.conftest import StepClock

ALICE = f.address("alice")
BOB = f.address("bob")
CAROL = f.address("carol", "patient.pli.test")
NOBODY = f.address("nobody")


async def make(store: MailboxStore, *who: Address) -> None:
    for one in who:
        await store.create_account(f.account(one), [f.credential(f"pw-{one.local}")])


# -- accounts -----------------------------------------------------------------------------


async def test_a_created_account_reads_back_unchanged(store: MailboxStore) -> None:
    record = f.account(ALICE)
    await store.create_account(record, [f.credential("pw")])

    assert await store.get_account(ALICE) == record
    got = await store.get_account(ALICE)
    assert got is not None and got.created_at.tzinfo is not None


async def test_an_unknown_address_has_no_account(store: MailboxStore) -> None:
    assert await store.get_account(NOBODY) is None


async def test_addresses_are_compared_in_lower_case(store: MailboxStore) -> None:
    await make(store, ALICE)

    shouting = Address("ALICE", "MEDECIN.PLI.TEST")
    assert await store.get_account(shouting) == f.account(ALICE)
    with pytest.raises(AccountExists):
        await store.create_account(f.account(shouting), [])


async def test_a_taken_address_cannot_be_created_again(store: MailboxStore) -> None:
    await make(store, ALICE)

    with pytest.raises(AccountExists):
        await store.create_account(f.account(ALICE, MailboxKind.ORG), [f.credential("other")])

    assert (await store.get_account(ALICE)) == f.account(ALICE)
    assert [c.id for c in await store.list_credentials(ALICE)] == ["pw-alice"]


async def test_accounts_are_listed_by_address_and_filtered_by_kind(store: MailboxStore) -> None:
    await store.create_account(f.account(CAROL, MailboxKind.PAT), [])
    await store.create_account(f.account(BOB), [])
    await store.create_account(f.account(ALICE), [])

    everyone = await store.list_accounts()
    assert [a.address for a in everyone] == [ALICE, BOB, CAROL]
    assert [a.address for a in await store.list_accounts(MailboxKind.PAT)] == [CAROL]
    assert [a.address for a in await store.list_accounts(MailboxKind.PER)] == [ALICE, BOB]
    assert await store.list_accounts(MailboxKind.APP) == []


async def test_naive_datetimes_are_refused(store: MailboxStore) -> None:
    naive = dataclasses.replace(f.account(ALICE), created_at=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="naive"):
        await store.create_account(naive, [])
    assert await store.get_account(ALICE) is None


async def test_times_come_back_in_utc(store: MailboxStore) -> None:
    paris = timezone(timedelta(hours=2))
    local = datetime(2026, 6, 1, 14, 0, 0, 123456, tzinfo=paris)
    await store.create_account(dataclasses.replace(f.account(ALICE), created_at=local), [])

    got = await store.get_account(ALICE)
    assert got is not None
    assert got.created_at == local
    assert got.created_at.utcoffset() == timedelta(0)


# -- credentials --------------------------------------------------------------------------


async def test_credentials_are_listed_oldest_first(store: MailboxStore) -> None:
    later = f.WHEN + timedelta(days=1)
    await store.create_account(
        f.account(ALICE), [f.credential("new", created_at=later), f.credential("old")]
    )
    await store.add_credential(
        ALICE, f.credential("app", CredentialKind.APP_PASSWORD, created_at=later, label="phone")
    )

    listed = await store.list_credentials(ALICE)
    assert [c.id for c in listed] == ["old", "new", "app"]
    assert listed[2] == f.credential(
        "app", CredentialKind.APP_PASSWORD, created_at=later, label="phone"
    )


async def test_an_unknown_account_has_no_credentials(store: MailboxStore) -> None:
    assert await store.list_credentials(NOBODY) == []


async def test_a_credential_cannot_be_added_to_an_unknown_account(store: MailboxStore) -> None:
    with pytest.raises(UnknownMailbox):
        await store.add_credential(NOBODY, f.credential("pw"))


async def test_a_credential_id_is_never_reused_in_an_account(store: MailboxStore) -> None:
    await make(store, ALICE)
    await store.revoke_credential(ALICE, "pw-alice")

    with pytest.raises(ValueError, match="already has"):
        await store.add_credential(ALICE, f.credential("pw-alice"))
    assert await store.list_credentials(ALICE) == []


async def test_a_revoked_credential_is_no_longer_listed(store: MailboxStore) -> None:
    await store.create_account(f.account(ALICE), [f.credential("pw"), f.credential("app")])

    await store.revoke_credential(ALICE, "app")

    assert [c.id for c in await store.list_credentials(ALICE)] == ["pw"]
    with pytest.raises(NotFound):
        await store.revoke_credential(ALICE, "app")
    with pytest.raises(NotFound):
        await store.revoke_credential(ALICE, "never-existed")
    with pytest.raises(NotFound):
        await store.revoke_credential(NOBODY, "pw")


async def test_replacing_credentials_is_all_or_nothing(store: MailboxStore) -> None:
    await store.create_account(f.account(ALICE), [f.credential("pw"), f.credential("app")])

    with pytest.raises(NotFound):
        await store.replace_credentials(ALICE, ["pw", "missing"], [f.credential("pw2")])
    assert [c.id for c in await store.list_credentials(ALICE)] == ["pw", "app"]

    later = f.WHEN + timedelta(hours=1)
    await store.replace_credentials(ALICE, ["pw"], [f.credential("pw2", created_at=later)])
    assert [c.id for c in await store.list_credentials(ALICE)] == ["app", "pw2"]

    with pytest.raises(UnknownMailbox):
        await store.replace_credentials(NOBODY, [], [f.credential("x")])


async def test_touching_a_credential_records_its_last_use(store: MailboxStore) -> None:
    await make(store, ALICE)
    used = f.WHEN + timedelta(minutes=5)

    await store.touch_credential(ALICE, "pw-alice", used)

    [listed] = await store.list_credentials(ALICE)
    assert listed.last_used_at == used
    with pytest.raises(NotFound):
        await store.touch_credential(ALICE, "missing", used)
    with pytest.raises(NotFound):
        await store.touch_credential(NOBODY, "pw-alice", used)
    await store.revoke_credential(ALICE, "pw-alice")
    with pytest.raises(NotFound):
        await store.touch_credential(ALICE, "pw-alice", used)


# -- folders ------------------------------------------------------------------------------


async def test_an_account_starts_with_the_default_folders(
    store: MailboxStore, clock: StepClock
) -> None:
    before = clock.current
    await make(store, ALICE)

    folders = await store.list_folders(ALICE)
    assert [(x.name, x.role) for x in folders] == [
        ("INBOX", FolderRole.INBOX),
        ("Sent", FolderRole.SENT),
        ("Drafts", FolderRole.DRAFTS),
        ("Trash", FolderRole.TRASH),
        ("Archive", FolderRole.ARCHIVE),
        ("Junk", FolderRole.JUNK),
    ]
    for folder in folders:
        assert 0 < folder.uidvalidity < 2**32
        assert folder.uidvalidity >= int(before.timestamp())
        assert (folder.uidnext, folder.highestmodseq) == (1, 0)
        assert (folder.messages, folder.unseen) == (0, 0)


async def test_an_unknown_account_has_no_folders(store: MailboxStore) -> None:
    assert await store.list_folders(NOBODY) == []


async def test_uidvalidity_grows_for_folders_created_later(
    store: MailboxStore, clock: StepClock
) -> None:
    await make(store, ALICE)
    clock.current += timedelta(days=1)
    await make(store, BOB)

    [alice_inbox, *_] = await store.list_folders(ALICE)
    [bob_inbox, *_] = await store.list_folders(BOB)
    assert bob_inbox.uidvalidity > alice_inbox.uidvalidity


# -- deliveries ---------------------------------------------------------------------------


async def test_a_delivery_lands_in_each_recipient_inbox_and_the_sender_sent(
    store: MailboxStore,
) -> None:
    await make(store, ALICE, BOB, CAROL)
    sent = f.delivery(ALICE, [BOB, CAROL])

    placed = await store.deliver(sent)

    assert [(p.account, p.folder, p.uid) for p in placed] == [
        (BOB, "INBOX", 1),
        (CAROL, "INBOX", 1),
        (ALICE, "Sent", 1),
    ]
    for who, folder in ((BOB, "INBOX"), (CAROL, "INBOX"), (ALICE, "Sent")):
        stored = await store.get_message(who, folder, 1)
        assert stored.slot == f.slot_for(who, sent.envelope_id)
        record = stored.record
        assert (record.envelope_id, record.thread_id) == (sent.envelope_id, "thread-1")
        assert (record.kind, record.sender, record.provenance) == (
            MessageKind.NOTE,
            ALICE,
            Provenance.E2E,
        )
        assert (record.date, record.plaintext_size, record.blob) == (
            f.WHEN,
            1234,
            sent.blob,
        )
        assert record.internal_date.utcoffset() == timedelta(0)
    assert (await store.get_message(ALICE, "Sent", 1)).record.flags == {f.SEEN}
    assert (await store.get_message(BOB, "INBOX", 1)).record.flags == frozenset()


async def test_uids_and_modseqs_increase_with_each_delivery(store: MailboxStore) -> None:
    await make(store, ALICE, BOB)

    first = await store.deliver(f.delivery(ALICE, [BOB]))
    second = await store.deliver(f.delivery(ALICE, [BOB]))
    third = await store.deliver(f.delivery(ALICE, [BOB]))

    inbox = [p for p in first + second + third if p.account == BOB]
    assert [p.uid for p in inbox] == [1, 2, 3]
    assert [p.modseq for p in inbox] == sorted({p.modseq for p in inbox})
    [folder, *_] = await store.list_folders(BOB)
    assert (folder.uidnext, folder.highestmodseq) == (4, inbox[-1].modseq)
    assert (folder.messages, folder.unseen) == (3, 3)
    sent = next(x for x in await store.list_folders(ALICE) if x.role is FolderRole.SENT)
    assert (sent.messages, sent.unseen) == (3, 0)


async def test_a_sender_writing_to_herself_keeps_one_key_slot(store: MailboxStore) -> None:
    await make(store, ALICE)
    sent = f.delivery(ALICE, [ALICE])

    placed = await store.deliver(sent)

    assert [(p.folder, p.uid) for p in placed] == [("INBOX", 1), ("Sent", 1)]
    found = await store.find_message(ALICE, sent.envelope_id)
    assert (found.record.folder, found.record.uid) == ("INBOX", 1)
    assert found.slot == f.slot_for(ALICE, sent.envelope_id)
    assert (await store.get_message(ALICE, "Sent", 1)).slot == found.slot


async def test_an_unknown_recipient_refuses_the_whole_delivery(store: MailboxStore) -> None:
    await make(store, ALICE, BOB)
    refused = f.delivery(ALICE, [BOB, NOBODY], trace=True)

    with pytest.raises(UnknownMailbox):
        await store.deliver(refused)

    for who in (ALICE, BOB):
        for folder in await store.list_folders(who):
            assert (folder.uidnext, folder.highestmodseq, folder.messages) == (1, 0, 0)
        with pytest.raises(NotFound):
            await store.find_message(who, refused.envelope_id)
    assert await store.list_trace() == []
    # The same envelope can be delivered once the mistake is fixed: nothing was kept.
    fixed = dataclasses.replace(
        refused, placements=tuple(p for p in refused.placements if p.account != NOBODY)
    )
    assert [p.uid for p in await store.deliver(fixed)] == [1, 1]


async def test_a_closed_mailbox_accepts_nothing(store: MailboxStore) -> None:
    await make(store, ALICE)
    await store.create_account(f.account(BOB, closed=True), [])

    with pytest.raises(MailboxClosed):
        await store.deliver(f.delivery(ALICE, [BOB]))
    assert (await store.list_folders(ALICE))[1].messages == 0


async def test_an_envelope_is_stored_once(store: MailboxStore) -> None:
    await make(store, ALICE, BOB)
    sent = f.delivery(ALICE, [BOB], envelope_id="env-1")
    await store.deliver(sent)

    with pytest.raises(InvalidMessage):
        await store.deliver(f.delivery(BOB, [ALICE], envelope_id="env-1"))

    assert [m.uid for m in await store.list_messages(BOB, "INBOX")] == [1]
    assert await store.list_messages(ALICE, "INBOX") == []
    assert await store.list_messages(BOB, "Sent") == []


@pytest.mark.parametrize(
    "change",
    [
        {"placements": ()},
        {"blob": BlobRef("not-a-digest", 3)},
        {"blob": BlobRef("A" * 64, 3)},
        {"plaintext_size": -1},
        {"placements": (Placement(BOB, FolderRole.INBOX, b"slot", frozenset({"two words"})),)},
        {"placements": (Placement(BOB, FolderRole.INBOX, b"slot", frozenset({""})),)},
    ],
    ids=["no-placement", "bad-digest", "upper-digest", "negative-size", "space-flag", "empty"],
)
async def test_an_invalid_delivery_is_refused_before_anything_is_written(
    store: MailboxStore, change: dict[str, object]
) -> None:
    await make(store, ALICE, BOB)

    with pytest.raises(InvalidMessage):
        await store.deliver(dataclasses.replace(f.delivery(ALICE, [BOB]), **change))  # type: ignore[arg-type]

    assert await store.list_messages(BOB, "INBOX") == []


async def test_deliveries_record_their_trace(store: MailboxStore) -> None:
    await make(store, ALICE, BOB, CAROL)
    sent = f.delivery(ALICE, [BOB, CAROL], trace=True)

    await store.deliver(sent)

    assert {(t.actor, t.subject) for t in await store.list_trace()} == {
        (str(ALICE), str(BOB)),
        (str(ALICE), str(CAROL)),
    }
    [entry] = await store.list_trace(subject=str(BOB))
    assert entry.details == {"envelope": sent.envelope_id}


async def test_concurrent_deliveries_all_land_with_unique_increasing_uids(
    store: MailboxStore,
) -> None:
    await make(store, ALICE, BOB, CAROL)
    sent = [f.delivery(ALICE if i % 2 else CAROL, [BOB]) for i in range(50)]

    results = await asyncio.gather(*(store.deliver(d) for d in sent))

    inbox_uids = [p.uid for placed in results for p in placed if p.account == BOB]
    assert sorted(inbox_uids) == list(range(1, 51))
    listed = await store.list_messages(BOB, "INBOX")
    assert [m.uid for m in listed] == list(range(1, 51))
    modseqs = [m.modseq for m in listed]
    assert modseqs == sorted(set(modseqs))
    assert {m.envelope_id for m in listed} == {d.envelope_id for d in sent}
    for placed, delivery in zip(results, sent, strict=True):
        uid = next(p.uid for p in placed if p.account == BOB)
        assert (await store.get_message(BOB, "INBOX", uid)).record.envelope_id == (
            delivery.envelope_id
        )
    sent_folders = {
        who: next(x for x in await store.list_folders(who) if x.role is FolderRole.SENT)
        for who in (ALICE, CAROL)
    }
    assert sent_folders[ALICE].uidnext == 26
    assert sent_folders[CAROL].uidnext == 26


# -- reading messages ---------------------------------------------------------------------


async def test_messages_are_listed_in_uid_order(store: MailboxStore) -> None:
    await make(store, ALICE, BOB)
    sent = [f.delivery(ALICE, [BOB], thread_id=f"t{i}") for i in range(3)]
    for one in sent:
        await store.deliver(one)

    listed = await store.list_messages(BOB, "INBOX")

    assert [(m.uid, m.thread_id) for m in listed] == [(1, "t0"), (2, "t1"), (3, "t2")]
    assert [m.envelope_id for m in listed] == [d.envelope_id for d in sent]
    assert all(m.folder == "INBOX" for m in listed)
    assert await store.list_messages(BOB, "Drafts") == []


async def test_inbox_is_named_in_any_case(store: MailboxStore) -> None:
    await make(store, ALICE, BOB)
    await store.deliver(f.delivery(ALICE, [BOB]))

    assert [m.uid for m in await store.list_messages(BOB, "inbox")] == [1]
    assert (await store.get_message(BOB, "Inbox", 1)).record.folder == "INBOX"
    with pytest.raises(NotFound):
        await store.list_messages(ALICE, "sent")  # only INBOX is case-insensitive


async def test_unknown_folders_and_messages_are_not_found(store: MailboxStore) -> None:
    await make(store, ALICE, BOB)
    sent = f.delivery(ALICE, [BOB])
    await store.deliver(sent)

    with pytest.raises(NotFound):
        await store.list_messages(BOB, "Nope")
    with pytest.raises(NotFound):
        await store.list_messages(NOBODY, "INBOX")
    with pytest.raises(NotFound):
        await store.get_message(BOB, "INBOX", 2)
    with pytest.raises(NotFound):
        await store.get_message(BOB, "Nope", 1)
    with pytest.raises(NotFound):
        await store.get_message(NOBODY, "INBOX", 1)
    with pytest.raises(NotFound):
        await store.find_message(BOB, "no-such-envelope")


async def test_an_account_finds_only_its_own_copy(store: MailboxStore) -> None:
    await make(store, ALICE, BOB, CAROL)
    sent = f.delivery(ALICE, [BOB])
    await store.deliver(sent)

    found = await store.find_message(BOB, sent.envelope_id)
    assert (found.record.folder, found.record.uid) == ("INBOX", 1)
    assert found.slot == f.slot_for(BOB, sent.envelope_id)
    mine = await store.find_message(ALICE, sent.envelope_id)
    assert (mine.record.folder, mine.slot) == ("Sent", f.slot_for(ALICE, sent.envelope_id))
    with pytest.raises(NotFound):
        await store.find_message(CAROL, sent.envelope_id)


# -- flags --------------------------------------------------------------------------------


async def test_setting_flags_replaces_them_and_bumps_modseq(store: MailboxStore) -> None:
    await make(store, ALICE, BOB)
    [placed, _] = await store.deliver(f.delivery(ALICE, [BOB]))
    await store.deliver(f.delivery(ALICE, [BOB]))
    [before, *_] = await store.list_folders(BOB)

    record = await store.set_flags(BOB, "INBOX", 1, frozenset({f.SEEN, "$Label1"}))

    assert record.flags == {f.SEEN, "$Label1"}
    assert record.uid == 1
    assert record.modseq > placed.modseq
    assert record.modseq == before.highestmodseq + 1
    [after, *_] = await store.list_folders(BOB)
    assert after.highestmodseq == record.modseq
    assert (after.messages, after.unseen) == (2, 1)
    assert (await store.get_message(BOB, "INBOX", 1)).record == record

    again = await store.set_flags(BOB, "INBOX", 1, frozenset())
    assert again.flags == frozenset()
    assert again.modseq == record.modseq + 1
    assert (await store.list_folders(BOB))[0].unseen == 2


async def test_seen_is_recognised_in_any_case(store: MailboxStore) -> None:
    await make(store, ALICE, BOB)
    await store.deliver(f.delivery(ALICE, [BOB]))

    await store.set_flags(BOB, "INBOX", 1, frozenset({"\\SEEN"}))

    assert (await store.list_folders(BOB))[0].unseen == 0


async def test_flags_of_an_unknown_message_cannot_be_set(store: MailboxStore) -> None:
    await make(store, ALICE, BOB)

    with pytest.raises(NotFound):
        await store.set_flags(BOB, "INBOX", 1, frozenset({f.SEEN}))
    with pytest.raises(NotFound):
        await store.set_flags(NOBODY, "INBOX", 1, frozenset({f.SEEN}))
    assert (await store.list_folders(BOB))[0].highestmodseq == 0


async def test_invalid_flags_are_refused(store: MailboxStore) -> None:
    await make(store, ALICE, BOB)
    await store.deliver(f.delivery(ALICE, [BOB]))

    with pytest.raises(InvalidMessage):
        await store.set_flags(BOB, "INBOX", 1, frozenset({"a b"}))
    assert (await store.get_message(BOB, "INBOX", 1)).record.flags == frozenset()


# -- trace --------------------------------------------------------------------------------


async def test_trace_is_listed_newest_first(store: MailboxStore) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for minute, subject in ((1, "a"), (3, "b"), (2, "a"), (3, "a")):
        await store.record_trace(
            TraceEntry("admin", "read", subject, base + timedelta(minutes=minute), {"n": "1"})
        )

    listed = await store.list_trace()
    assert [(t.subject, t.at.minute) for t in listed] == [("a", 3), ("b", 3), ("a", 2), ("a", 1)]
    assert listed[0].details == {"n": "1"}
    assert listed[0].at.utcoffset() == timedelta(0)
    assert [t.at.minute for t in await store.list_trace(subject="a")] == [3, 2, 1]
    assert [t.at.minute for t in await store.list_trace(subject="a", limit=2)] == [3, 2]
    assert await store.list_trace(subject="nobody") == []


async def test_trace_details_are_copied_not_shared(store: MailboxStore) -> None:
    details = {"k": "v"}
    await store.record_trace(TraceEntry("me", "act", "s", f.WHEN, details))
    details["k"] = "changed"

    [entry] = await store.list_trace()
    assert entry.details == {"k": "v"}


# -- lifecycle ----------------------------------------------------------------------------


async def test_a_closed_store_is_unavailable(store: MailboxStore) -> None:
    await make(store, ALICE, BOB)
    await store.close()

    with pytest.raises(Unavailable):
        await store.deliver(f.delivery(ALICE, [BOB]))
    with pytest.raises(Unavailable):
        await store.get_account(ALICE)
    await store.close()  # closing twice is harmless

"""The IMAP half of the MailboxStore contract, on every implementation (memory, SQLite,
PostgreSQL): folders, subscriptions, flags, expunges, copies, moves, changes (RFC 3501,
RFC 4315, RFC 6851, RFC 7162)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from messaging.errors import AlreadyExists, InvalidMessage, NotFound, RuleViolation
from messaging.ports import MailboxStore
from messaging.types import Address, FlagMode, FolderRole, Placement
from tests.mailbox_store import factories as f

ALICE = f.address("alice")
BOB = f.address("bob")
SEEN, DELETED, FLAGGED = "\\Seen", "\\Deleted", "\\Flagged"


async def make(store: MailboxStore, *who: Address) -> None:
    for one in who:
        await store.create_account(f.account(one), [f.credential(f"pw-{one.local}")])


async def inbox_messages(store: MailboxStore, count: int, to: Address = ALICE) -> list[int]:
    """Deliver ``count`` messages to ``to``'s INBOX; their UIDs."""
    uids = []
    for _ in range(count):
        placed = await store.deliver(f.delivery(BOB, [to], sent_copy=False))
        uids.append(placed[0].uid)
    return uids


@pytest.fixture
async def mailbox(store: MailboxStore) -> MailboxStore:
    await make(store, ALICE, BOB)
    return store


# -- folders ------------------------------------------------------------------------------


async def test_folder_status_counts_messages_and_unseen(mailbox: MailboxStore) -> None:
    await inbox_messages(mailbox, 3)
    await mailbox.update_flags(ALICE, "INBOX", [2], FlagMode.ADD, frozenset({SEEN}))

    status = await mailbox.folder_status(ALICE, "inbox")

    assert (status.name, status.role, status.messages, status.unseen) == (
        "INBOX",
        FolderRole.INBOX,
        3,
        2,
    )
    assert status.uidnext == 4
    assert status.highestmodseq == 4  # three appends, one flag change
    assert status.subscribed
    assert status == next(f for f in await mailbox.list_folders(ALICE) if f.name == "INBOX")
    with pytest.raises(NotFound):
        await mailbox.folder_status(ALICE, "Nowhere")
    with pytest.raises(NotFound):
        await mailbox.folder_status(f.address("nobody"), "INBOX")


async def test_a_created_folder_is_empty_listed_last_and_not_subscribed(
    mailbox: MailboxStore,
) -> None:
    defaults = await mailbox.list_folders(ALICE)

    created = await mailbox.create_folder(ALICE, "Projets/2026 été")

    assert (created.name, created.role, created.messages, created.uidnext) == (
        "Projets/2026 été",
        None,
        0,
        1,
    )
    assert created.highestmodseq == 0 and not created.subscribed
    assert created.uidvalidity > max(folder.uidvalidity for folder in defaults)
    assert [folder.name for folder in await mailbox.list_folders(ALICE)] == [
        *(folder.name for folder in defaults),
        "Projets/2026 été",
    ]


@pytest.mark.parametrize("name", ["Sent", "INBOX", "inbox", "Inbox"])
async def test_a_taken_name_cannot_be_created(mailbox: MailboxStore, name: str) -> None:
    with pytest.raises(AlreadyExists):
        await mailbox.create_folder(ALICE, name)


@pytest.mark.parametrize("name", ["", "/a", "a/", "a//b", "a*", "50%", "tab\there", "x" * 256])
async def test_invalid_folder_names_are_refused(mailbox: MailboxStore, name: str) -> None:
    before = await mailbox.list_folders(ALICE)

    with pytest.raises(InvalidMessage):
        await mailbox.create_folder(ALICE, name)
    with pytest.raises(InvalidMessage):
        await mailbox.rename_folder(ALICE, "Archive", name)

    assert await mailbox.list_folders(ALICE) == before


async def test_a_folder_recreated_under_a_deleted_name_gets_a_greater_uidvalidity(
    mailbox: MailboxStore,
) -> None:
    # The test clock moves by milliseconds: all of this happens within one second.
    first = await mailbox.create_folder(ALICE, "Dossiers")
    await mailbox.deliver(
        dataclasses.replace(
            f.delivery(BOB, [ALICE], sent_copy=False),
            placements=(Placement(ALICE, "Dossiers", b"slot"),),
        )
    )
    await mailbox.delete_folder(ALICE, "Dossiers")

    second = await mailbox.create_folder(ALICE, "Dossiers")

    assert second.uidvalidity > first.uidvalidity
    assert (second.uidnext, second.messages) == (1, 0)
    assert (await mailbox.changes_since(ALICE, "Dossiers", 0)).vanished == []


async def test_role_folders_and_the_inbox_cannot_be_deleted(mailbox: MailboxStore) -> None:
    for name in ("INBOX", "Sent", "Drafts", "Trash", "Archive", "Junk"):
        with pytest.raises(RuleViolation) as refused:
            await mailbox.delete_folder(ALICE, name)
        assert refused.value.code == "folder-role"
    assert len(await mailbox.list_folders(ALICE)) == 6
    with pytest.raises(NotFound):
        await mailbox.delete_folder(ALICE, "Nowhere")


async def test_deleting_a_folder_removes_its_messages_but_not_its_children(
    mailbox: MailboxStore,
) -> None:
    await mailbox.create_folder(ALICE, "Cas")
    await mailbox.create_folder(ALICE, "Cas/Suivi")
    [uid] = await inbox_messages(mailbox, 1)
    await mailbox.copy_messages(ALICE, "INBOX", [uid], "Cas")

    await mailbox.delete_folder(ALICE, "Cas")

    names = [folder.name for folder in await mailbox.list_folders(ALICE)]
    assert "Cas" not in names and "Cas/Suivi" in names
    assert len(await mailbox.list_messages(ALICE, "INBOX")) == 1  # the original stays
    stored = await mailbox.get_message(ALICE, "INBOX", uid)
    assert stored.slot  # the other copy still opens


async def test_renaming_moves_the_children_and_keeps_uidvalidity_and_messages(
    mailbox: MailboxStore,
) -> None:
    parent = await mailbox.create_folder(ALICE, "Projets")
    child = await mailbox.create_folder(ALICE, "Projets/2026")
    other = await mailbox.create_folder(ALICE, "Projets2026")  # not a child: a prefix only
    [uid] = await inbox_messages(mailbox, 1)
    [(_, copied)] = await mailbox.copy_messages(ALICE, "INBOX", [uid], "Projets/2026")
    await mailbox.set_subscribed(ALICE, "Projets/2026", True)

    await mailbox.rename_folder(ALICE, "Projets", "Archives/Projets")

    folders = {folder.name: folder for folder in await mailbox.list_folders(ALICE)}
    assert "Projets" not in folders and "Projets/2026" not in folders
    assert folders["Archives/Projets"].uidvalidity == parent.uidvalidity
    assert folders["Archives/Projets/2026"].uidvalidity == child.uidvalidity
    assert folders["Projets2026"].uidvalidity == other.uidvalidity
    [moved] = await mailbox.list_messages(ALICE, "Archives/Projets/2026")
    assert moved.uid == copied and moved.folder == "Archives/Projets/2026"
    assert folders["Archives/Projets/2026"].subscribed
    assert "Projets/2026" not in await mailbox.list_subscriptions(ALICE)


async def test_renaming_refuses_clashes_unknown_names_and_own_children(
    mailbox: MailboxStore,
) -> None:
    await mailbox.create_folder(ALICE, "A")
    await mailbox.create_folder(ALICE, "A/B")
    await mailbox.create_folder(ALICE, "C")
    await mailbox.create_folder(ALICE, "C/B")
    before = await mailbox.list_folders(ALICE)

    with pytest.raises(AlreadyExists):
        await mailbox.rename_folder(ALICE, "A", "C")
    with pytest.raises(AlreadyExists):
        await mailbox.rename_folder(ALICE, "A/B", "Sent")
    with pytest.raises(NotFound):
        await mailbox.rename_folder(ALICE, "Z", "Y")
    with pytest.raises(RuleViolation):
        await mailbox.rename_folder(ALICE, "A", "A/B/C")

    assert await mailbox.list_folders(ALICE) == before


async def test_renaming_inbox_moves_its_messages_and_leaves_it_empty(
    mailbox: MailboxStore,
) -> None:
    uids = await inbox_messages(mailbox, 3)
    await mailbox.update_flags(ALICE, "INBOX", [uids[0]], FlagMode.ADD, frozenset({FLAGGED}))
    inbox = await mailbox.folder_status(ALICE, "INBOX")

    await mailbox.rename_folder(ALICE, "INBOX", "Old mail")

    after = await mailbox.folder_status(ALICE, "INBOX")
    assert (after.messages, after.uidvalidity) == (0, inbox.uidvalidity)
    assert after.uidnext == inbox.uidnext  # UIDs are never given twice
    assert (await mailbox.changes_since(ALICE, "INBOX", inbox.highestmodseq)).vanished == uids
    moved = await mailbox.list_messages(ALICE, "Old mail")
    assert [m.uid for m in moved] == [1, 2, 3]
    assert FLAGGED in moved[0].flags
    [uid] = await inbox_messages(mailbox, 1)
    assert uid == inbox.uidnext


# -- subscriptions ------------------------------------------------------------------------


async def test_subscriptions_name_folders_and_may_outlive_them(mailbox: MailboxStore) -> None:
    assert await mailbox.list_subscriptions(ALICE) == sorted(
        ["INBOX", "Sent", "Drafts", "Trash", "Archive", "Junk"]
    )
    await mailbox.create_folder(ALICE, "Suivi")
    await mailbox.set_subscribed(ALICE, "Suivi", True)
    await mailbox.set_subscribed(ALICE, "Suivi", True)  # idempotent
    await mailbox.set_subscribed(ALICE, "Junk", False)

    subscribed = {f.name: f.subscribed for f in await mailbox.list_folders(ALICE)}
    assert subscribed["Suivi"] and not subscribed["Junk"] and subscribed["INBOX"]

    await mailbox.delete_folder(ALICE, "Suivi")
    assert "Suivi" in await mailbox.list_subscriptions(ALICE)  # RFC 3501 §6.3.6
    await mailbox.set_subscribed(ALICE, "Suivi", False)
    assert "Suivi" not in await mailbox.list_subscriptions(ALICE)
    with pytest.raises(NotFound):
        await mailbox.set_subscribed(ALICE, "Nowhere", True)


# -- fetch_records ------------------------------------------------------------------------


async def test_fetch_records_returns_existing_uids_in_order(mailbox: MailboxStore) -> None:
    uids = await inbox_messages(mailbox, 5)
    await mailbox.update_flags(ALICE, "INBOX", [uids[1]], FlagMode.ADD, frozenset({DELETED}))
    await mailbox.expunge(ALICE, "INBOX")

    got = await mailbox.fetch_records(ALICE, "INBOX", [5, 1, 2, 99, 1, 0, -3])

    assert [record.uid for record in got] == [1, 5]
    assert got == [m for m in await mailbox.list_messages(ALICE, "INBOX") if m.uid in {1, 5}]
    assert await mailbox.fetch_records(ALICE, "INBOX", []) == []
    with pytest.raises(NotFound):
        await mailbox.fetch_records(ALICE, "Nowhere", [1])


async def test_fetch_records_with_a_long_sparse_uid_list(mailbox: MailboxStore) -> None:
    await inbox_messages(mailbox, 30)
    wanted = list(range(1, 2_000, 3))  # 667 UIDs, most of them beyond UIDNEXT

    got = await mailbox.fetch_records(ALICE, "INBOX", wanted)

    assert [record.uid for record in got] == [uid for uid in wanted if uid <= 30]


# -- flags --------------------------------------------------------------------------------


async def test_store_adds_removes_and_replaces_flags_with_one_new_modseq(
    mailbox: MailboxStore,
) -> None:
    await inbox_messages(mailbox, 3)
    base = (await mailbox.folder_status(ALICE, "INBOX")).highestmodseq

    added = await mailbox.update_flags(
        ALICE, "INBOX", [1, 2, 3, 42], FlagMode.ADD, frozenset({"\\seen", "$Urgent"})
    )
    assert [r.uid for r in added.updated] == [1, 2, 3] and added.failed == []
    assert all(r.flags == {SEEN, "$Urgent"} and r.modseq == base + 1 for r in added.updated)

    removed = await mailbox.update_flags(
        ALICE, "INBOX", [2], FlagMode.REMOVE, frozenset({"$URGENT"})
    )
    assert removed.updated[0].flags == {SEEN} and removed.updated[0].modseq == base + 2

    replaced = await mailbox.update_flags(
        ALICE, "INBOX", [3], FlagMode.REPLACE, frozenset({FLAGGED, "\\Recent"})
    )
    assert replaced.updated[0].flags == {FLAGGED}  # \Recent is never stored

    status = await mailbox.folder_status(ALICE, "INBOX")
    assert status.highestmodseq == base + 3 and status.unseen == 1
    assert await mailbox.fetch_records(ALICE, "INBOX", [1, 2, 3]) == [
        added.updated[0],
        removed.updated[0],
        replaced.updated[0],
    ]


async def test_a_store_that_changes_nothing_takes_no_modseq(mailbox: MailboxStore) -> None:
    await inbox_messages(mailbox, 1)
    first = await mailbox.update_flags(ALICE, "INBOX", [1], FlagMode.ADD, frozenset({SEEN}))
    before = await mailbox.folder_status(ALICE, "INBOX")

    again = await mailbox.update_flags(ALICE, "INBOX", [1], FlagMode.ADD, frozenset({"\\SEEN"}))

    assert again.updated == first.updated
    assert await mailbox.folder_status(ALICE, "INBOX") == before


async def test_unchangedsince_refuses_messages_changed_after_it(mailbox: MailboxStore) -> None:
    await inbox_messages(mailbox, 3)
    seen = await mailbox.update_flags(ALICE, "INBOX", [2], FlagMode.ADD, frozenset({SEEN}))
    known = seen.updated[0].modseq - 1  # what a client knew before that change

    result = await mailbox.update_flags(
        ALICE, "INBOX", [1, 2, 3], FlagMode.ADD, frozenset({FLAGGED}), unchanged_since=known
    )

    assert result.failed == [2]  # RFC 7162 [MODIFIED 2]
    assert [r.uid for r in result.updated] == [1, 3]
    [two] = await mailbox.fetch_records(ALICE, "INBOX", [2])
    assert two.flags == {SEEN}
    nothing = await mailbox.update_flags(
        ALICE, "INBOX", [1], FlagMode.ADD, frozenset({"$x"}), unchanged_since=0
    )
    assert nothing.failed == [1] and nothing.updated == []


async def test_invalid_flags_change_nothing(mailbox: MailboxStore) -> None:
    await inbox_messages(mailbox, 1)
    before = await mailbox.folder_status(ALICE, "INBOX")

    with pytest.raises(InvalidMessage):
        await mailbox.update_flags(ALICE, "INBOX", [1], FlagMode.ADD, frozenset({"two words"}))

    assert await mailbox.folder_status(ALICE, "INBOX") == before


# -- expunge ------------------------------------------------------------------------------


async def test_expunge_removes_deleted_messages_and_leaves_tombstones(
    mailbox: MailboxStore,
) -> None:
    await inbox_messages(mailbox, 5)
    await mailbox.update_flags(ALICE, "INBOX", [2, 4, 5], FlagMode.ADD, frozenset({"\\deleted"}))
    before = await mailbox.folder_status(ALICE, "INBOX")

    assert await mailbox.expunge(ALICE, "INBOX", [4, 5, 77]) == [4, 5]  # UID EXPUNGE
    assert await mailbox.expunge(ALICE, "INBOX") == [2]
    assert await mailbox.expunge(ALICE, "INBOX") == []

    after = await mailbox.folder_status(ALICE, "INBOX")
    assert after.messages == 2 and after.highestmodseq == before.highestmodseq + 2
    changes = await mailbox.changes_since(ALICE, "INBOX", before.highestmodseq)
    assert changes.vanished == [2, 4, 5] and changes.records == []
    assert (await mailbox.changes_since(ALICE, "INBOX", after.highestmodseq - 1)).vanished == [2]
    with pytest.raises(NotFound):
        await mailbox.get_message(ALICE, "INBOX", 4)
    [uid] = await inbox_messages(mailbox, 1)
    assert uid == 6  # never reused


async def test_expunging_the_last_copy_forgets_the_key_slot(mailbox: MailboxStore) -> None:
    delivery = f.delivery(BOB, [ALICE], sent_copy=False)
    [placed] = await mailbox.deliver(delivery)
    await mailbox.copy_messages(ALICE, "INBOX", [placed.uid], "Archive")
    await mailbox.update_flags(ALICE, "INBOX", [placed.uid], FlagMode.ADD, frozenset({DELETED}))
    await mailbox.expunge(ALICE, "INBOX")

    assert (await mailbox.find_message(ALICE, delivery.envelope_id)).record.folder == "Archive"
    await mailbox.update_flags(ALICE, "Archive", [1], FlagMode.ADD, frozenset({DELETED}))
    await mailbox.expunge(ALICE, "Archive")
    with pytest.raises(NotFound):
        await mailbox.find_message(ALICE, delivery.envelope_id)


# -- copy and move ------------------------------------------------------------------------


async def test_copy_keeps_envelope_slot_flags_and_internal_date(mailbox: MailboxStore) -> None:
    await inbox_messages(mailbox, 3)
    await mailbox.update_flags(ALICE, "INBOX", [3], FlagMode.ADD, frozenset({SEEN, "$Label"}))
    await mailbox.create_folder(ALICE, "Cas")

    pairs = await mailbox.copy_messages(ALICE, "INBOX", [3, 1, 9], "Cas")

    assert pairs == [(1, 1), (3, 2)]
    for source, target in pairs:
        original = await mailbox.get_message(ALICE, "INBOX", source)
        copy = await mailbox.get_message(ALICE, "Cas", target)
        assert copy.slot == original.slot
        assert copy.record.envelope_id == original.record.envelope_id
        assert copy.record.flags == original.record.flags
        assert copy.record.internal_date == original.record.internal_date
    assert len(await mailbox.list_messages(ALICE, "INBOX")) == 3
    cas = await mailbox.folder_status(ALICE, "Cas")
    assert (cas.uidnext, cas.messages, cas.unseen) == (3, 2, 1)
    assert await mailbox.copy_messages(ALICE, "INBOX", [42], "Cas") == []
    with pytest.raises(NotFound):
        await mailbox.copy_messages(ALICE, "INBOX", [1], "Nowhere")  # NO [TRYCREATE]


async def test_move_is_copy_and_expunge_in_one_step(mailbox: MailboxStore) -> None:
    await inbox_messages(mailbox, 4)
    inbox = await mailbox.folder_status(ALICE, "INBOX")
    await mailbox.copy_messages(ALICE, "INBOX", [1], "Archive")  # Archive UID 1 taken

    pairs = await mailbox.move_messages(ALICE, "INBOX", [2, 4], "Archive")

    assert pairs == [(2, 2), (4, 3)]
    assert [m.uid for m in await mailbox.list_messages(ALICE, "INBOX")] == [1, 3]
    changes = await mailbox.changes_since(ALICE, "INBOX", inbox.highestmodseq)
    assert changes.vanished == [2, 4]
    archived = await mailbox.changes_since(ALICE, "Archive", 0)
    assert [r.uid for r in archived.records] == [1, 2, 3]
    assert (await mailbox.get_message(ALICE, "Archive", 3)).slot


async def test_a_move_to_a_missing_folder_changes_nothing(mailbox: MailboxStore) -> None:
    await inbox_messages(mailbox, 2)
    before = await mailbox.list_messages(ALICE, "INBOX")

    with pytest.raises(NotFound):
        await mailbox.move_messages(ALICE, "INBOX", [1, 2], "Nowhere")

    assert await mailbox.list_messages(ALICE, "INBOX") == before


# -- changes ------------------------------------------------------------------------------


async def test_changes_since_reports_additions_flag_changes_and_vanished(
    mailbox: MailboxStore,
) -> None:
    await inbox_messages(mailbox, 3)
    mark = (await mailbox.folder_status(ALICE, "INBOX")).highestmodseq
    await mailbox.update_flags(ALICE, "INBOX", [1], FlagMode.ADD, frozenset({SEEN, DELETED}))
    await mailbox.update_flags(ALICE, "INBOX", [2], FlagMode.ADD, frozenset({FLAGGED}))
    await mailbox.expunge(ALICE, "INBOX")
    await inbox_messages(mailbox, 1)

    changes = await mailbox.changes_since(ALICE, "INBOX", mark)

    assert [r.uid for r in changes.records] == [2, 4]
    assert changes.vanished == [1]
    status = await mailbox.folder_status(ALICE, "INBOX")
    assert (changes.highestmodseq, changes.uidvalidity) == (
        status.highestmodseq,
        status.uidvalidity,
    )
    assert all(r.modseq > mark for r in changes.records)
    assert (await mailbox.changes_since(ALICE, "INBOX", status.highestmodseq)).records == []


# -- APPEND placements --------------------------------------------------------------------


async def test_a_placement_by_folder_name_keeps_its_internal_date(mailbox: MailboxStore) -> None:
    await mailbox.create_folder(ALICE, "Brouillons/Patients")
    when = datetime(2020, 5, 17, 10, 30, tzinfo=UTC)
    delivery = dataclasses.replace(
        f.delivery(ALICE, [ALICE], sent_copy=False),
        placements=(
            Placement(ALICE, "Brouillons/Patients", b"slot", frozenset({SEEN}), internal_date=when),
        ),
    )

    [placed] = await mailbox.deliver(delivery)

    assert (placed.folder, placed.uid) == ("Brouillons/Patients", 1)
    [record] = await mailbox.list_messages(ALICE, "Brouillons/Patients")
    assert record.internal_date == when and record.flags == {SEEN}
    assert record.modseq == placed.modseq


async def test_a_placement_to_an_unknown_folder_name_commits_nothing(
    mailbox: MailboxStore,
) -> None:
    delivery = dataclasses.replace(
        f.delivery(ALICE, [ALICE], sent_copy=False),
        placements=(Placement(ALICE, "Nowhere", b"slot"),),
    )

    with pytest.raises(NotFound):
        await mailbox.deliver(delivery)

    with pytest.raises(NotFound):
        await mailbox.find_message(ALICE, delivery.envelope_id)
    # "inbox" as a name is the INBOX, not the role of that name.
    named = dataclasses.replace(delivery, placements=(Placement(ALICE, "inbox", b"slot"),))
    [placed] = await mailbox.deliver(named)
    assert placed.folder == "INBOX"


async def test_numbers_beyond_imap_ranges_match_nothing(mailbox: MailboxStore) -> None:
    await inbox_messages(mailbox, 2)

    assert await mailbox.fetch_records(ALICE, "INBOX", [2**32, 2**64, 1]) == [
        (await mailbox.fetch_records(ALICE, "INBOX", [1]))[0]
    ]
    assert (await mailbox.changes_since(ALICE, "INBOX", 2**64)).records == []
    assert len((await mailbox.changes_since(ALICE, "INBOX", -5)).records) == 2
    update = await mailbox.update_flags(
        ALICE, "INBOX", [1, 2**40], FlagMode.ADD, frozenset({SEEN}), unchanged_since=2**70
    )
    assert [r.uid for r in update.updated] == [1] and update.failed == []

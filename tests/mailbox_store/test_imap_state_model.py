"""The SQL store against the in-memory reference: the same random IMAP workload on both
gives the same answers, the same errors and the same final state, and every folder stays
consistent (``invariants.folder_state_problems``) after every step."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from mailbox_store import InMemoryMailboxStore, SqlMailboxStore
from mailbox_store.invariants import folder_state_problems
from messaging.errors import PliError
from messaging.ports import MailboxStore
from messaging.types import FlagMode, Placement
from tests.mailbox_store import factories as f
from tests.mailbox_store.conftest import StepClock

ALICE = f.address("alice")
BOB = f.address("bob")
NAMES = ["INBOX", "Archive", "Trash", "Cas", "Cas/Suivi", "Cas/Suivi/2026", "Dossiers", "inbox"]
FLAGS = ["\\Seen", "\\Deleted", "\\Flagged", "\\Answered", "$Label1", "$label1", "\\Recent"]
STEPS = 150

Op = Callable[[MailboxStore], Awaitable[Any]]


async def outcome(store: MailboxStore, op: Op) -> Any:  # noqa: ANN401
    """What an operation answers: its value, or the class of the domain error it raised."""
    try:
        return await op(store)
    except PliError as error:
        return type(error).__name__


def random_op(rng: random.Random) -> tuple[str, Op]:
    folder, other = rng.choice(NAMES), rng.choice(NAMES)
    uids = rng.sample(range(1, 30), rng.randint(0, 6))
    kind = rng.choices(
        ["deliver", "append", "flags", "expunge", "copy", "move", "create", "rename", "delete"],
        weights=[6, 3, 6, 3, 2, 2, 2, 1, 1],
    )[0]
    if kind == "deliver":
        delivery = f.delivery(BOB, [ALICE], sent_copy=rng.random() < 0.3)
        return kind, lambda s: s.deliver(delivery)
    if kind == "append":
        base = f.delivery(ALICE, [ALICE], sent_copy=False)
        flags = frozenset(rng.sample(FLAGS[:5], rng.randint(0, 2)))
        appended = dataclasses.replace(base, placements=(Placement(ALICE, folder, b"slot", flags),))
        return kind, lambda s: s.deliver(appended)
    if kind == "flags":
        mode = rng.choice(list(FlagMode))
        flags = frozenset(rng.sample(FLAGS, rng.randint(0, 3)))
        since = rng.choice([None, None, rng.randint(0, 30)])
        return kind, lambda s: s.update_flags(
            ALICE, folder, uids, mode, flags, unchanged_since=since
        )
    if kind == "expunge":
        chosen = rng.choice([None, uids])
        return kind, lambda s: s.expunge(ALICE, folder, chosen)
    if kind == "copy":
        return kind, lambda s: s.copy_messages(ALICE, folder, uids, other)
    if kind == "move":
        return kind, lambda s: s.move_messages(ALICE, folder, uids, other)
    if kind == "create":
        return kind, lambda s: s.create_folder(ALICE, folder)
    if kind == "rename":
        return kind, lambda s: s.rename_folder(ALICE, folder, other)
    return kind, lambda s: s.delete_folder(ALICE, folder)


async def state(store: MailboxStore) -> list[Any]:
    """Everything a client could see of Alice's mailbox; checks it on the way."""
    seen: list[Any] = []
    for folder in await store.list_folders(ALICE):
        records = await store.list_messages(ALICE, folder.name)
        changes = await store.changes_since(ALICE, folder.name, 0)
        assert folder_state_problems(folder, records, changes.vanished) == [], folder.name
        assert changes.records == records
        seen.append((folder, records, changes.vanished))
    seen.append(await store.list_subscriptions(ALICE))
    return seen


@pytest.mark.parametrize("seed", [1, 2])
async def test_the_sql_store_behaves_as_the_reference(database_url: str, seed: int) -> None:
    # A clock that stands still: both stores then choose the same UIDVALIDITYs and dates.
    model = InMemoryMailboxStore(clock=StepClock(step=timedelta(0)))
    sql = await SqlMailboxStore.open(database_url, clock=StepClock(step=timedelta(0)))
    try:
        for store in (model, sql):
            for who in (ALICE, BOB):
                await store.create_account(f.account(who), [])
        rng = random.Random(seed)
        kinds = set()
        for step in range(STEPS):
            kind, op = random_op(rng)
            kinds.add(kind)
            expected = await outcome(model, op)
            got = await outcome(sql, op)
            assert got == expected, (step, kind)
            if step % 10 == 9:
                assert await state(sql) == await state(model), step
        assert await state(sql) == await state(model)
        assert kinds >= {"deliver", "flags", "expunge", "copy", "move", "create"}
    finally:
        await model.close()
        await sql.close()


def test_the_consistency_check_is_not_blind() -> None:
    """folder_state_problems reports each kind of damage it is meant to find."""
    from datetime import UTC, datetime

    from messaging.types import BlobRef, FolderRecord, MessageKind, MessageRecord, Provenance

    def record(uid: int, modseq: int) -> MessageRecord:
        when = datetime(2026, 1, 1, tzinfo=UTC)
        return MessageRecord(
            "INBOX", uid, modseq, frozenset(), when, "e", "t", MessageKind.NOTE, BOB,
            Provenance.E2E, when, 1, BlobRef("0" * 64, 1),
        )  # fmt: skip

    status = FolderRecord("INBOX", None, 1, 4, 5, 2, 2)
    assert folder_state_problems(status, [record(1, 1), record(3, 5)], [2]) == []
    assert folder_state_problems(status, [record(3, 1), record(1, 1)], []) != []
    assert folder_state_problems(status, [record(1, 1), record(4, 1)], []) != []
    assert folder_state_problems(status, [record(1, 6), record(2, 1)], []) != []
    assert folder_state_problems(status, [record(1, 1), record(2, 1)], [2]) != []
    assert folder_state_problems(status, [record(1, 1), record(2, 1)], [9]) != []
    assert folder_state_problems(status, [record(1, 1)], []) != []
    assert (
        folder_state_problems(
            dataclasses.replace(status, unseen=0), [record(1, 1), record(2, 1)], []
        )
        != []
    )

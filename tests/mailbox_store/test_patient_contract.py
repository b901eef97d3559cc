"""The PatientStore contract (``store.patients``), on memory, SQLite and PostgreSQL.

What passes here is what :class:`messaging.patient_ports.PatientStore` means, and that
a delivery's patient-side effects are committed with it, or not at all.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from messaging.access_history import Action, verify_chain
from messaging.errors import InvalidMessage, NotFound, UnknownMailbox
from messaging.patient_ports import (
    ConsentRecord,
    ConsentRecordKind,
    HistoryDraft,
    PatientEffects,
    PatientProfile,
    PatientStore,
    SharedSlotRecord,
    ThreadUpdate,
)
from messaging.ports import MailboxStore
from messaging.types import Address, MailboxKind, MessageKind
from tests.mailbox_store import factories as f

DOCTOR = f.address("doctor")
OTHER = f.address("other")
PATIENT = f.address("277076322082910", "patient.pli.test")
SECOND = f.address("180057512345602", "patient.pli.test")
NOBODY = f.address("nobody")
T = f.WHEN


def patients(store: MailboxStore) -> PatientStore:
    side: PatientStore = store.patients  # type: ignore[attr-defined]
    return side


async def world(store: MailboxStore) -> PatientStore:
    await store.create_account(f.account(DOCTOR), [])
    await store.create_account(f.account(OTHER), [])
    await store.create_account(f.account(PATIENT, MailboxKind.PAT), [])
    await store.create_account(f.account(SECOND, MailboxKind.PAT), [])
    return patients(store)


def draft(action: Action = Action.DOCUMENT_SENT, *, at_offset: int = 0, **kw: Any) -> HistoryDraft:
    values: dict[str, Any] = {
        "patient": PATIENT,
        "actor": str(DOCTOR),
        "action": action.value,
        "subject": "env-1",
        "at": T + timedelta(seconds=at_offset),
        "details": {"envelope": "env-1"},
    }
    values.update(kw)
    return HistoryDraft(**values)


# -- profile, blocks, masks -----------------------------------------------------------------


async def test_a_profile_reads_back_and_defaults_when_never_written(store: MailboxStore) -> None:
    side = await world(store)
    assert await side.get_profile(PATIENT) == PatientProfile(PATIENT)
    profile = PatientProfile(
        PATIENT,
        treating_doctor=DOCTOR,
        minor=True,
        contact_email="jeanne@example.org",
        contact_phone="+33612345678",
        lang="en",
    )
    await side.put_profile(profile)
    assert await side.get_profile(PATIENT) == profile
    await side.put_profile(dataclasses.replace(profile, treating_doctor=None, lang="fr"))
    got = await side.get_profile(PATIENT)
    assert got.treating_doctor is None and got.lang == "fr" and got.minor


async def test_a_block_and_its_history_entry_are_written_together(store: MailboxStore) -> None:
    side = await world(store)
    await side.set_block(
        PATIENT,
        DOCTOR,
        True,
        T,
        [draft(Action.BLOCKED, subject=str(DOCTOR), details={"professional": str(DOCTOR)})],
    )
    assert await side.blocks(PATIENT) == {DOCTOR}
    assert await side.blocks(SECOND) == frozenset()
    assert await side.profile_and_blocks(PATIENT) == (PatientProfile(PATIENT), frozenset({DOCTOR}))
    await side.set_block(PATIENT, DOCTOR, False, T, [draft(Action.UNBLOCKED, subject=str(DOCTOR))])
    assert await side.blocks(PATIENT) == frozenset()
    history = await side.history(PATIENT)
    assert [e.action for e in history] == ["blocked", "unblocked"]
    assert verify_chain(history, patient=PATIENT) == []


async def test_a_refused_history_entry_leaves_the_change_unwritten(store: MailboxStore) -> None:
    side = await world(store)
    bad = draft(Action.BLOCKED, details={"subject-line": "Résultats"})  # not a detail key
    with pytest.raises(ValueError, match="content-free"):
        await side.set_block(PATIENT, DOCTOR, True, T, [bad])
    assert await side.blocks(PATIENT) == frozenset()
    assert await side.history(PATIENT) == []


async def test_masking_deletes_the_slots_shared_for_that_document(store: MailboxStore) -> None:
    side = await world(store)
    delivery = f.delivery(DOCTOR, [PATIENT], envelope_id="doc-1", kind=MessageKind.DOCUMENT)
    await store.deliver(delivery)
    slot = SharedSlotRecord(PATIENT, "doc-1", OTHER, "grant-1", b"slot", T, frozenset({"11488-4"}))
    await side.add_shared_slots([slot])
    assert await side.shared_slot("doc-1", OTHER) == slot
    await side.set_mask(PATIENT, "doc-1", [OTHER], True, T)
    assert await side.masks(PATIENT) == {"doc-1": frozenset({OTHER})}
    assert await side.shared_slot("doc-1", OTHER) is None
    await side.set_mask(PATIENT, "doc-1", [OTHER], False, T)
    assert await side.masks(PATIENT) == {}


async def test_shared_slots_are_listed_replaced_and_deleted(store: MailboxStore) -> None:
    side = await world(store)
    for envelope in ("doc-1", "doc-2"):
        await store.deliver(f.delivery(DOCTOR, [PATIENT], envelope_id=envelope))
    first = SharedSlotRecord(PATIENT, "doc-1", OTHER, "g1", b"a", T)
    second = SharedSlotRecord(PATIENT, "doc-2", OTHER, "g1", b"b", T + timedelta(seconds=1))
    await side.add_shared_slots(
        [first, second], [draft(Action.DOCUMENT_SHARED, details={"slots": "2"})]
    )
    await side.add_shared_slots([dataclasses.replace(first, slot=b"a2")])
    listed = await side.shared_slots(PATIENT, OTHER)
    assert [(s.document_id, s.slot) for s in listed] == [("doc-1", b"a2"), ("doc-2", b"b")]
    assert await side.shared_slots(PATIENT, DOCTOR) == []
    assert await side.delete_shared_slots([("doc-1", OTHER), ("doc-9", OTHER)]) == 1
    assert [s.document_id for s in await side.shared_slots(PATIENT)] == ["doc-2"]


# -- deliveries carry their patient-side effects ---------------------------------------------


def effects(envelope: str, *, closes: bool = False, **kw: Any) -> PatientEffects:
    values: dict[str, Any] = {
        "threads": (
            ThreadUpdate(PATIENT, "thread-1", DOCTOR, DOCTOR, T, closes=closes, message_key="mk1"),
        ),
        "history": (draft(subject=envelope, details={"envelope": envelope}),),
    }
    values.update(kw)
    return PatientEffects(**values)


async def test_a_delivery_commits_its_threads_and_history(store: MailboxStore) -> None:
    side = await world(store)
    delivery = dataclasses.replace(f.delivery(DOCTOR, [PATIENT]), patient=effects("e1"))
    await store.deliver(delivery)
    [thread] = await side.threads(PATIENT)
    assert (thread.thread_id, thread.professional, thread.opened_by) == ("thread-1", DOCTOR, DOCTOR)
    assert thread.closed_at is None
    assert await side.thread_of(PATIENT, ["unknown", "mk1"]) == "thread-1"
    assert await side.thread_of(SECOND, ["mk1"]) is None
    # A later message in the thread closes it, and never re-opens or re-dates it.
    later = T + timedelta(hours=1)
    closing = ThreadUpdate(PATIENT, "thread-1", PATIENT, PATIENT, later, closes=True)
    closing = dataclasses.replace(closing, professional=DOCTOR, opened_by=DOCTOR)
    await store.deliver(
        dataclasses.replace(
            f.delivery(DOCTOR, [PATIENT]),
            patient=PatientEffects(threads=(closing,), history=(draft(at_offset=3600),)),
        )
    )
    [thread] = await side.threads(PATIENT)
    assert thread.opened_at == T and thread.closed_at == later
    history = await side.history(PATIENT)
    assert [e.seq for e in history] == [0, 1]
    assert verify_chain(history, patient=PATIENT) == []


async def test_a_refused_delivery_writes_no_patient_side_effect(store: MailboxStore) -> None:
    side = await world(store)
    refused = dataclasses.replace(f.delivery(DOCTOR, [PATIENT, NOBODY]), patient=effects("e1"))
    with pytest.raises(UnknownMailbox):
        await store.deliver(refused)
    assert await side.threads(PATIENT) == []
    assert await side.history(PATIENT) == []


async def test_a_consent_recorded_twice_refuses_the_second_delivery_whole(
    store: MailboxStore,
) -> None:
    side = await world(store)
    record = ConsentRecord(PATIENT, "req-1", ConsentRecordKind.REQUEST, DOCTOR, b'{"a":1}', T)
    first = effects("e1", consents=(record,))
    await store.deliver(dataclasses.replace(f.delivery(DOCTOR, [PATIENT]), patient=first))
    again = dataclasses.replace(
        f.delivery(DOCTOR, [PATIENT]), patient=effects("e2", consents=(record,))
    )
    with pytest.raises(InvalidMessage):
        await store.deliver(again)
    assert await side.consent_records(PATIENT) == [record]
    assert [e.subject for e in await side.history(PATIENT)] == ["e1"]
    assert len(await store.list_messages(PATIENT, "INBOX")) == 1


async def test_concurrent_deliveries_never_fork_a_patient_history(store: MailboxStore) -> None:
    side = await world(store)
    deliveries = [
        dataclasses.replace(
            f.delivery(DOCTOR, [PATIENT]),
            patient=PatientEffects(history=(draft(subject=f"e{i}", at_offset=i % 3),)),
        )
        for i in range(12)
    ]
    await asyncio.gather(*(store.deliver(d) for d in deliveries))
    history = await side.history(PATIENT)
    assert [e.seq for e in history] == list(range(12))
    assert sorted(e.subject for e in history) == sorted(f"e{i}" for i in range(12))
    assert verify_chain(history, patient=PATIENT) == []


async def test_shared_slots_are_removed_by_a_delivery_that_unshares(store: MailboxStore) -> None:
    side = await world(store)
    await store.deliver(f.delivery(DOCTOR, [PATIENT], envelope_id="doc-1"))
    await side.add_shared_slots([SharedSlotRecord(PATIENT, "doc-1", OTHER, "g", b"s", T)])
    unshare = PatientEffects(unshare=(("doc-1", OTHER),), history=(draft(Action.CONSENT_REVOKED),))
    await store.deliver(dataclasses.replace(f.delivery(PATIENT, [OTHER]), patient=unshare))
    assert await side.shared_slots(PATIENT) == []
    assert [e.action for e in await side.history(PATIENT)] == ["consent-revoked"]


# -- closing and purging -----------------------------------------------------------------------


async def test_closing_sets_closed_at_and_an_objection_is_remembered(store: MailboxStore) -> None:
    side = await world(store)
    closed = await side.close_account(PATIENT, T + timedelta(days=3), opposed=True)
    assert closed.closed_at == T + timedelta(days=3)
    assert (await store.get_account(PATIENT)) == closed
    assert (await side.get_profile(PATIENT)).opposed_at == T + timedelta(days=3)
    again = await side.close_account(PATIENT, T + timedelta(days=9))
    assert again.closed_at == T + timedelta(days=3)  # the first closure stands
    with pytest.raises(NotFound):
        await side.close_account(NOBODY, T)


async def test_purging_removes_the_account_and_what_only_it_holds(store: MailboxStore) -> None:
    side = await world(store)
    only_patient = f.delivery(DOCTOR, [PATIENT], envelope_id="only", sent_copy=False)
    shared = f.delivery(DOCTOR, [PATIENT, SECOND], envelope_id="shared", sent_copy=False)
    await store.deliver(dataclasses.replace(only_patient, patient=effects("only")))
    await store.deliver(shared)
    await side.set_block(PATIENT, OTHER, True, T)
    await side.add_shared_slots([SharedSlotRecord(PATIENT, "only", OTHER, "g", b"s", T)])
    await side.put_profile(PatientProfile(SECOND, treating_doctor=DOCTOR))
    await side.append_history([draft(patient=SECOND)])

    with pytest.raises(ValueError, match="open"):
        await side.purge_account(PATIENT)
    await side.close_account(PATIENT, T)
    removed = await side.purge_account(PATIENT)

    assert removed == [only_patient.blob]
    assert await store.get_account(PATIENT) is None
    assert await side.history(PATIENT) == []
    assert await side.threads(PATIENT) == []
    assert await side.blocks(PATIENT) == frozenset()
    assert await side.shared_slots(PATIENT) == []
    # Nothing else moved: the other patient keeps the shared envelope, profile and history.
    [kept] = await store.list_messages(SECOND, "INBOX")
    assert kept.envelope_id == "shared"
    assert (await store.get_message(SECOND, "INBOX", kept.uid)).slot == f.slot_for(SECOND, "shared")
    assert (await side.get_profile(SECOND)).treating_doctor == DOCTOR
    assert len(await side.history(SECOND)) == 1
    assert {a.address for a in await store.list_accounts()} == {DOCTOR, OTHER, SECOND}
    with pytest.raises(NotFound):
        await side.purge_account(PATIENT)


async def test_an_address_is_compared_in_lower_case_on_the_patient_side(
    store: MailboxStore,
) -> None:
    side = await world(store)
    shouting = Address(DOCTOR.local.upper(), DOCTOR.domain.upper())
    await side.set_block(PATIENT, shouting, True, T)
    assert await side.blocks(PATIENT) == {DOCTOR}

"""The patient side of the SQL store under concurrency: two store instances (two processes'
worth of connections) appending to one patient's history at once."""

from __future__ import annotations

import asyncio
import dataclasses

from mailbox_store import SqlMailboxStore
from messaging.access_history import Action, verify_chain
from messaging.patient_ports import HistoryDraft, PatientEffects
from messaging.types import Delivery, MailboxKind
from tests.mailbox_store import factories as f
from tests.mailbox_store.conftest import StepClock

DOCTOR = f.address("doctor")
PATIENT = f.address("277076322082910", "patient.pli.test")


def with_history(delivery: Delivery, n: int) -> Delivery:
    entry = HistoryDraft(
        PATIENT, str(delivery.sender), Action.DOCUMENT_SENT.value, f"e{n}", f.WHEN, {}
    )
    return dataclasses.replace(delivery, patient=PatientEffects(history=(entry,)))


async def test_two_stores_writing_one_patients_history_at_once_never_fork_or_deadlock(
    database_url: str,
) -> None:
    first = await SqlMailboxStore.open(database_url, clock=StepClock())
    second = await SqlMailboxStore.open(database_url, clock=StepClock())
    try:
        await first.create_account(f.account(DOCTOR), [])
        await first.create_account(f.account(PATIENT, MailboxKind.PAT), [])
        # To the patient through one store (their INBOX), from the patient through the other
        # (their Sent): different folder locks, the same patient row and chain.
        inbound = [with_history(f.delivery(DOCTOR, [PATIENT]), n) for n in range(10)]
        outbound = [with_history(f.delivery(PATIENT, [DOCTOR]), 10 + n) for n in range(10)]
        await asyncio.wait_for(
            asyncio.gather(
                *(first.deliver(d) for d in inbound), *(second.deliver(d) for d in outbound)
            ),
            timeout=60,
        )
        history = await first.patients.history(PATIENT)
        assert sorted(e.subject for e in history) == sorted(f"e{n}" for n in range(20))
        assert [e.seq for e in history] == list(range(20))
        assert verify_chain(history, patient=PATIENT) == []
    finally:
        await first.close()
        await second.close()

"""Acceptance 5: the purge removes closed accounts older than the retention period and
nothing else — with a controllable clock, on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from crypto import GatewayInfo
from messaging import Address, parse_message
from messaging.errors import NotFound
from messaging.patient_ports import PatientProfile
from tests.messaging.patient_world import PatientWorld, build_world, mail

YEAR = timedelta(days=365)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PatientWorld]:
    async for built in build_world(request, request.param, tmp_path):
        yield built


async def test_the_purge_removes_only_closed_accounts_past_their_retention(
    world: PatientWorld,
) -> None:
    doctor = await world.professional("sophie")
    old = await world.patient("277076322082910")
    recent = await world.patient("180057512345602")
    still_open = await world.patient("299017512345608")
    sent = {}
    for patient in (old, recent, still_open):
        sent[patient] = await world.delivery.send(
            doctor, await world.keys(doctor), [patient], mail(doctor, patient, "Résultats")
        )
        await world.patients.put_profile(PatientProfile(patient, treating_doctor=doctor))
    await world.service.block(old, await world.professional("paul"))

    await world.service.close(old)  # closed now ...
    world.clock.advance(5 * YEAR)
    await world.service.close(recent)  # ... and five years later
    world.clock.advance(5 * YEAR + timedelta(days=3))  # ten years and a bit after the first

    dry = await world.service.purge(dry_run=True)
    assert dry.plan.addresses == [old]
    assert [i.address for i in dry.plan.retained] == [recent]
    assert dry.plan.open_accounts == 3  # the two doctors and the open patient
    assert dry.purged == ()
    assert await world.store.get_account(old) is not None  # a dry run deletes nothing
    report = dry.plan.report("en")
    assert f"purge  {old}" in report and f"retain {recent}" in report

    done = await world.service.purge()
    assert done.purged == (old,)
    assert await world.store.get_account(old) is None
    with pytest.raises(NotFound):
        await world.store.list_messages(old, "INBOX")
    assert await world.service.history(old) == []
    assert (await world.patients.get_profile(old)).treating_doctor is None
    # Nothing else: the retained and the open patient keep everything, and the doctor's
    # Sent copy of the purged patient's message still opens (the envelope is theirs too).
    for kept in (recent, still_open):
        assert len(await world.store.list_messages(kept, "INBOX")) == 1
        assert (await world.patients.get_profile(kept)).treating_doctor == doctor
    sent_copies = await world.store.list_messages(doctor, "Sent")
    assert {m.envelope_id for m in sent_copies} == {s.envelope_id for s in sent.values()}
    own = next(m for m in sent_copies if m.envelope_id == sent[old].envelope_id)
    opened = await world.delivery.open_message(doctor, await world.keys(doctor), "Sent", own.uid)
    assert parse_message(opened.raw).subject == "Résultats"
    assert done.blobs == ()  # the envelope is still named: its blob stays

    # Later, the second closure's turn comes; the open account is never planned.
    world.clock.advance(5 * YEAR)
    assert (await world.service.purge()).purged == (recent,)
    assert (await world.service.purge()).purged == ()
    assert await world.store.get_account(still_open) is not None


async def test_a_purged_account_takes_the_blobs_only_it_named(world: PatientWorld) -> None:
    patient = await world.patient("277076322082910")
    # Sent by a gateway: no Sent copy, so the patient's is the envelope's only holder.
    peer = GatewayInfo(peer="mx.ch-ailleurs.fr", tls="CN=mx.ch-ailleurs.fr")
    outside = Address.parse("labo@ch-ailleurs.fr")
    received = await world.delivery.receive(
        outside, [patient], mail(outside, patient), gateway=peer
    )
    [record] = await world.store.list_messages(patient, "INBOX")
    assert await asyncio.to_thread(world.blobs.exists, record.blob)
    await world.service.close(patient)
    world.clock.advance(11 * YEAR)

    done = await world.service.purge()

    assert done.purged == (patient,) and done.blobs == (record.blob,)
    assert received.envelope_id == record.envelope_id
    if world.url is not None:  # a small blob lives in the database: it went with its rows
        assert not await asyncio.to_thread(world.blobs.exists, record.blob)

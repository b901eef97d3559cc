"""Envelopes sealed by their sender (webmail, sealing client) meet the patient rules too: the
server cannot read them, so the rules judge the routing header, and what needs the content
must be sealed by the server. A refusal stores nothing."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import crypto
from messaging import Address, MessageKind
from messaging.errors import RuleViolation
from messaging.sealed import SealedIntake
from tests.messaging.patient_world import PatientWorld, build_world, mail


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PatientWorld]:
    async for built in build_world(request, request.param, tmp_path):
        yield built


def intake(world: PatientWorld) -> SealedIntake:
    return SealedIntake(
        store=world.store,
        blobs=world.blobs,
        keys=world.delivery._keys,  # noqa: SLF001 - the same key directory the service uses
        notifier=world.delivery._notifier,  # noqa: SLF001
        clock=world.clock,
        patients=world.rules,
    )


async def sealed(
    world: PatientWorld,
    sender: Address,
    recipient: Address,
    *,
    thread_id: str = "f" * 32,
    kind: MessageKind = MessageKind.NOTE,
    envelope_id: str = "0" * 31 + "1",
) -> tuple[io.BytesIO, dict[Address, bytes]]:
    keys = await world.keys(sender)
    account = await world.store.get_account(recipient)
    assert account is not None
    message = mail(sender, recipient, "Question")
    header = crypto.RoutingHeader(
        envelope_id=envelope_id,
        thread_id=thread_id,
        kind=kind.value,
        sender=str(sender),
        recipients=(str(recipient),),
        size=len(message),
        date=world.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        provenance="e2e",
        signer=keys.signing_key.public,
        gateway=None,
    )
    envelope, result = crypto.seal_bytes(
        header,
        message,
        signer=keys.signing_key,
        recipients=[crypto.EncryptionPublicKey(account.encryption_key)],
    )
    return io.BytesIO(envelope), {recipient: result.slots[0]}


async def inbox(world: PatientWorld, address: Address) -> int:
    return len(await world.store.list_messages(address, "INBOX"))


async def test_a_patient_cannot_open_a_thread_with_a_doctor_by_sealing_it_herself(
    world: PatientWorld,
) -> None:
    doctor = await world.professional("sophie")
    patient = await world.patient("277076322082910")
    envelope, slots = await sealed(world, patient, doctor)
    with pytest.raises(RuleViolation) as refused:
        await intake(world).accept(patient, envelope, slots)
    assert refused.value.code == "patient-new-thread"
    assert await inbox(world, doctor) == 0


async def test_a_sealed_reply_in_the_doctors_thread_and_a_note_to_a_pharmacy_pass(
    world: PatientWorld,
) -> None:
    doctor = await world.professional("sophie")
    pharmacy = await world.professional("officine", pharmacist=True)
    patient = await world.patient("277076322082910")
    opened = await world.delivery.send(
        doctor, await world.keys(doctor), [patient], mail(doctor, patient, "Suivi")
    )
    envelope, slots = await sealed(world, patient, doctor, thread_id=opened.thread_id)
    await intake(world).accept(patient, envelope, slots)
    assert await inbox(world, doctor) == 1
    envelope, slots = await sealed(world, patient, pharmacy, envelope_id="0" * 31 + "2")
    await intake(world).accept(patient, envelope, slots)
    assert await inbox(world, pharmacy) == 1


async def test_a_blocked_professionals_sealed_message_is_refused_and_recorded(
    world: PatientWorld,
) -> None:
    doctor = await world.professional("sophie")
    patient = await world.patient("277076322082910")
    await world.service.block(patient, doctor)
    before = len(await world.service.history(patient))
    envelope, slots = await sealed(world, doctor, patient)
    with pytest.raises(RuleViolation) as refused:
        await intake(world).accept(doctor, envelope, slots)
    assert refused.value.code == "sender-blocked"
    assert await inbox(world, patient) == 0
    assert len(await world.service.history(patient)) == before + 1


async def test_documents_and_consent_for_a_patient_must_be_sealed_by_the_server(
    world: PatientWorld,
) -> None:
    doctor = await world.professional("sophie")
    patient = await world.patient("277076322082910")
    for kind in (MessageKind.DOCUMENT, MessageKind.CONSENT_REQUEST):
        envelope, slots = await sealed(world, doctor, patient, kind=kind)
        with pytest.raises(RuleViolation) as refused:
            await intake(world).accept(doctor, envelope, slots)
        assert refused.value.code == "sealed-needs-content"
    assert await inbox(world, patient) == 0

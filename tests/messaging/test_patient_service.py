"""The patient rules through the delivery service, on memory, SQLite and PostgreSQL.

Acceptance 3 and 4 of issue 4: threads, FIN, blocks and the médecin traitant; consent end
to end with the patient-side re-wrap; the access history written with each action and
verified, tampering with the real database included.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

import crypto
from messaging import Address, RuleViolation, Submitted
from messaging.access_history import anchor_of
from messaging.errors import InvalidMessage
from messaging.kinds.consent import (
    ConsentRequest,
    Decision,
    Scope,
    answer,
    build_request,
    build_response,
)
from messaging.mime import Draft, build_message
from messaging.patient_rules import explain
from messaging.types import MessageKind
from tests.messaging.patient_world import START, PatientWorld, build_world, mail

JEANNE = "277076322082910"
PAUL = "180057512345602"


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PatientWorld]:
    async for built in build_world(request, request.param, tmp_path):
        yield built


async def send(
    world: PatientWorld,
    sender: Address,
    to: Address,
    raw: bytes,
    *,
    thread_id: str | None = None,
) -> Submitted:
    keys = await world.keys(sender)
    return await world.delivery.send(sender, keys, [to], raw, thread_id=thread_id)


def actions(entries: list) -> list[str]:  # type: ignore[type-arg]
    return [e.action for e in entries]


# -- threads ------------------------------------------------------------------------------------


async def test_a_patient_cannot_open_a_thread_with_a_doctor(world: PatientWorld) -> None:
    doctor, patient = await world.professional("sophie"), await world.patient(JEANNE)

    with pytest.raises(RuleViolation) as refused:
        await send(world, patient, doctor, mail(patient, doctor))

    assert refused.value.code == "patient-new-thread"
    assert refused.value.reason == explain("patient-new-thread", recipient=doctor)
    assert "Vous ne pouvez pas écrire en premier" in refused.value.reason
    assert await world.store.list_messages(doctor, "INBOX") == []
    assert await world.store.list_messages(patient, "Sent") == []


async def test_the_reason_is_in_english_for_a_patient_who_chose_english(
    world: PatientWorld,
) -> None:
    doctor, patient = await world.professional("sophie"), await world.patient(JEANNE)
    await world.service.set_contact(patient, lang="en")

    with pytest.raises(RuleViolation) as refused:
        await send(world, patient, doctor, mail(patient, doctor))

    assert refused.value.reason.startswith("You cannot write first to sophie@medecin.pli.test")


async def test_a_patient_replies_in_a_thread_the_doctor_opened(world: PatientWorld) -> None:
    doctor, patient = await world.professional("sophie"), await world.patient(JEANNE)
    opened = await send(world, doctor, patient, mail(doctor, patient, "Vos résultats"))

    # By thread id (the webmail) ...
    reply = await send(world, patient, doctor, mail(patient, doctor), thread_id=opened.thread_id)
    assert reply.thread_id == opened.thread_id
    # ... and by In-Reply-To only (a mail client), which finds the same thread.
    [received] = await world.store.list_messages(patient, "INBOX")
    first = await world.delivery.open_message(
        patient, await world.keys(patient), "INBOX", received.uid
    )
    message_id = str(first.raw.split(b"Message-ID: ")[1].split(b"\n")[0].strip().decode())
    by_header = await send(world, patient, doctor, mail(patient, doctor, In_Reply_To=message_id))
    assert by_header.thread_id == opened.thread_id
    assert len(await world.store.list_messages(doctor, "INBOX")) == 2


async def test_a_patient_cannot_reply_to_another_doctor_in_that_thread(world: PatientWorld) -> None:
    doctor, other = await world.professional("sophie"), await world.professional("paul")
    patient = await world.patient(JEANNE)
    opened = await send(world, doctor, patient, mail(doctor, patient))

    with pytest.raises(RuleViolation) as refused:
        await send(world, patient, other, mail(patient, other), thread_id=opened.thread_id)
    assert refused.value.code == "patient-new-thread"


async def test_a_patient_may_write_first_to_a_pharmacy(world: PatientWorld) -> None:
    pharmacy = await world.professional("pharmacie-du-parc", pharmacist=True)
    patient = await world.patient(JEANNE)

    sent = await send(world, patient, pharmacy, mail(patient, pharmacy, "Ordonnance prête ?"))

    [received] = await world.store.list_messages(pharmacy, "INBOX")
    assert received.envelope_id == sent.envelope_id


async def test_a_patient_cannot_write_to_another_patient(world: PatientWorld) -> None:
    jeanne, paul = await world.patient(JEANNE), await world.patient(PAUL)
    with pytest.raises(RuleViolation) as refused:
        await send(world, jeanne, paul, mail(jeanne, paul))
    assert refused.value.code == "patient-to-patient"


async def test_after_fin_a_reply_is_refused(world: PatientWorld) -> None:
    doctor, patient = await world.professional("sophie"), await world.patient(JEANNE)
    opened = await send(world, doctor, patient, mail(doctor, patient))
    await send(world, patient, doctor, mail(patient, doctor), thread_id=opened.thread_id)
    world.clock.advance(timedelta(minutes=5))

    await send(
        world, doctor, patient, mail(doctor, patient, X_MSS_MES="FIN"), thread_id=opened.thread_id
    )
    world.clock.advance(timedelta(minutes=5))

    with pytest.raises(RuleViolation) as refused:
        await send(world, patient, doctor, mail(patient, doctor), thread_id=opened.thread_id)
    assert refused.value.code == "thread-closed"
    assert refused.value.reason == explain("thread-closed", recipient=doctor)
    history = await world.service.history(patient)
    assert actions(history) == ["thread-closed"]
    assert history[0].subject == opened.thread_id


async def test_a_fin_subject_closes_every_earlier_thread_with_that_doctor(
    world: PatientWorld,
) -> None:
    doctor, other = await world.professional("sophie"), await world.professional("paul")
    patient = await world.patient(JEANNE)
    first = await send(world, doctor, patient, mail(doctor, patient, "Consultation"))
    second = await send(world, doctor, patient, mail(doctor, patient, "Résultats"))
    others = await send(world, other, patient, mail(other, patient, "Rendez-vous"))
    world.clock.advance(timedelta(hours=1))

    await send(world, doctor, patient, mail(doctor, patient, "[FIN]"))
    world.clock.advance(timedelta(hours=1))

    for closed in (first, second):
        with pytest.raises(RuleViolation, match="clos cette conversation"):
            await send(world, patient, doctor, mail(patient, doctor), thread_id=closed.thread_id)
    # Another doctor's thread stays open.
    await send(world, patient, other, mail(patient, other), thread_id=others.thread_id)


# -- blocks and the médecin traitant ---------------------------------------------------------


async def test_a_blocked_professional_is_refused_and_the_attempt_is_in_the_history(
    world: PatientWorld,
) -> None:
    doctor, patient = await world.professional("sophie"), await world.patient(JEANNE)
    await world.service.block(patient, doctor)

    with pytest.raises(RuleViolation) as refused:
        await send(world, doctor, patient, mail(doctor, patient))

    assert refused.value.code == "sender-blocked"
    assert await world.store.list_messages(patient, "INBOX") == []
    history = await world.service.history(patient)
    assert actions(history) == ["blocked", "block-attempted"]
    assert history[1].actor == str(doctor)
    assert history[1].detail_map == {"professional": str(doctor), "rule": "sender-blocked"}
    assert await world.service.verify_history(patient) == []

    await world.service.unblock(patient, doctor)
    await send(world, doctor, patient, mail(doctor, patient))
    assert len(await world.store.list_messages(patient, "INBOX")) == 1


async def test_a_blocked_gateway_sender_is_refused_too(world: PatientWorld) -> None:
    patient = await world.patient(JEANNE)
    outside = Address.parse("secretariat@ch-ailleurs.fr")
    await world.service.block(patient, outside)
    peer = crypto.GatewayInfo(peer="mx.ch-ailleurs.fr", tls="CN=mx.ch-ailleurs.fr")
    with pytest.raises(RuleViolation, match="n'accepte pas"):
        await world.delivery.receive(outside, [patient], mail(outside, patient), gateway=peer)
    assert actions(await world.service.history(patient)) == ["blocked", "block-attempted"]


async def test_the_treating_doctor_cannot_be_blocked(world: PatientWorld) -> None:
    doctor, patient = await world.professional("sophie"), await world.patient(JEANNE)
    await world.service.declare_treating_doctor(patient, doctor)

    with pytest.raises(RuleViolation) as refused:
        await world.service.block(patient, doctor)

    assert refused.value.code == "block-treating-doctor"
    assert await world.service.blocked(patient) == frozenset()
    assert actions(await world.service.history(patient)) == ["block-refused"]
    await send(world, doctor, patient, mail(doctor, patient))


async def test_a_block_made_before_the_declaration_never_stops_the_treating_doctor(
    world: PatientWorld,
) -> None:
    doctor, patient = await world.professional("sophie"), await world.patient(JEANNE)
    await world.service.block(patient, doctor)
    await world.service.declare_treating_doctor(patient, doctor)
    await send(world, doctor, patient, mail(doctor, patient))
    assert len(await world.store.list_messages(patient, "INBOX")) == 1


# -- account status ----------------------------------------------------------------------------


async def test_an_opposed_account_refuses_mail_and_opposition_has_a_deadline(
    world: PatientWorld,
) -> None:
    doctor = await world.professional("sophie")
    jeanne, paul = await world.patient(JEANNE), await world.patient(PAUL)
    world.clock.advance(timedelta(weeks=5))
    opposed = await world.service.oppose(jeanne)
    assert opposed.closed_at == world.clock.now()
    assert (await world.service.profile(jeanne)).opposed_at == world.clock.now()
    with pytest.raises(RuleViolation) as refused:
        await send(world, doctor, jeanne, mail(doctor, jeanne))
    assert refused.value.code == "recipient-closed"

    world.clock.advance(timedelta(weeks=2))
    with pytest.raises(RuleViolation) as late:
        await world.service.oppose(paul)
    assert late.value.code == "opposition-too-late"
    closed = await world.service.close(paul)
    assert closed.closed_at == world.clock.now()


# -- consent ---------------------------------------------------------------------------------


async def a_document(world: PatientWorld, doctor: Address, patient: Address, title: str) -> str:
    """A document message in the patient's record (typed ``document``); its envelope id."""
    raw = build_message(
        Draft(
            sender=doctor,
            recipients=(patient,),
            subject=title,
            body=f"{title}: compte rendu",
            kind=MessageKind.DOCUMENT,
            extra_headers=(("X-MSS-CODECDA", "11488-4"),),
        ),
        message_id=f"<{title.replace(' ', '-')}@medecin.pli.test>",
        date=START,
    )
    sent = await send(world, doctor, patient, raw)
    assert sent.kind is MessageKind.DOCUMENT
    return sent.envelope_id


async def test_consent_end_to_end(world: PatientWorld) -> None:
    author = await world.professional("sophie")
    reader = await world.professional("paul")
    patient = await world.patient(JEANNE)
    patient_keys, reader_keys = await world.keys(patient), await world.keys(reader)
    first = await a_document(world, author, patient, "Consultation")

    # Without a grant: no slot, refused; and the patient's own slot does not open for him.
    with pytest.raises(RuleViolation) as refused:
        await world.service.open_document(reader, reader_keys, patient, first)
    assert refused.value.code == "consent-required"
    own = await world.store.find_message(patient, first)
    with pytest.raises(crypto.CryptoError):
        crypto.open_slot(own.slot, reader_keys)

    # Asked, granted: the patient's side re-wraps, the professional reads.
    request, _ = await world.service.request_consent(
        reader,
        reader_keys,
        patient,
        scope=Scope.record(),
        purpose="Avis cardiologique",
        duration_days=30,
    )
    [pending] = (await world.service.registry(patient)).pending_requests()
    assert pending == request
    world.clock.advance(timedelta(minutes=1))
    await world.service.answer_consent(patient, patient_keys, request.request_id, Decision.GRANT)
    shared = await world.patients.shared_slots(patient, reader)
    assert [s.document_id for s in shared] == [first]
    world.clock.advance(timedelta(minutes=1))
    read = await world.service.open_document(reader, reader_keys, patient, first)
    assert b"Consultation: compte rendu" in read.raw
    assert read.grant_id == request.request_id

    # Revoked: the slots go, and a document sent later is never shared with him.
    world.clock.advance(timedelta(minutes=1))
    await world.service.revoke_consent(patient, patient_keys, request.request_id)
    assert await world.patients.shared_slots(patient, reader) == []
    with pytest.raises(RuleViolation, match="no active consent"):
        await world.service.open_document(reader, reader_keys, patient, first)
    world.clock.advance(timedelta(minutes=1))
    later = await a_document(world, author, patient, "Biologie")
    assert await world.service.share(patient, patient_keys) == []
    with pytest.raises(RuleViolation) as after:
        await world.service.open_document(reader, reader_keys, patient, later)
    assert after.value.code == "consent-required"

    # Each step is in the history, in order, and the chain holds.
    history = await world.service.history(patient)
    assert actions(history) == [
        "document-sent",
        "consent-requested",
        "consent-answered",
        "document-shared",
        "document-read-with-consent",
        "consent-revoked",
        "document-unshared",
        "document-sent",
    ]
    assert history[4].actor == str(reader)
    assert history[2].detail_map["decision"] == "grant"
    assert await world.service.verify_history(patient) == []


async def test_a_masked_document_is_never_shared_nor_read(world: PatientWorld) -> None:
    author, reader = await world.professional("sophie"), await world.professional("paul")
    patient = await world.patient(JEANNE)
    patient_keys, reader_keys = await world.keys(patient), await world.keys(reader)
    hidden = await a_document(world, author, patient, "Psychiatrie")
    visible = await a_document(world, author, patient, "Radiologie")
    with pytest.raises(RuleViolation) as author_refused:
        await world.service.mask(patient, hidden, [author])
    assert author_refused.value.code == "mask-author"
    await world.service.mask(patient, hidden, [reader])

    request, _ = await world.service.request_consent(
        reader, reader_keys, patient, scope=Scope.record(), purpose="Suivi", duration_days=10
    )
    await world.service.answer_consent(patient, patient_keys, request.request_id, Decision.GRANT)

    assert [s.document_id for s in await world.patients.shared_slots(patient, reader)] == [visible]
    with pytest.raises(RuleViolation):
        await world.service.open_document(reader, reader_keys, patient, hidden)
    await world.service.open_document(reader, reader_keys, patient, visible)


async def test_an_unsigned_or_forged_consent_answer_is_refused_and_stores_nothing(
    world: PatientWorld,
) -> None:
    reader, patient = await world.professional("paul"), await world.patient(JEANNE)
    patient_keys = await world.keys(patient)
    request, _ = await world.service.request_consent(
        reader,
        await world.keys(reader),
        patient,
        scope=Scope.record(),
        purpose="Avis",
        duration_days=5,
    )
    mallory = crypto.generate_keys()
    forged = answer(request, Decision.GRANT, mallory.signing_key, world.clock.now())
    raw = build_response(forged, message_id="<forged@patient.pli.test>")
    with pytest.raises(InvalidMessage) as refused:
        await send(world, patient, reader, raw)
    assert refused.value.code == "consent-forged"

    genuine = answer(request, Decision.GRANT, patient_keys.signing_key, world.clock.now())
    unsigned = unsigned_response(genuine.signed_body(), patient, reader)
    with pytest.raises(InvalidMessage) as missing:
        await send(world, patient, reader, unsigned)
    assert missing.value.code == "consent-unsigned"

    assert (await world.service.registry(patient)).grants() == []
    assert await world.store.list_messages(reader, "INBOX") == []
    assert actions(await world.service.history(patient)) == ["consent-requested"]


def unsigned_response(body: dict[str, object], patient: Address, to: Address) -> bytes:
    """A consent response as a careless client would write it: every field, no signature."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = str(patient), str(to), "Consentement"
    msg["Message-ID"] = "<unsigned@patient.pli.test>"
    msg.set_content("J'accepte.")
    msg.add_attachment(
        json.dumps(body).encode(),
        maintype="application",
        subtype="vnd.pli.consent-response+json",
        params={"version": "1"},
    )
    return msg.as_bytes()


# -- the history resists tampering -----------------------------------------------------------


async def history_of_three(world: PatientWorld) -> tuple[Address, list]:  # type: ignore[type-arg]
    doctor, patient = await world.professional("sophie"), await world.patient(JEANNE)
    for title in ("Un", "Deux", "Trois"):
        await a_document(world, doctor, patient, title)
        world.clock.advance(timedelta(seconds=1))
    history = await world.service.history(patient)
    assert len(history) == 3 and await world.service.verify_history(patient) == []
    return patient, history


async def test_an_edited_history_entry_is_detected(world: PatientWorld) -> None:
    patient, history = await history_of_three(world)
    if world.url is None:
        edited = dataclasses.replace(history[1], actor="someone-else@medecin.pli.test")
        world.patients.tamper(patient, 1, edited)  # type: ignore[attr-defined]
    else:
        changed = await world.execute(
            "UPDATE access_history SET actor = 'someone-else@medecin.pli.test' "
            "WHERE patient = :patient AND seq = 1",
            patient=str(patient),
        )
        assert changed == 1
    problems = await world.service.verify_history(patient)
    assert [(p.index, p.code) for p in problems] == [(1, "history-hash")]


async def test_a_deleted_history_entry_is_detected(world: PatientWorld) -> None:
    patient, history = await history_of_three(world)
    anchor = anchor_of(history)
    if world.url is None:
        world.patients.tamper(patient, 1, None)  # type: ignore[attr-defined]
    else:
        assert (
            await world.execute(
                "DELETE FROM access_history WHERE patient = :patient AND seq = 1",
                patient=str(patient),
            )
            == 1
        )
    problems = await world.service.verify_history(patient, anchor)
    codes = {p.code for p in problems}
    assert {"history-sequence", "history-link"} <= codes
    assert "history-truncated" in codes  # the anchored last entry is no longer where it was


async def test_a_deleted_last_entry_is_detected_by_the_anchor(world: PatientWorld) -> None:
    patient, history = await history_of_three(world)
    anchor = anchor_of(history)
    if world.url is None:
        world.patients.tamper(patient, 2, None)  # type: ignore[attr-defined]
    else:
        await world.execute(
            "DELETE FROM access_history WHERE patient = :patient AND seq = 2", patient=str(patient)
        )
    assert await world.service.verify_history(patient) == []  # a chain alone cannot see it
    problems = await world.service.verify_history(patient, anchor)
    assert [p.code for p in problems] == ["history-truncated"]


async def a_typed_document(
    world: PatientWorld, doctor: Address, patient: Address, title: str, code: str
) -> str:
    raw = build_message(
        Draft(
            sender=doctor,
            recipients=(patient,),
            subject=title,
            body=title,
            kind=MessageKind.DOCUMENT,
            extra_headers=(("X-MSS-CODECDA", code),),
        ),
        message_id=f"<{code}@medecin.pli.test>",
        date=START,
    )
    return (await send(world, doctor, patient, raw)).envelope_id


async def test_a_grant_for_some_categories_shares_only_those_documents(
    world: PatientWorld,
) -> None:
    author, reader = await world.professional("sophie"), await world.professional("paul")
    patient = await world.patient(JEANNE)
    patient_keys, reader_keys = await world.keys(patient), await world.keys(reader)
    report = await a_typed_document(world, author, patient, "Consultation", "11488-4")
    biology = await a_typed_document(world, author, patient, "Biologie", "11502-2")

    request, _ = await world.service.request_consent(
        reader,
        reader_keys,
        patient,
        scope=Scope.of_categories("11502-2"),
        purpose="Bilan",
        duration_days=3,
    )
    await world.service.answer_consent(patient, patient_keys, request.request_id, Decision.GRANT)

    [shared] = await world.patients.shared_slots(patient, reader)
    assert (shared.document_id, shared.categories) == (biology, frozenset({"11502-2"}))
    await world.service.open_document(reader, reader_keys, patient, biology)
    with pytest.raises(RuleViolation):
        await world.service.open_document(reader, reader_keys, patient, report)

    # The grant ends with its duration: the server refuses the slot it still holds.
    world.clock.advance(timedelta(days=4))
    with pytest.raises(RuleViolation) as expired:
        await world.service.open_document(reader, reader_keys, patient, biology)
    assert expired.value.code == "consent-required"


async def test_a_consent_request_must_name_the_patient_it_goes_to(world: PatientWorld) -> None:
    reader = await world.professional("paul")
    jeanne, paul = await world.patient(JEANNE), await world.patient(PAUL)
    request = ConsentRequest.new(
        professional=reader,
        patient=paul,
        scope=Scope.record(),
        purpose="Avis",
        duration_days=3,
        at=world.clock.now(),
    )
    raw = build_request(request, message_id="<cr@medecin.pli.test>")
    with pytest.raises(InvalidMessage) as refused:
        await send(world, reader, jeanne, raw)
    assert refused.value.code == "consent-wrong-patient"
    assert await world.service.history(jeanne) == []
    assert (await world.service.registry(paul)).pending_requests() == []

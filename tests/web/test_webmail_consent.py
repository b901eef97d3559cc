"""Consent answered, shared and withdrawn from the webmail, against a real server on both
engines. The test plays the browser: it signs with the patient's keys (unlocked here, as
the page unlocks them) and re-wraps slots with ``crypto.reseal_slot``; the server only
verifies and stores. Also the approved services' catalogue and an appointment answer in
the access history."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

import crypto
from messaging.directory import Application
from messaging.errors import RuleViolation
from messaging.kinds.appointment import (
    PartStat,
    build_appointment,
    new_request,
    new_uid,
    reply_to,
)
from messaging.kinds.consent import (
    ConsentRequest,
    ConsentResponse,
    Decision,
    Scope,
    answer,
    parse_response,
    parse_revocation,
    revoke,
)
from messaging.kinds.document import build_document
from messaging.types import Address
from tests.messaging.kinds.test_document import MESSAGE
from tests.support.webmail_world import (
    DOCTOR,
    OTHER,
    PATIENT,
    PHARMACY,
    WebmailWorld,
    b64,
    sign_in,
    unb64,
    webmail_world,
)

API = "/webmail/api/patient"


@pytest.fixture
async def world(tmp_path: Path, database_url: str) -> AsyncIterator[WebmailWorld]:
    async with webmail_world(tmp_path, database_url) as started:
        yield started


@pytest.fixture
async def client(world: WebmailWorld) -> AsyncIterator[httpx.AsyncClient]:
    async with world.client() as c:
        yield c


async def _keys(world: WebmailWorld, address: str) -> crypto.MailboxKeys:
    return (
        await world.pli.accounts.unlock(Address.parse(address), world.passphrases[address])
    ).keys


async def _document_and_request(world: WebmailWorld) -> tuple[str, ConsentRequest]:
    doctor, patient = Address.parse(DOCTOR), Address.parse(PATIENT)
    keys = await _keys(world, DOCTOR)
    message = replace(MESSAGE, sender=doctor, recipients=(patient,))
    raw = build_document(message, message_id="<doc-c@medecin.pli.test>", date=world.pli.clock.now())
    sent = await world.pli.delivery.send(doctor, keys, (patient,), raw)
    request, _ = await world.pli.patients.request_consent(
        doctor, keys, patient, scope=Scope.record(), purpose="Suivi", duration_days=30
    )
    return sent.envelope_id, request


async def _pending(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    pending = (await client.get(f"{API}/consents")).json()["pending"]
    assert isinstance(pending, list)
    return pending


async def test_a_grant_signed_by_the_patient_shares_the_record_until_it_is_withdrawn(
    world: WebmailWorld, client: httpx.AsyncClient
) -> None:
    document_id, request = await _document_and_request(world)
    patient, doctor = Address.parse(PATIENT), Address.parse(DOCTOR)
    session = await sign_in(world, client, PATIENT)
    csrf = {"X-CSRF-Token": session["csrf"]}
    [listed] = await _pending(client)
    # What the browser hashes and signs is the request exactly as the professional sent it.
    assert ConsentRequest.from_json(listed["request"]) == request
    keys = await _keys(world, PATIENT)
    response = answer(request, Decision.GRANT, keys.signing_key, world.pli.clock.now())
    path = f"{API}/consents/{request.request_id}/answer"

    unprotected = await client.post(path, json={"response": response.to_json()})
    assert unprotected.status_code == 403
    assert len(await _pending(client)) == 1, "a request without its CSRF token changed nothing"

    granted = await client.post(path, json={"response": response.to_json()}, headers=csrf)
    assert granted.status_code == 201, granted.text
    consents = (await client.get(f"{API}/consents")).json()
    assert consents["pending"] == []
    [grant] = consents["grants"]
    assert ConsentResponse.from_json(grant["response"]) == response
    # The doctor receives the signed answer, verifiable with the patient's published key.
    doctor_keys = await _keys(world, DOCTOR)
    [received] = [
        r
        for r in await world.pli.store.list_messages(doctor, "INBOX")
        if r.kind.value == "consent-response"
    ]
    opened = await world.pli.delivery.open_message(doctor, doctor_keys, "INBOX", received.uid)
    assert parse_response(opened.raw, [keys.signing_public]) == response
    assert (opened.provenance.value, opened.gateway_peer) == ("gateway", "webmail")

    # Sharing: the server lists what the grant may cover with the patient's own slot; the
    # "browser" re-wraps it for the doctor; then the doctor can read the document.
    [plan] = (await client.get(f"{API}/sharing")).json()
    assert plan["professional"] == DOCTOR
    assert [d["id"] for d in plan["documents"]] == [document_id]
    with pytest.raises(RuleViolation):
        await world.pli.patients.open_document(doctor, doctor_keys, patient, document_id)
    slot = crypto.reseal_slot(
        unb64(plan["documents"][0]["slot"]), keys, doctor_keys.encryption_public
    )
    share = {"document": document_id, "professional": DOCTOR, "categories": [], "slot": b64(slot)}
    shared = await client.post(f"{API}/sharing", json={"shares": [share]}, headers=csrf)
    assert shared.status_code == 200, shared.text
    assert shared.json()["shared"] == [{"document": document_id, "professional": DOCTOR}]
    read = await world.pli.patients.open_document(doctor, doctor_keys, patient, document_id)
    assert read.raw.startswith(b"From:") or b"Subject:" in read.raw
    again = await client.post(f"{API}/sharing", json={"shares": [share]}, headers=csrf)
    assert again.json()["shared"] == [], "a document already shared is left as it is"
    assert (await client.get(f"{API}/sharing")).json() == []

    # Withdrawal, signed by the patient: the doctor's slot goes, the document closes.
    revocation = revoke(
        ConsentResponse.from_json(grant["response"]), keys.signing_key, world.pli.clock.now()
    )
    withdrawn = await client.post(
        f"{API}/consents/{request.request_id}/revoke",
        json={"revocation": revocation.to_json()},
        headers=csrf,
    )
    assert withdrawn.status_code == 201, withdrawn.text
    assert (await client.get(f"{API}/consents")).json()["grants"] == []
    with pytest.raises(RuleViolation) as refused:
        await world.pli.patients.open_document(doctor, doctor_keys, patient, document_id)
    assert refused.value.code == "consent-required"
    [revoked] = [
        r
        for r in await world.pli.store.list_messages(doctor, "INBOX")
        if r.kind.value == "consent-revocation"
    ]
    opened = await world.pli.delivery.open_message(doctor, doctor_keys, "INBOX", revoked.uid)
    assert parse_revocation(opened.raw, [keys.signing_public]) == revocation

    history = (await client.get(f"{API}/history")).json()
    assert history["verified"] is True
    assert [e["action"] for e in history["entries"]] == [
        "document-sent",
        "consent-requested",
        "consent-answered",
        "document-shared",
        "document-read-with-consent",
        "consent-revoked",
        "document-unshared",
    ]
    assert await world.pli.patients.verify_history(patient) == []


async def test_answers_not_signed_by_this_patient_or_off_the_clock_change_nothing(
    world: WebmailWorld, client: httpx.AsyncClient
) -> None:
    _, request = await _document_and_request(world)
    session = await sign_in(world, client, PATIENT)
    csrf = {"X-CSRF-Token": session["csrf"]}
    path = f"{API}/consents/{request.request_id}/answer"
    now = world.pli.clock.now()

    async def refused(body: dict[str, Any], rule: str | None, status: int = 422) -> None:
        answered = await client.post(path, json=body, headers=csrf)
        assert answered.status_code == status, answered.text
        assert answered.headers["content-type"] == "application/problem+json"
        if rule is not None:
            assert answered.headers["Pli-Rule"] == rule
        assert len(await _pending(client)) == 1, f"{rule}: the request still waits"

    forged = answer(request, Decision.GRANT, crypto.generate_keys().signing_key, now)
    await refused({"response": forged.to_json()}, "consent-forged")
    other = answer(request, Decision.GRANT, (await _keys(world, OTHER)).signing_key, now)
    await refused({"response": other.to_json()}, "consent-forged")
    keys = await _keys(world, PATIENT)
    stale = answer(request, Decision.GRANT, keys.signing_key, now - timedelta(hours=1))
    await refused({"response": stale.to_json()}, "consent-time")
    unsigned = answer(request, Decision.GRANT, keys.signing_key, now).to_json()
    del unsigned["signature"]
    await refused({"response": unsigned}, "consent-unsigned")
    incomplete = answer(request, Decision.GRANT, keys.signing_key, now).to_json()
    del incomplete["patient"]
    await refused({"response": incomplete}, "consent-schema")
    edited = answer(request, Decision.GRANT, keys.signing_key, now).to_json()
    edited["decision"] = "refuse"
    await refused({"response": edited}, "consent-forged")
    foreign_request = replace(request, patient=Address.parse(OTHER))
    foreign = answer(foreign_request, Decision.GRANT, keys.signing_key, now)
    await refused({"response": foreign.to_json()}, "consent-wrong-patient")
    elsewhere = await client.post(
        f"{API}/consents/another-request/answer",
        json={"response": answer(request, Decision.GRANT, keys.signing_key, now).to_json()},
        headers=csrf,
    )
    assert (elsewhere.status_code, elsewhere.headers["Pli-Rule"]) == (422, "consent-mismatch")
    assert await world.pli.store.list_messages(Address.parse(DOCTOR), "INBOX") == []

    refusal = answer(request, Decision.REFUSE, keys.signing_key, now)
    done = await client.post(path, json={"response": refusal.to_json()}, headers=csrf)
    assert done.status_code == 201, done.text
    assert (await client.get(f"{API}/consents")).json() == {"pending": [], "grants": []}
    second = answer(request, Decision.GRANT, keys.signing_key, now)
    late = await client.post(path, json={"response": second.to_json()}, headers=csrf)
    assert late.status_code == 422
    assert late.headers["Pli-Rule"] == "consent-already-answered"
    assert (await client.get(f"{API}/sharing")).json() == [], "a refusal shares nothing"


async def test_slots_without_a_grant_or_malformed_are_refused_and_nothing_is_stored(
    world: WebmailWorld, client: httpx.AsyncClient
) -> None:
    document_id, request = await _document_and_request(world)
    patient = Address.parse(PATIENT)
    session = await sign_in(world, client, PATIENT)
    csrf = {"X-CSRF-Token": session["csrf"]}
    keys = await _keys(world, PATIENT)
    pharmacy = await world.pli.keys.lookup(Address.parse(PHARMACY))
    assert pharmacy is not None
    stored = await world.pli.store.find_message(patient, document_id)
    slot = crypto.reseal_slot(
        stored.slot, keys, crypto.EncryptionPublicKey(pharmacy.encryption_key)
    )
    offer = {"document": document_id, "professional": PHARMACY, "slot": b64(slot)}

    no_grant = await client.post(f"{API}/sharing", json={"shares": [offer]}, headers=csrf)
    assert no_grant.status_code == 422
    assert no_grant.headers["Pli-Rule"] == "consent-required"

    response = answer(request, Decision.GRANT, keys.signing_key, world.pli.clock.now())
    granted = await client.post(
        f"{API}/consents/{request.request_id}/answer",
        json={"response": response.to_json()},
        headers=csrf,
    )
    assert granted.status_code == 201
    # The grant is the doctor's: the pharmacy still has none; a short slot is no slot; a
    # document of another patient is as unknown as one that does not exist.
    still = await client.post(f"{API}/sharing", json={"shares": [offer]}, headers=csrf)
    assert still.headers["Pli-Rule"] == "consent-required"
    short = {**offer, "professional": DOCTOR, "slot": b64(slot[:40])}
    bad = await client.post(f"{API}/sharing", json={"shares": [short]}, headers=csrf)
    assert (bad.status_code, bad.headers["Pli-Rule"]) == (422, "share-slot")
    unknown = {**offer, "professional": DOCTOR, "document": "0" * 32}
    missing = await client.post(f"{API}/sharing", json={"shares": [unknown]}, headers=csrf)
    assert missing.status_code == 404
    both = [{**offer, "professional": DOCTOR}, offer]
    mixed = await client.post(f"{API}/sharing", json={"shares": both}, headers=csrf)
    assert mixed.status_code == 422, "all of them or none"
    assert await world.pli.patients.accept_shares(patient, []) == []
    entries = await world.pli.patients.history(patient)
    assert "document-shared" not in [e.action for e in entries]


async def test_the_catalogue_lists_the_referenced_services_only(
    world: WebmailWorld, client: httpx.AsyncClient
) -> None:
    directory = world.pli.directory
    await directory.add_application(
        Application(
            Address.parse("rdv@labo.pli.test"),
            "Prise de rendez-vous",
            category="Biologie",
            description="Vos rendez-vous au laboratoire",
            referenced=True,
        )
    )
    await directory.add_application(Application(Address.parse("brouillon@x.pli.test"), "Essai"))
    assert (await client.get(f"{API}/services")).status_code == 401
    await sign_in(world, client, PATIENT)
    services = (await client.get(f"{API}/services")).json()
    assert services == [
        {
            "address": "rdv@labo.pli.test",
            "name": "Prise de rendez-vous",
            "category": "Biologie",
            "description": "Vos rendez-vous au laboratoire",
        }
    ]


async def test_a_patients_sealed_answer_to_an_invitation_is_in_the_access_history(
    world: WebmailWorld, client: httpx.AsyncClient
) -> None:
    doctor, patient = Address.parse(DOCTOR), Address.parse(PATIENT)
    now = world.pli.clock.now()
    invitation = new_request(
        uid=new_uid("medecin.pli.test"),
        organizer=doctor,
        attendees=[patient],
        start=now + timedelta(days=3),
        end=now + timedelta(days=3, minutes=30),
        summary="Consultation",
        dtstamp=now,
    )
    raw = build_appointment(invitation, message_id="<inv-1@medecin.pli.test>", date=now)
    sent = await world.pli.delivery.send(doctor, await _keys(world, DOCTOR), (patient,), raw)
    session = await sign_in(world, client, PATIENT)
    keys = await _keys(world, PATIENT)
    published = await world.pli.keys.lookup(doctor)
    assert published is not None
    reply = build_appointment(
        reply_to(invitation, patient, PartStat.ACCEPTED, dtstamp=now),
        message_id="<rep-1@patient.pli.test>",
        date=now,
        in_reply_to="<inv-1@medecin.pli.test>",
    )
    header = crypto.RoutingHeader(
        envelope_id="cd" * 16,
        thread_id=sent.thread_id,
        kind="appointment",
        sender=PATIENT,
        recipients=(DOCTOR,),
        size=len(reply),
        date=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        provenance="e2e",
        signer=keys.signing_key.public,
    )
    sink = io.BytesIO()
    result = crypto.seal_envelope(
        header,
        io.BytesIO(reply),
        sink,
        signer=keys.signing_key,
        recipients=[crypto.EncryptionPublicKey(published.encryption_key), keys.encryption_public],
    )
    posted = await client.post(
        "/webmail/api/send",
        json={
            "envelope": b64(sink.getvalue()),
            "slots": {DOCTOR: b64(result.slots[0])},
            "sent_slot": b64(result.slots[1]),
        },
        headers={"X-CSRF-Token": session["csrf"]},
    )
    assert posted.status_code == 201, posted.text
    entries = (await client.get(f"{API}/history")).json()["entries"]
    answered = [e for e in entries if e["action"] == "appointment-answered"]
    assert [(e["actor"], e["details"]["professional"]) for e in answered] == [(PATIENT, DOCTOR)]
    assert "ACCEPTED" not in str(answered), "which answer is inside the envelope, not here"

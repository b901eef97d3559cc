"""The patient's screens' routes against a real server: record and masks, blocks (the
médecin traitant refused with its reason), consents, and the verified access history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from messaging.kinds.consent import Scope
from messaging.kinds.document import build_document
from messaging.types import Address
from tests.messaging.kinds.test_document import MESSAGE
from tests.support.webmail_world import (
    DOCTOR,
    OTHER,
    PATIENT,
    PHARMACY,
    WebmailWorld,
    sign_in,
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


async def _document_to(world: WebmailWorld, patient: str) -> str:
    doctor = Address.parse(DOCTOR)
    unlocked = await world.pli.accounts.unlock(doctor, world.passphrases[DOCTOR])
    message = replace(MESSAGE, sender=doctor, recipients=(Address.parse(patient),))
    raw = build_document(message, message_id="<doc-1@medecin.pli.test>", date=world.pli.clock.now())
    sent = await world.pli.delivery.send(doctor, unlocked.keys, (Address.parse(patient),), raw)
    return sent.envelope_id


async def test_blocking_a_professional_is_listed_undone_and_in_the_verified_history(
    world: WebmailWorld, client: httpx.AsyncClient
) -> None:
    session = await sign_in(world, client, PATIENT)
    csrf = {"X-CSRF-Token": session["csrf"]}
    assert (await client.get(f"{API}/blocks")).json() == {"treating_doctor": None, "blocked": []}
    without_csrf = await client.post(f"{API}/blocks", json={"professional": DOCTOR})
    assert without_csrf.status_code == 403
    assert (await client.get(f"{API}/blocks")).json()["blocked"] == [], "nothing changed"

    blocked = await client.post(f"{API}/blocks", json={"professional": DOCTOR}, headers=csrf)
    assert blocked.status_code == 201, blocked.text
    assert blocked.json()["blocked"] == [DOCTOR]
    assert Address.parse(DOCTOR) in await world.pli.patients.blocked(Address.parse(PATIENT))

    unblocked = await client.delete(f"{API}/blocks/{DOCTOR}", headers=csrf)
    assert unblocked.status_code == 200
    assert unblocked.json()["blocked"] == []

    history = (await client.get(f"{API}/history")).json()
    assert history["verified"] is True and history["problems"] == []
    actions = [(e["action"], e["subject"], e["actor"]) for e in history["entries"]]
    assert actions == [("blocked", DOCTOR, PATIENT), ("unblocked", DOCTOR, PATIENT)]


async def test_the_treating_doctor_cannot_be_blocked_and_the_reason_is_given(
    world: WebmailWorld, client: httpx.AsyncClient
) -> None:
    await world.pli.patients.declare_treating_doctor(Address.parse(PATIENT), Address.parse(DOCTOR))
    session = await sign_in(world, client, PATIENT)
    refused = await client.post(
        f"{API}/blocks", json={"professional": DOCTOR}, headers={"X-CSRF-Token": session["csrf"]}
    )
    assert refused.status_code == 422
    assert refused.headers["Pli-Rule"] == "block-treating-doctor"
    assert "médecin traitant" in refused.json()["detail"]
    listed = (await client.get(f"{API}/blocks")).json()
    assert listed == {"treating_doctor": DOCTOR, "blocked": []}
    history = (await client.get(f"{API}/history")).json()
    assert [e["action"] for e in history["entries"]] == ["block-refused"]
    assert history["verified"] is True


async def test_the_record_lists_documents_and_masks_them_from_chosen_professionals(
    world: WebmailWorld, client: httpx.AsyncClient
) -> None:
    document_id = await _document_to(world, PATIENT)
    session = await sign_in(world, client, PATIENT)
    csrf = {"X-CSRF-Token": session["csrf"]}
    [listed] = (await client.get(f"{API}/documents")).json()
    assert (listed["id"], listed["kind"], listed["from"]) == (document_id, "document", DOCTOR)
    assert listed["masked_from"] == []

    masked = await client.post(
        f"{API}/documents/{document_id}/mask", json={"professionals": [PHARMACY]}, headers=csrf
    )
    assert masked.status_code == 200, masked.text
    assert masked.json()["masked_from"] == [PHARMACY]
    author = await client.post(
        f"{API}/documents/{document_id}/mask", json={"professionals": [DOCTOR]}, headers=csrf
    )
    assert author.status_code == 422
    assert author.headers["Pli-Rule"] == "mask-author"
    [again] = (await client.get(f"{API}/documents")).json()
    assert again["masked_from"] == [PHARMACY], "the refused mask changed nothing"

    unmasked = await client.post(
        f"{API}/documents/{document_id}/mask",
        json={"professionals": [PHARMACY], "masked": False},
        headers=csrf,
    )
    assert unmasked.json()["masked_from"] == []
    history = (await client.get(f"{API}/history")).json()
    assert [e["action"] for e in history["entries"]] == ["document-sent", "masked", "unmasked"]
    assert history["verified"] is True


async def test_another_patients_document_cannot_be_masked(
    world: WebmailWorld, client: httpx.AsyncClient
) -> None:
    document_id = await _document_to(world, OTHER)
    session = await sign_in(world, client, PATIENT)
    refused = await client.post(
        f"{API}/documents/{document_id}/mask",
        json={"professionals": [PHARMACY]},
        headers={"X-CSRF-Token": session["csrf"]},
    )
    assert refused.status_code in (404, 422)
    assert (await client.get(f"{API}/documents")).json() == []
    assert await world.pli.patients.masks(Address.parse(OTHER)) == {}


async def test_a_consent_request_waits_for_the_patients_answer(
    world: WebmailWorld, client: httpx.AsyncClient
) -> None:
    doctor = Address.parse(DOCTOR)
    unlocked = await world.pli.accounts.unlock(doctor, world.passphrases[DOCTOR])
    request, _sent = await world.pli.patients.request_consent(
        doctor,
        unlocked.keys,
        Address.parse(PATIENT),
        scope=Scope.record(),
        purpose="Suivi après l'opération",
        duration_days=30,
    )
    await sign_in(world, client, PATIENT)
    consents = (await client.get(f"{API}/consents")).json()
    assert consents["grants"] == []
    [pending] = consents["pending"]
    assert (pending["id"], pending["professional"], pending["scope"]) == (
        request.request_id,
        DOCTOR,
        "record",
    )
    assert pending["purpose"] == "Suivi après l'opération"
    history = (await client.get(f"{API}/history")).json()
    assert "consent-requested" in [e["action"] for e in history["entries"]]


async def test_a_professionals_session_has_no_patient_screens(
    world: WebmailWorld, client: httpx.AsyncClient
) -> None:
    assert world.pli.webmail is not None
    await world.pli.webmail.set_preferences(
        Address.parse(DOCTOR), notify_email="sophie.martin@example.org", language="fr"
    )
    await sign_in(world, client, DOCTOR)
    for path in ("/blocks", "/history", "/documents", "/consents"):
        answer = await client.get(f"{API}{path}")
        assert answer.status_code == 403, path
        assert answer.headers["Pli-Rule"] == "not-a-patient"


async def test_the_patient_screens_need_a_session(client: httpx.AsyncClient) -> None:
    for path in ("/blocks", "/history", "/documents", "/consents"):
        assert (await client.get(f"{API}{path}")).status_code == 401, path

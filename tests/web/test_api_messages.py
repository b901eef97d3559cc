"""``/v1/messages``: typed sends, raw MIME, idempotency, uploads, per-recipient status.

Every refusal is checked for its status, its problem+json body and the field it names, and
for having stored nothing.
"""

from __future__ import annotations

import asyncio
import json

import crypto
from messaging.kinds.document import parse_document
from messaging.kinds.prescription import parse_prescription
from messaging.types import Address
from tests.messaging.kinds.samples import JEANNE, cda
from tests.web.api_fixtures import (
    APP,
    DOCTOR,
    PASSPHRASE,
    PATIENT,
    ApiEnv,
    document_metadata,
    pdf,
    prescription_json,
)

PROBLEM = "application/problem+json"


def key(name: str) -> dict[str, str]:
    return {"Idempotency-Key": name}


def fields(response: object) -> list[str]:
    body = response.json()  # type: ignore[attr-defined]
    return [e["field"] for e in body.get("errors", [])]


async def open_inbox(env: ApiEnv, address: str, uid: int = 1) -> tuple[bytes, str, str]:
    unlocked = await env.pli.accounts.unlock(Address.parse(address), PASSPHRASE)
    opened = await env.pli.delivery.open_message(
        unlocked.account.address, unlocked.keys, "INBOX", uid
    )
    return opened.raw, opened.provenance.value, opened.signature.value


async def inbox_size(env: ApiEnv, address: str) -> int:
    return len(await env.pli.delivery.list_messages(Address.parse(address), "INBOX"))


async def app_key(env: ApiEnv) -> crypto.SigningPublicKey:
    account = await env.pli.store.get_account(Address.parse(APP))
    assert account is not None
    return crypto.SigningPublicKey(account.signing_key)


NOTE = {"to": [DOCTOR], "subject": "Résultats", "body": "Bonjour"}


async def test_a_note_is_delivered_with_gateway_provenance_and_a_sent_copy(api: ApiEnv):
    response = await api.http.post(
        "/v1/messages/notes", json=NOTE, headers=await api.bearer() | key("n1")
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["provenance"] == "gateway"
    assert [(r["address"], r["status"]) for r in body["recipients"]] == [(DOCTOR, "delivered")]
    assert response.headers["location"] == f"/v1/messages/sent/{body['id']}"
    raw, provenance, signature = await open_inbox(api, DOCTOR)
    assert b"Bonjour" in raw
    assert (provenance, signature) == ("gateway", "valid")
    sent = await api.pli.delivery.list_messages(Address.parse(APP), "Sent")
    assert [m.envelope_id for m in sent] == [body["id"]]
    status = await api.http.get(f"/v1/messages/sent/{body['id']}", headers=await api.bearer())
    assert status.status_code == 200
    assert status.json()["recipients"][0]["status"] == "delivered"


async def test_the_gateway_header_names_the_api_client(api: ApiEnv):
    await api.http.post("/v1/messages/notes", json=NOTE, headers=await api.bearer() | key("g"))
    unlocked = await api.pli.accounts.unlock(Address.parse(DOCTOR), PASSPHRASE)
    opened = await api.pli.delivery.open_message(
        unlocked.account.address, unlocked.keys, "INBOX", 1
    )
    assert opened.gateway_peer == f"api:{api.client_id}"


async def test_a_prescription_is_signed_by_the_client_mailbox_key(api: ApiEnv):
    response = await api.http.post(
        "/v1/messages/prescriptions",
        json=prescription_json(),
        headers=await api.bearer("send:prescription") | key("p1"),
    )
    assert response.status_code == 201, response.text
    raw, provenance, _ = await open_inbox(api, PATIENT)
    assert provenance == "gateway"
    parsed = parse_prescription(raw, await app_key(api))
    assert parsed.prescription.items[0].medication == "Amoxicilline 1 g"


async def test_a_prescription_refuses_files_naming_the_part(api: ApiEnv):
    response = await api.http.post(
        "/v1/messages/prescriptions",
        data={"metadata": json.dumps(prescription_json())},
        files={"attachment": ("ordonnance.pdf", pdf(), "application/pdf")},
        headers=await api.bearer() | key("p2"),
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert fields(response) == ["attachment"]
    assert await inbox_size(api, PATIENT) == 0


async def test_a_document_builds_the_xdm_archive_and_mss_headers(api: ApiEnv):
    report = pdf("Compte rendu")
    metadata = document_metadata()
    metadata["documents"][0]["cda"] = "report-cda"  # type: ignore[index]
    response = await api.http.post(
        "/v1/messages/documents",
        data={"metadata": json.dumps(metadata)},
        files=[
            ("report", ("cr.pdf", report, "application/pdf")),
            ("report-cda", ("cr.xml", cda(JEANNE), "text/xml")),
        ],
        headers=await api.bearer("send:document") | key("d1"),
    )
    assert response.status_code == 201, response.text
    raw, _, _ = await open_inbox(api, DOCTOR)
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"X-MSS-CODECDA: 11488-4" in head
    assert b"X-MSS-INS: O" in head
    assert b"IHE_XDM.ZIP" in raw
    parsed = parse_document(raw)
    assert parsed.documents[0].pdf == report
    assert parsed.documents[0].title == "Compte rendu"


async def test_a_pdf_that_is_not_a_pdf_is_refused_naming_the_field(api: ApiEnv):
    response = await api.http.post(
        "/v1/messages/documents",
        data={"metadata": json.dumps(document_metadata())},
        files={"report": ("cr.pdf", b"MZ\x90\x00 this is not a pdf" * 40, "application/pdf")},
        headers=await api.bearer() | key("d2"),
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert fields(response) == ["report"]
    assert "application/pdf" in response.json()["detail"]
    assert await inbox_size(api, DOCTOR) == 0


async def test_a_document_naming_a_missing_part_is_refused(api: ApiEnv):
    response = await api.http.post(
        "/v1/messages/documents",
        data={"metadata": json.dumps(document_metadata(part="nowhere"))},
        files={"report": ("cr.pdf", pdf(), "application/pdf")},
        headers=await api.bearer() | key("d3"),
    )
    assert response.status_code == 422
    assert fields(response) == ["documents[0].pdf"]


async def test_an_oversize_upload_is_refused_with_413_and_nothing_stored(tmp_path, database_url):
    from tests.web.api_fixtures import make_env
    from web.api import ApiSettings

    small = ApiSettings(max_message_size=64 * 1024, max_request_overhead=1024, upload_dir=tmp_path)
    async for env in make_env(tmp_path, database_url, small):
        big = b"%PDF-1.4\n" + b"0" * (200 * 1024)
        response = await env.http.post(
            "/v1/messages/documents",
            data={"metadata": json.dumps(document_metadata())},
            files={"report": ("cr.pdf", big, "application/pdf")},
            headers=await env.bearer() | key("big"),
        )
        assert response.status_code == 413
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["title"] == "Request too large"
        assert await inbox_size(env, DOCTOR) == 0
        assert list(tmp_path.glob("pli-upload-*")) == []
        raw = b"From: x\r\n\r\n" + b"a" * (100 * 1024)
        response = await env.http.post(
            "/v1/messages/mime",
            params={"to": DOCTOR},
            content=raw,
            headers=await env.bearer() | key("big2") | {"Content-Type": "message/rfc822"},
        )
        assert response.status_code == 413


async def test_an_invalid_field_is_a_422_naming_it(api: ApiEnv):
    bad = prescription_json()
    bad["items"] = []
    response = await api.http.post(
        "/v1/messages/prescriptions", json=bad, headers=await api.bearer() | key("v1")
    )
    assert response.status_code == 422
    assert fields(response) == ["items"]
    bad = prescription_json()
    bad["prescriber"] = {**bad["prescriber"], "rpps": "10003578208"}  # type: ignore[dict-item]
    response = await api.http.post(
        "/v1/messages/prescriptions", json=bad, headers=await api.bearer() | key("v2")
    )
    assert response.status_code == 422
    assert fields(response) == ["prescriber"]
    assert "rpps-invalid" in response.json()["detail"]
    response = await api.http.post(
        "/v1/messages/notes",
        json={**NOTE, "to": ["not an address"]},
        headers=await api.bearer() | key("v3"),
    )
    assert fields(response) == ["to[0]"]
    response = await api.http.post(
        "/v1/messages/notes",
        json={**NOTE, "to": ["nobody@medecin.pli.test"]},
        headers=await api.bearer() | key("v4"),
    )
    assert response.status_code == 422
    assert response.json()["title"] == "Unknown recipient"
    assert fields(response) == ["to"]
    response = await api.http.post(
        "/v1/messages/notes", json={**NOTE, "colour": "red"}, headers=await api.bearer() | key("v5")
    )
    assert response.status_code == 422
    assert fields(response) == ["colour"]
    assert await inbox_size(api, DOCTOR) == 0


async def test_a_post_without_idempotency_key_is_refused(api: ApiEnv):
    response = await api.http.post("/v1/messages/notes", json=NOTE, headers=await api.bearer())
    assert response.status_code == 400
    assert fields(response) == ["Idempotency-Key"]


async def test_a_retry_with_the_same_key_replays_and_delivers_once(api: ApiEnv):
    headers = await api.bearer() | key("same")
    first = await api.http.post("/v1/messages/notes", json=NOTE, headers=headers)
    again = await api.http.post("/v1/messages/notes", json=NOTE, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert await inbox_size(api, DOCTOR) == 1


async def test_the_same_key_with_another_body_is_a_422(api: ApiEnv):
    headers = await api.bearer() | key("k")
    await api.http.post("/v1/messages/notes", json=NOTE, headers=headers)
    other = await api.http.post(
        "/v1/messages/notes", json={**NOTE, "body": "autre"}, headers=headers
    )
    assert other.status_code == 422
    assert other.headers["content-type"] == PROBLEM
    assert fields(other) == ["Idempotency-Key"]
    assert await inbox_size(api, DOCTOR) == 1


async def test_concurrent_duplicates_deliver_once(api: ApiEnv):
    headers = await api.bearer() | key("race")
    answers = await asyncio.gather(
        *(api.http.post("/v1/messages/notes", json=NOTE, headers=headers) for _ in range(5))
    )
    assert {a.status_code for a in answers} <= {201, 409}
    ids = {a.json()["id"] for a in answers if a.status_code == 201}
    assert len(ids) == 1
    assert await inbox_size(api, DOCTOR) == 1


async def test_keys_are_per_client(api: ApiEnv):
    other = await api.new_client(frozenset({"send:note"}))
    first = await api.http.post(
        "/v1/messages/notes", json=NOTE, headers=await api.bearer() | key("x")
    )
    token = await api.token(client_id=other.client.client_id, secret=other.secret)
    second = await api.http.post(
        "/v1/messages/notes", json=NOTE, headers={"Authorization": f"Bearer {token}"} | key("x")
    )
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]


async def test_raw_mime_is_delivered_when_from_is_the_client(api: ApiEnv):
    raw = (
        f"From: <{APP}>\r\nTo: <{DOCTOR}>\r\nSubject: brut\r\nMessage-ID: <m1@pli.test>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nCorps brut\r\n"
    ).encode()
    response = await api.http.post(
        "/v1/messages/mime",
        params={"to": DOCTOR},
        content=raw,
        headers=await api.bearer() | key("m1") | {"Content-Type": "message/rfc822"},
    )
    assert response.status_code == 201, response.text
    got, provenance, _ = await open_inbox(api, DOCTOR)
    assert got == raw
    assert provenance == "gateway"


async def test_raw_mime_from_someone_else_is_refused(api: ApiEnv):
    raw = f"From: <{DOCTOR}>\r\nTo: <{DOCTOR}>\r\nSubject: x\r\n\r\nforged\r\n".encode()
    response = await api.http.post(
        "/v1/messages/mime",
        params={"to": DOCTOR},
        content=raw,
        headers=await api.bearer() | key("m2") | {"Content-Type": "message/rfc822"},
    )
    assert response.status_code == 422
    assert fields(response) == ["From"]
    assert await inbox_size(api, DOCTOR) == 0


async def test_an_appointment_and_a_certificate_are_sent(api: ApiEnv):
    response = await api.http.post(
        "/v1/messages/appointments",
        json={
            "to": [PATIENT],
            "summary": "Consultation",
            "start": "2026-12-01T09:00:00+01:00",
            "end": "2026-12-01T09:30:00+01:00",
        },
        headers=await api.bearer() | key("a1"),
    )
    assert response.status_code == 201, response.text
    assert response.json()["kind"] == "appointment"
    p = prescription_json()
    response = await api.http.post(
        "/v1/messages/certificates",
        json={
            "to": [PATIENT],
            "issuer": p["prescriber"],
            "patient": p["patient"],
            "date": "2026-11-22",
            "title": "Certificat de non contre-indication",
            "statement": "Apte à la pratique du sport.",
        },
        headers=await api.bearer() | key("c1"),
    )
    assert response.status_code == 201, response.text
    assert response.json()["kind"] == "certificate"


async def test_a_daily_quota_is_enforced(api: ApiEnv):
    other = await api.new_client(frozenset({"send:note"}), daily_quota=1)
    token = await api.token(client_id=other.client.client_id, secret=other.secret)
    auth = {"Authorization": f"Bearer {token}"}
    assert (
        await api.http.post("/v1/messages/notes", json=NOTE, headers=auth | key("q1"))
    ).status_code == 201
    refused = await api.http.post("/v1/messages/notes", json=NOTE, headers=auth | key("q2"))
    assert refused.status_code == 429
    assert refused.json()["title"] == "Quota exceeded"
    assert int(refused.headers["retry-after"]) > 0


async def test_the_status_of_someone_elses_message_is_404(api: ApiEnv):
    response = await api.http.get("/v1/messages/sent/deadbeef", headers=await api.bearer())
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM


async def test_every_call_is_traced_without_content(api: ApiEnv):
    await api.http.post("/v1/messages/notes", json=NOTE, headers=await api.bearer() | key("t"))
    await api.app.state.api_trace.flush()
    trace = await api.pli.store.list_trace(api.client_id)
    calls = [t for t in trace if t.action == "api-call"]
    assert {(t.details["method"], t.details["route"], t.details["status"]) for t in calls} >= {
        ("POST", "/v1/messages/notes", "201")
    }
    assert all("Bonjour" not in json.dumps(t.details) for t in trace)

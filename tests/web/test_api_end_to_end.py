"""End to end with real servers: the API on uvicorn (port 0), the webhook worker, a real
webhook receiver (port 0), and the professional reading with the real ``pli read``.

An application sends a prescription and its PDF to a patient and a document to a
professional; the professional reads it; the application gets the delivery and read
receipts by webhook and verifies their signatures.
"""

from __future__ import annotations

import asyncio
import json

import httpx

from crypto.encoding import b64url_decode
from tests.support.cli import Pli as PliCommand
from tests.web.api_fixtures import (
    DOCTOR,
    PASSPHRASE,
    PATIENT,
    ApiEnv,
    document_metadata,
    pdf,
    prescription_json,
)
from tests.web.api_servers import Receiver, serving
from web.client import verify_webhook
from web.webhooks import WebhookWorker


async def test_an_application_sends_and_gets_signed_receipts_by_webhook(
    api: ApiEnv, database_url: str
):
    receiver = Receiver()
    stop = asyncio.Event()
    worker = asyncio.create_task(WebhookWorker(api.services).run(stop))
    try:
        async with serving(receiver) as hook_url, serving(api.app) as url:
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                token = await http.post(
                    "/v1/oauth/token",
                    data={"grant_type": "client_credentials"},
                    auth=(api.client_id, api.client.secret),
                )
                assert token.status_code == 200
                auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
                hook = await http.post(
                    "/v1/webhooks",
                    json={"url": hook_url, "events": ["message.delivered", "message.read"]},
                    headers=auth,
                )
                assert hook.status_code == 201
                prescription = await http.post(
                    "/v1/messages/prescriptions",
                    json=prescription_json([PATIENT]),
                    headers=auth | {"Idempotency-Key": "rx-1"},
                )
                assert prescription.status_code == 201, prescription.text
                scan = document_metadata([PATIENT], part="rx-pdf")
                scan["documents"][0].update(  # type: ignore[index]
                    {"title": "Ordonnance", "type_code": "57833-6"}
                )
                rx_pdf = await http.post(
                    "/v1/messages/documents",
                    data={"metadata": json.dumps(scan)},
                    files={"rx-pdf": ("ordonnance.pdf", pdf("Ordonnance"), "application/pdf")},
                    headers=auth | {"Idempotency-Key": "rx-1-pdf"},
                )
                assert rx_pdf.status_code == 201, rx_pdf.text
                report = await http.post(
                    "/v1/messages/documents",
                    data={"metadata": json.dumps(document_metadata([DOCTOR]))},
                    files={"report": ("cr.pdf", pdf("Compte rendu"), "application/pdf")},
                    headers=auth | {"Idempotency-Key": "cr-1"},
                )
                assert report.status_code == 201, report.text
                await receiver.wait_for(3)  # three delivered events

                # The professional reads with the real command, in another process.
                command = PliCommand(home=api.pli.settings.home, database_url=database_url)
                shown = await asyncio.to_thread(
                    command.run, "read", DOCTOR, "1", stdin=f"{PASSPHRASE}\n"
                )
                assert "Type:        document" in shown.stdout
                assert "Provenance:  gateway" in shown.stdout
                assert f"Signature:   valid (operator key, received from api:{api.client_id})" in (
                    shown.stdout
                )
                await receiver.wait_for(4)  # and the read event

                key = (await http.get("/v1/webhooks/signing-key")).json()["key"]
    finally:
        stop.set()
        await asyncio.wait_for(worker, 10)
    events = [verify_webhook(body, h, b64url_decode(key)) for h, body in receiver.requests]
    delivered = [e for e in events if e["event"] == "message.delivered"]
    read = [e for e in events if e["event"] == "message.read"]
    assert sorted(e["data"]["recipient"] for e in delivered) == sorted(  # type: ignore[index]
        [PATIENT, PATIENT, DOCTOR]
    )
    assert [e["data"]["recipient"] for e in read] == [DOCTOR]  # type: ignore[index]
    assert read[0]["data"]["envelope_id"] == report.json()["id"]  # type: ignore[index]

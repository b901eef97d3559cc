"""Webhooks: registration, signed deliveries to a real receiver, retries with back-off, the
delivery log, read and incoming-message events."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import pytest

from crypto.encoding import b64url_decode
from messaging.types import Address
from tests.web.api_fixtures import DOCTOR, PASSPHRASE, ApiEnv
from tests.web.api_servers import Receiver, serving
from web.client import WebhookRefused, verify_webhook
from web.webhooks import WebhookWorker

PROBLEM = "application/problem+json"
NOTE = {"to": [DOCTOR], "subject": "Résultats", "body": "Bonjour"}


@contextlib.asynccontextmanager
async def worker(env: ApiEnv) -> AsyncIterator[WebhookWorker]:
    stop = asyncio.Event()
    running = WebhookWorker(env.services)
    task = asyncio.create_task(running.run(stop))
    try:
        yield running
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def register(env: ApiEnv, url: str, events: list[str]) -> dict[str, object]:
    response = await env.http.post(
        "/v1/webhooks", json={"url": url, "events": events}, headers=await env.bearer("webhooks")
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def signing_key(env: ApiEnv) -> bytes:
    body = (await env.http.get("/v1/webhooks/signing-key")).json()
    assert body["algorithm"] == "Ed25519"
    return b64url_decode(body["key"])


async def test_register_list_and_delete(api: ApiEnv):
    hook = await register(api, "https://hooks.example/pli", ["message.delivered"])
    listed = (await api.http.get("/v1/webhooks", headers=await api.bearer())).json()
    assert [h["id"] for h in listed["webhooks"]] == [hook["id"]]
    gone = await api.http.delete(f"/v1/webhooks/{hook['id']}", headers=await api.bearer())
    assert gone.status_code == 204
    again = await api.http.delete(f"/v1/webhooks/{hook['id']}", headers=await api.bearer())
    assert again.status_code == 404
    assert again.headers["content-type"] == PROBLEM


@pytest.mark.parametrize(
    "url", ["ftp://hooks.example/x", "https://user:pw@hooks.example/x", "https:///nohost"]
)
async def test_a_bad_url_is_refused_naming_it(api: ApiEnv, url: str):
    response = await api.http.post(
        "/v1/webhooks", json={"url": url, "events": ["message.read"]}, headers=await api.bearer()
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "url"


async def test_an_unknown_event_is_refused_naming_it(api: ApiEnv):
    response = await api.http.post(
        "/v1/webhooks",
        json={"url": "https://hooks.example/x", "events": ["message.eaten"]},
        headers=await api.bearer(),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "events.0"


async def test_delivered_and_read_events_reach_a_real_receiver_signed(api: ApiEnv):
    receiver = Receiver(fail_first=2)
    async with serving(receiver) as url:
        await register(api, url + "/hook", ["message.delivered", "message.read"])
        async with worker(api):
            sent = await api.http.post(
                "/v1/messages/notes",
                json=NOTE,
                headers=await api.bearer() | {"Idempotency-Key": "w1"},
            )
            assert sent.status_code == 201
            await receiver.wait_for(1)
            doctor = Address.parse(DOCTOR)
            await api.pli.store.set_flags(doctor, "INBOX", 1, frozenset({"\\Seen"}))
            await receiver.wait_for(2)
    key = await signing_key(api)
    events = [verify_webhook(body, headers, key) for headers, body in receiver.requests]
    assert [e["event"] for e in events] == ["message.delivered", "message.read"]
    envelope = sent.json()["id"]
    assert all(e["data"]["envelope_id"] == envelope for e in events)  # type: ignore[index]
    assert receiver.attempts == 4  # two 500s, retried with back-off, then two deliveries
    status = await api.http.get(f"/v1/messages/sent/{envelope}", headers=await api.bearer())
    assert status.json()["recipients"][0]["status"] == "read"
    log = (await api.http.get("/v1/webhooks/deliveries", headers=await api.bearer())).json()
    states = {d["event"]: (d["state"], d["attempts"]) for d in log["deliveries"]}
    assert states["message.delivered"] == ("delivered", 3)
    assert states["message.read"][0] == "delivered"
    headers, body = receiver.requests[0]
    with pytest.raises(WebhookRefused):
        verify_webhook(body.replace(b"delivered", b"bounced!!"), headers, key)
    with pytest.raises(WebhookRefused):
        verify_webhook(body, headers, key, now=int(headers["pli-webhook-timestamp"]) + 3600)


async def test_incoming_messages_and_receipts_are_events(api: ApiEnv):
    from messaging.mdn import build_mdn, read_receipt

    receiver = Receiver()
    async with serving(receiver) as url:
        await register(api, url, ["message.received", "receipt.received"])
        async with worker(api) as running:
            await asyncio.sleep(0.2)  # the worker subscribes to the client's inbox
            running.wake()
            await asyncio.sleep(0.2)
            doctor = Address.parse(DOCTOR)
            unlocked = await api.pli.accounts.unlock(doctor, PASSPHRASE)
            app = api.client.client.address
            mdn = read_receipt(reader=doctor, notify=app, original_message_id="<x@pli.test>")
            raw = build_mdn(mdn, message_id="<mdn1@pli.test>", date=api.pli.clock.now())
            await api.pli.delivery.send(doctor, unlocked.keys, [app], raw)
            await receiver.wait_for(2)
    events = sorted(json.loads(body)["event"] for _, body in receiver.requests)
    assert events == ["message.received", "receipt.received"]
    listed = await api.http.get("/v1/mailbox/receipts", headers=await api.bearer())
    assert listed.status_code == 200
    receipts = listed.json()["receipts"]
    assert receipts[0]["report"] == "disposition-notification"
    assert receipts[0]["original_message_id"] == "<x@pli.test>"

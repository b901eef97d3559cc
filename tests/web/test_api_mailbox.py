"""``/v1/mailbox``: the client's own folders, messages, flags and key bundle."""

from __future__ import annotations

import pytest

import crypto
from crypto.encoding import b64url_decode
from messaging.types import Address
from tests.web.api_fixtures import APP, DOCTOR, PASSPHRASE, ApiEnv

PROBLEM = "application/problem+json"


async def doctor_writes(env: ApiEnv, subject: str = "Réponse") -> None:
    doctor = Address.parse(DOCTOR)
    unlocked = await env.pli.accounts.unlock(doctor, PASSPHRASE)
    raw = f"From: <{DOCTOR}>\r\nTo: <{APP}>\r\nSubject: {subject}\r\n\r\nMerci\r\n".encode()
    await env.pli.delivery.send(doctor, unlocked.keys, [Address.parse(APP)], raw)


async def test_folders_list_and_fetch_a_message(api: ApiEnv):
    await doctor_writes(api)
    headers = await api.bearer("read:mailbox")
    folders = (await api.http.get("/v1/mailbox/folders", headers=headers)).json()["folders"]
    inbox = next(f for f in folders if f["name"] == "INBOX")
    assert (inbox["messages"], inbox["unseen"]) == (1, 1)
    listed = (await api.http.get("/v1/mailbox/folders/INBOX/messages", headers=headers)).json()
    [message] = listed["messages"]
    assert (message["sender"], message["provenance"], message["flags"]) == (DOCTOR, "e2e", [])
    fetched = await api.http.get("/v1/mailbox/folders/INBOX/messages/1", headers=headers)
    assert fetched.status_code == 200
    assert fetched.headers["content-type"] == "message/rfc822"
    assert fetched.headers["pli-signature"] == "valid"
    assert fetched.headers["pli-provenance"] == "e2e"
    assert b"Merci" in fetched.content
    page = await api.http.get(
        "/v1/mailbox/folders/INBOX/messages", params={"after_uid": 1}, headers=headers
    )
    assert page.json()["messages"] == []


async def test_flags_are_added_and_removed(api: ApiEnv):
    await doctor_writes(api)
    headers = await api.bearer("read:mailbox")
    url = "/v1/mailbox/folders/INBOX/messages/1/flags"
    added = await api.http.post(url, json={"add": ["\\Seen", "$Done"]}, headers=headers)
    assert added.status_code == 200
    assert added.json()["flags"] == ["$Done", "\\Seen"]
    removed = await api.http.post(url, json={"remove": ["$Done"]}, headers=headers)
    assert removed.json()["flags"] == ["\\Seen"]
    bad = await api.http.post(url, json={"add": ["bad flag"]}, headers=headers)
    assert bad.status_code == 422
    assert bad.headers["content-type"] == PROBLEM
    assert bad.json()["errors"][0]["field"] == "add[0]"


async def test_unknown_folders_and_messages_are_404(api: ApiEnv):
    headers = await api.bearer("read:mailbox")
    for url in ("/v1/mailbox/folders/Nowhere/messages", "/v1/mailbox/folders/INBOX/messages/9"):
        response = await api.http.get(url, headers=headers)
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM


async def test_the_key_bundle_opens_with_the_client_secret_only(api: ApiEnv):
    body = (await api.http.get("/v1/mailbox/key-bundle", headers=await api.bearer())).json()
    assert body["address"] == APP
    limits = crypto.Argon2Limits(body["opslimit"], body["memlimit"])
    derived = crypto.derive_keys(api.client.secret, b64url_decode(body["salt"]), limits)
    keys = crypto.open_bundle(b64url_decode(body["sealed_bundle"]), derived.bundle_key)
    account = await api.pli.store.get_account(Address.parse(APP))
    assert account is not None
    assert keys.signing_public.raw == account.signing_key
    wrong = crypto.derive_keys("not the secret", b64url_decode(body["salt"]), limits)
    with pytest.raises(crypto.BundleError):
        crypto.open_bundle(b64url_decode(body["sealed_bundle"]), wrong.bundle_key)
    refused = await api.http.get("/v1/mailbox/key-bundle", headers=await api.bearer("send:note"))
    assert refused.status_code == 403

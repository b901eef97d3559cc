"""The Python sealing client against a real server (uvicorn on port 0): it seals on the
caller's side, the recipient opens an e2e message with a valid signature, and a key whose
transparency proof fails is refused before anything is sent."""

from __future__ import annotations

import json

import httpx
import pytest

import crypto
from crypto.encoding import b64url_encode
from messaging.types import Address
from pli.wiring import log_id
from tests.web.api_fixtures import APP, DOCTOR, PASSPHRASE, ApiEnv
from tests.web.api_servers import serving
from web.client import KeyRefused, SealingClient

MESSAGE = (
    f"From: <{APP}>\r\nTo: <{DOCTOR}>\r\nSubject: scellé chez le client\r\n"
    "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nRésultat normal.\r\n"
).encode()


def client_for(env: ApiEnv, url: str, **kw: object) -> SealingClient:
    options: dict[str, object] = {
        "client_id": env.client_id,
        "client_secret": env.client.secret,
        "log_key": env.pli.secrets.log_key.public.raw,
        "log_id": log_id(env.pli.settings),
    }
    options.update(kw)
    return SealingClient(url, **options)  # type: ignore[arg-type]


async def test_the_sealing_client_sends_e2e_and_the_recipient_opens_it_signed(api: ApiEnv):
    async with serving(api.app) as url, client_for(api, url) as client:
        answer = await client.send([DOCTOR], MESSAGE)
    assert answer["provenance"] == "e2e"
    doctor = Address.parse(DOCTOR)
    unlocked = await api.pli.accounts.unlock(doctor, PASSPHRASE)
    opened = await api.pli.delivery.open_message(doctor, unlocked.keys, "INBOX", 1)
    assert opened.raw == MESSAGE
    assert opened.provenance.value == "e2e"
    assert opened.signature.value == "valid"
    assert opened.signer == APP
    sent = await api.pli.delivery.list_messages(Address.parse(APP), "Sent")
    assert [m.envelope_id for m in sent] == [answer["id"]]


class _SwapKeys(httpx.AsyncBaseTransport):
    """A hostile server: hands out another encryption key for every mailbox."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner
        self.swapped = 0

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if not request.url.path.startswith("/v1/directory/mailboxes/"):
            return response
        await response.aread()
        await response.aclose()
        body = json.loads(response.content)
        if body.get("keys"):
            body["keys"]["encryption_key"] = b64url_encode(
                crypto.generate_keys().encryption_public.raw
            )
            self.swapped += 1
        return httpx.Response(response.status_code, json=body)


async def test_a_key_whose_proof_fails_is_refused_and_nothing_is_sent(api: ApiEnv):
    async with serving(api.app) as url:
        hostile = _SwapKeys(httpx.AsyncHTTPTransport())
        http = httpx.AsyncClient(transport=hostile, base_url=url)
        async with client_for(api, url, http=http) as client:
            with pytest.raises(KeyRefused) as refused:
                await client.send([DOCTOR], MESSAGE)
        await http.aclose()
        assert hostile.swapped == 1
        assert refused.value.address == DOCTOR
        assert "key-mismatch" in refused.value.reason or "not the logged" in refused.value.reason
        forged_log = crypto.generate_signing_key().public.raw
        async with client_for(api, url, log_key=forged_log) as client:
            with pytest.raises(KeyRefused):
                await client.send([DOCTOR], MESSAGE)
    assert await api.pli.delivery.list_messages(Address.parse(DOCTOR), "INBOX") == []

"""Sign-in codes by SMS: ``pli`` wired from its settings to a real Kannel sms_gateway.

A patient registers a mobile phone in the settings; from then on the one-time code of a
sign-in goes there by SMS (through smsbox and bearerbox to the phone network) and no longer
to the personal e-mail address. A server without a sms_gateway, or a number that is not E.164,
refuses the phone and keeps the preferences as they were."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

import crypto
from messaging.types import Address
from messaging.webmail import Preferences
from tests.support.kannel import KannelGateway
from tests.support.scan import tables_containing
from tests.support.webmail_world import (
    PATIENT,
    WebmailWorld,
    b64,
    sign_in,
    unb64,
    webmail_world,
)

PHONE = "+33612345678"


@pytest.fixture
async def world(
    tmp_path: Path, database_url: str, sms_gateway: KannelGateway
) -> AsyncIterator[WebmailWorld]:
    async with webmail_world(tmp_path, database_url, sms=sms_gateway) as started:
        yield started


async def _start_login(world: WebmailWorld, client: httpx.AsyncClient) -> httpx.Response:
    parameters = (await client.post("/webmail/api/prelogin", json={"address": PATIENT})).json()
    derived = crypto.derive_keys(
        world.passphrases[PATIENT],
        unb64(parameters["salt"]),
        crypto.Argon2Limits(parameters["opslimit"], parameters["memlimit"]),
    )
    return await client.post(
        "/webmail/api/login", json={"address": PATIENT, "auth_key": b64(derived.auth_key.raw)}
    )


async def test_after_registering_a_phone_the_code_comes_by_sms(
    world: WebmailWorld, sms_gateway: KannelGateway
) -> None:
    async with world.client() as client:
        session = await sign_in(world, client, PATIENT)  # by e-mail: no phone yet
        assert session["sms_codes"] is True
        assert session["notify_phone"] is None
        saved = await client.put(
            "/webmail/api/preferences",
            json={
                "language": "fr",
                "notify_email": "camille.durand@example.org",
                "notify_phone": PHONE,
            },
            headers={"X-CSRF-Token": session["csrf"]},
        )
        assert saved.status_code == 200, saved.text
        assert saved.json()["notify_phone"] == PHONE
    mails_before = len(world.sink.received)
    async with world.client() as client:
        login = await _start_login(world, client)
        assert login.status_code == 200, login.text
        assert login.json()["sent_to"] == "+33•••••78"
        sms = await sms_gateway.phones.wait_for(PHONE)
        found = re.search(r"\b(\d{6})\b", sms.text)
        assert found is not None, sms.text
        assert sms.text.startswith("Pli : votre code de connexion est")
        assert len(world.sink.received) == mails_before, "no code by e-mail any more"
        done = await client.post(
            "/webmail/api/login/code",
            json={"ticket": login.json()["ticket"], "code": found.group(1)},
        )
        assert done.status_code == 200, done.text
        # Like every code, it is stored only as a keyed hash.
        assert await tables_containing(world.database_url, [found.group(1).encode()]) == []


async def test_a_number_that_is_not_e164_is_refused_and_nothing_changes(
    world: WebmailWorld, sms_gateway: KannelGateway
) -> None:
    async with world.client() as client:
        session = await sign_in(world, client, PATIENT)
        refused = await client.put(
            "/webmail/api/preferences",
            json={"language": "en", "notify_email": None, "notify_phone": "06 12 34 56 78"},
            headers={"X-CSRF-Token": session["csrf"]},
        )
        assert refused.status_code == 422
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["pli-rule"] == "notice-invalid-destination"
        after = (await client.get("/webmail/api/session")).json()
    assert (after["language"], after["notify_email"], after["notify_phone"]) == (
        "fr",
        "camille.durand@example.org",
        None,
    )
    assert sms_gateway.phones.received == []


async def test_without_an_sms_gateway_a_phone_is_refused(tmp_path: Path, database_url: str) -> None:
    async with (
        webmail_world(tmp_path, database_url) as world,
        world.client() as client,
    ):
        session = await sign_in(world, client, PATIENT)
        assert session["sms_codes"] is False, "the settings screen offers no phone"
        refused = await client.put(
            "/webmail/api/preferences",
            json={"language": "fr", "notify_email": None, "notify_phone": PHONE},
            headers={"X-CSRF-Token": session["csrf"]},
        )
        assert refused.status_code == 409
        assert refused.headers["pli-rule"] == "sms-unavailable"
        after = (await client.get("/webmail/api/session")).json()
        assert (after["notify_email"], after["notify_phone"]) == (
            "camille.durand@example.org",
            None,
        )


async def test_a_phone_left_from_a_removed_gateway_does_not_lock_the_patient_out(
    tmp_path: Path, database_url: str
) -> None:
    async with (
        webmail_world(tmp_path, database_url) as world,
        world.client() as client,
    ):
        assert world.pli.webmail_store is not None
        await world.pli.webmail_store.set_preferences(
            Preferences(Address.parse(PATIENT), "camille.durand@example.org", "fr", PHONE)
        )
        session = await sign_in(world, client, PATIENT)  # the code came by e-mail
        assert session["notify_phone"] == PHONE
        assert session["sms_codes"] is False

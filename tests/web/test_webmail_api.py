"""The webmail's HTTP API against a real server: sign-in by auth key and one-time code,
sessions, CSRF, isolation between patients, client-sealed sending, settings."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

import crypto
from messaging import Draft, build_message, parse_message
from messaging.types import Address, CredentialKind
from tests.support.scan import tables_containing
from tests.support.webmail_world import (
    DOCTOR,
    OTHER,
    PATIENT,
    REMOTE,
    WebmailWorld,
    b64,
    sign_in,
    unb64,
    webmail_world,
)


@pytest.fixture
async def world(tmp_path: Path, database_url: str) -> AsyncIterator[WebmailWorld]:
    async with webmail_world(tmp_path, database_url) as started:
        yield started


@pytest.fixture
async def client(world: WebmailWorld) -> AsyncIterator[httpx.AsyncClient]:
    async with world.client() as c:
        yield c


async def _doctor_writes(world: WebmailWorld, to: str, text: str) -> str:
    unlocked = await world.pli.accounts.unlock(Address.parse(DOCTOR), world.passphrases[DOCTOR])
    raw = build_message(
        Draft(
            sender=Address.parse(DOCTOR),
            recipients=(Address.parse(to),),
            subject="Compte rendu",
            body=text,
        ),
        message_id="<cr-1@medecin.pli.test>",
        date=world.pli.clock.now(),
    )
    sent = await world.pli.delivery.send(
        Address.parse(DOCTOR), unlocked.keys, (Address.parse(to),), raw
    )
    return sent.envelope_id


# -- sign-in ---------------------------------------------------------------------------------


async def test_prelogin_of_an_unknown_address_looks_like_a_known_one(
    client: httpx.AsyncClient,
) -> None:
    known = (await client.post("/webmail/api/prelogin", json={"address": PATIENT})).json()
    unknown = await client.post(
        "/webmail/api/prelogin", json={"address": "nobody@patient.pli.test"}
    )
    again = await client.post("/webmail/api/prelogin", json={"address": "nobody@patient.pli.test"})
    assert unknown.status_code == 200
    assert set(unknown.json()) == set(known) == {"salt", "opslimit", "memlimit"}
    assert len(unb64(unknown.json()["salt"])) == len(unb64(known["salt"])) == 16
    assert (unknown.json()["opslimit"], unknown.json()["memlimit"]) == (
        known["opslimit"],
        known["memlimit"],
    )
    assert unknown.json() == again.json(), "a stable fake, not a fresh random salt each time"
    assert unknown.json()["salt"] != known["salt"]


async def test_sign_in_with_auth_key_and_code_opens_the_bundle_in_the_client(
    world: WebmailWorld, client: httpx.AsyncClient
) -> None:
    session = await sign_in(world, client, PATIENT)
    assert session["address"] == PATIENT
    assert session["credential"] == "passphrase"
    parameters = (await client.post("/webmail/api/prelogin", json={"address": PATIENT})).json()
    derived = crypto.derive_keys(
        world.passphrases[PATIENT],
        unb64(parameters["salt"]),
        crypto.Argon2Limits(parameters["opslimit"], parameters["memlimit"]),
    )
    keys = crypto.open_bundle(unb64(session["bundle"]), derived.bundle_key)
    assert b64(keys.encryption_public.raw) == session["encryption_key"]
    # The code mail goes to the personal address and says nothing but the code.
    assert world.sink.received[-1].rcpt_tos == ["camille.durand@example.org"]


async def test_the_session_cookie_is_secure_httponly_strict_and_short_lived(
    world: WebmailWorld, client: httpx.AsyncClient
) -> None:
    parameters = (await client.post("/webmail/api/prelogin", json={"address": PATIENT})).json()
    derived = crypto.derive_keys(
        world.passphrases[PATIENT],
        unb64(parameters["salt"]),
        crypto.Argon2Limits(parameters["opslimit"], parameters["memlimit"]),
    )
    login = await client.post(
        "/webmail/api/login", json={"address": PATIENT, "auth_key": b64(derived.auth_key.raw)}
    )
    code = await world.wait_for_code(PATIENT, 0)
    done = await client.post(
        "/webmail/api/login/code", json={"ticket": login.json()["ticket"], "code": code}
    )
    cookie = done.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"secure", "httponly", "samesite", "path", "max-age"} <= attributes
    assert "samesite=strict" in cookie.lower()
    assert "path=/webmail" in cookie.lower()
    max_age = int(cookie.lower().split("max-age=")[1].split(";")[0])
    assert 0 < max_age <= 8 * 3600
    # Stored hashed: the token itself is nowhere in the database.
    token = done.cookies["pli_session"].encode()
    assert await tables_containing(world.database_url, [token]) == []


async def test_a_wrong_auth_key_is_refused_and_sends_no_code(
    world: WebmailWorld, client: httpx.AsyncClient
) -> None:
    wrong = await client.post(
        "/webmail/api/login", json={"address": PATIENT, "auth_key": b64(b"\x01" * 32)}
    )
    unknown = await client.post(
        "/webmail/api/login",
        json={"address": "nobody@patient.pli.test", "auth_key": b64(b"\x01" * 32)},
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.headers["content-type"] == "application/problem+json"
    assert wrong.json()["detail"] == unknown.json()["detail"]
    assert world.sink.received == []


async def test_sign_in_attempts_are_rate_limited_per_account(client: httpx.AsyncClient) -> None:
    answers = [
        await client.post(
            "/webmail/api/login", json={"address": OTHER, "auth_key": b64(b"\x02" * 32)}
        )
        for _ in range(12)
    ]
    assert [a.status_code for a in answers] == [401] * 10 + [429, 429]
    assert int(answers[-1].headers["retry-after"]) >= 1


async def test_a_code_dies_after_five_wrong_tries_even_with_the_right_one_next(
    world: WebmailWorld, client: httpx.AsyncClient
) -> None:
    parameters = (await client.post("/webmail/api/prelogin", json={"address": PATIENT})).json()
    derived = crypto.derive_keys(
        world.passphrases[PATIENT],
        unb64(parameters["salt"]),
        crypto.Argon2Limits(parameters["opslimit"], parameters["memlimit"]),
    )
    login = await client.post(
        "/webmail/api/login", json={"address": PATIENT, "auth_key": b64(derived.auth_key.raw)}
    )
    ticket = login.json()["ticket"]
    code = await world.wait_for_code(PATIENT, 0)
    wrong = "000000" if code != "000000" else "111111"
    left = []
    for _ in range(5):
        answer = await client.post(
            "/webmail/api/login/code", json={"ticket": ticket, "code": wrong}
        )
        assert answer.status_code == 401
        left.append(answer.headers["pli-code-tries-left"])
    assert left == ["4", "3", "2", "1", "0"]
    late = await client.post("/webmail/api/login/code", json={"ticket": ticket, "code": code})
    assert late.status_code == 401
    assert "pli_session" not in late.cookies


# -- sessions and CSRF -------------------------------------------------------------------------


async def test_without_a_session_everything_is_401(client: httpx.AsyncClient) -> None:
    for method, path in (
        ("GET", "/webmail/api/session"),
        ("GET", "/webmail/api/messages"),
        ("GET", "/webmail/api/messages/00/envelope"),
        ("POST", "/webmail/api/send"),
    ):
        answer = await client.request(method, path)
        assert answer.status_code == 401, (method, path)


async def test_unsafe_requests_without_or_with_a_stale_csrf_token_are_refused(
    world: WebmailWorld, client: httpx.AsyncClient
) -> None:
    first = await sign_in(world, client, PATIENT)
    stale = first["csrf"]
    body = {"language": "en", "notify_email": "camille.durand@example.org"}
    missing = await client.put("/webmail/api/preferences", json=body)
    assert missing.status_code == 403
    # A new sign-in: the old session's token is stale for the new session.
    await client.post("/webmail/api/logout", headers={"X-CSRF-Token": stale})
    second = await sign_in(world, client, PATIENT)
    assert second["csrf"] != stale
    refused = await client.put(
        "/webmail/api/preferences", json=body, headers={"X-CSRF-Token": stale}
    )
    assert refused.status_code == 403
    assert (await client.get("/webmail/api/session")).json()["language"] == "fr", "nothing changed"
    accepted = await client.put(
        "/webmail/api/preferences", json=body, headers={"X-CSRF-Token": second["csrf"]}
    )
    assert accepted.status_code == 200
    assert (await client.get("/webmail/api/session")).json()["language"] == "en"


async def test_logout_ends_the_session_on_the_server(
    world: WebmailWorld, client: httpx.AsyncClient
) -> None:
    session = await sign_in(world, client, PATIENT)
    assert (
        await client.post("/webmail/api/logout", headers={"X-CSRF-Token": session["csrf"]})
    ).status_code == 200
    assert (await client.get("/webmail/api/session")).status_code == 401


# -- the mailbox -------------------------------------------------------------------------------


async def test_a_patient_reads_the_envelope_and_another_patient_gets_404(
    world: WebmailWorld, tmp_path: Path
) -> None:
    envelope_id = await _doctor_writes(world, PATIENT, "Bonjour, voici vos résultats.")
    async with world.client() as patient, world.client() as other:
        await sign_in(world, patient, PATIENT)
        session = await sign_in(world, other, OTHER)
        listing = (await patient.get("/webmail/api/messages")).json()
        assert [m["id"] for m in listing] == [envelope_id]
        assert listing[0]["from"] == DOCTOR and listing[0]["provenance"] == "e2e"
        record = (await patient.get(f"/webmail/api/messages/{envelope_id}")).json()
        envelope = (await patient.get(f"/webmail/api/messages/{envelope_id}/envelope")).content
        unlocked = await world.pli.accounts.unlock(
            Address.parse(PATIENT), world.passphrases[PATIENT]
        )
        plaintext, _opened = crypto.open_bytes(envelope, unb64(record["slot"]), unlocked.keys)
        assert "voici vos résultats" in parse_message(plaintext).body
        for method, path in (
            ("GET", f"/webmail/api/messages/{envelope_id}"),
            ("GET", f"/webmail/api/messages/{envelope_id}/envelope"),
            ("POST", f"/webmail/api/messages/{envelope_id}/seen"),
        ):
            answer = await other.request(
                method, path, json={"seen": True}, headers={"X-CSRF-Token": session["csrf"]}
            )
            assert answer.status_code == 404, (method, path)
        assert (await other.get("/webmail/api/messages")).json() == []


async def test_a_message_sealed_by_the_client_is_delivered_and_opens_for_the_doctor(
    world: WebmailWorld,
) -> None:
    # A patient answers a professional (the patient rules refuse a new thread to a doctor):
    # the envelope continues the doctor's thread.
    first = await _doctor_writes(world, PATIENT, "Bonjour, comment allez-vous ?")
    thread = (await world.pli.store.find_message(Address.parse(PATIENT), first)).record.thread_id
    async with world.client() as client:
        session = await sign_in(world, client, PATIENT)
        unlocked = await world.pli.accounts.unlock(
            Address.parse(PATIENT), world.passphrases[PATIENT]
        )
        doctor_keys = await world.pli.keys.lookup(Address.parse(DOCTOR))
        assert doctor_keys is not None
        raw = build_message(
            Draft(
                sender=Address.parse(PATIENT),
                recipients=(Address.parse(DOCTOR),),
                subject="Question",
                body="Faut-il continuer le traitement ?",
            ),
            message_id="<q-1@patient.pli.test>",
            date=world.pli.clock.now(),
        )
        header = crypto.RoutingHeader(
            envelope_id="ab" * 16,
            thread_id=thread,
            kind="note",
            sender=PATIENT,
            recipients=(DOCTOR,),
            size=len(raw),
            date=world.pli.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            provenance="e2e",
            signer=unlocked.keys.signing_key.public,
        )
        sink = io.BytesIO()
        result = crypto.seal_envelope(
            header,
            io.BytesIO(raw),
            sink,
            signer=unlocked.keys.signing_key,
            recipients=[
                crypto.EncryptionPublicKey(doctor_keys.encryption_key),
                unlocked.keys.encryption_public,
            ],
        )
        body = {
            "envelope": b64(sink.getvalue()),
            "slots": {DOCTOR: b64(result.slots[0])},
            "sent_slot": b64(result.slots[1]),
        }
        csrf = {"X-CSRF-Token": session["csrf"]}
        sent = await client.post("/webmail/api/send", json=body, headers=csrf)
        assert sent.status_code == 201, sent.text
        doctor = await world.pli.accounts.unlock(Address.parse(DOCTOR), world.passphrases[DOCTOR])
        opened = await world.pli.delivery.open_message(
            Address.parse(DOCTOR), doctor.keys, "INBOX", 1
        )
        assert opened.signature.value == "valid"
        assert "continuer le traitement" in parse_message(opened.raw).body
        sent_box = (await client.get("/webmail/api/messages?folder=Sent")).json()
        assert [m["id"] for m in sent_box] == ["ab" * 16]
        again = await client.post("/webmail/api/send", json=body, headers=csrf)
        assert again.status_code in {409, 422}, "the same envelope id is not delivered twice"


async def test_a_refused_send_says_why_and_stores_nothing(world: WebmailWorld) -> None:
    async with world.client() as client:
        session = await sign_in(world, client, PATIENT)
        unlocked = await world.pli.accounts.unlock(
            Address.parse(PATIENT), world.passphrases[PATIENT]
        )
        remote = await world.pli.keys.lookup(Address.parse(REMOTE))
        assert remote is not None
        raw = b"Subject: x\r\n\r\nbonjour\r\n"
        header = crypto.RoutingHeader(
            envelope_id="ef" * 16,
            thread_id="ef" * 16,
            kind="note",
            sender=PATIENT,
            recipients=(REMOTE,),
            size=len(raw),
            date=world.pli.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            provenance="e2e",
            signer=unlocked.keys.signing_key.public,
        )
        envelope, result = crypto.seal_bytes(
            header,
            raw,
            signer=unlocked.keys.signing_key,
            recipients=[crypto.EncryptionPublicKey(remote.encryption_key)],
        )
        answer = await client.post(
            "/webmail/api/send",
            json={"envelope": b64(envelope), "slots": {REMOTE: b64(result.slots[0])}},
            headers={"X-CSRF-Token": session["csrf"]},
        )
        assert answer.status_code == 422
        assert answer.headers["pli-rule"] == "unknown-recipient"
        assert REMOTE in answer.json()["detail"]
        assert (await client.get("/webmail/api/messages?folder=Sent")).json() == []


# -- settings ----------------------------------------------------------------------------------


async def test_a_passphrase_changed_in_the_client_replaces_the_old_one(
    world: WebmailWorld,
) -> None:
    async with world.client() as client:
        session = await sign_in(world, client, PATIENT)
        unlocked = await world.pli.accounts.unlock(
            Address.parse(PATIENT), world.passphrases[PATIENT]
        )
        parameters = (await client.post("/webmail/api/prelogin", json={"address": PATIENT})).json()
        current = crypto.derive_keys(
            world.passphrases[PATIENT],
            unb64(parameters["salt"]),
            crypto.Argon2Limits(parameters["opslimit"], parameters["memlimit"]),
        )
        salt = crypto.new_salt()
        limits = crypto.Argon2Limits.INTERACTIVE
        fresh = crypto.derive_keys("une toute nouvelle phrase", salt, limits)
        body = {
            "current_auth_key": b64(b"\x00" * 32),
            "salt": b64(salt),
            "opslimit": limits.opslimit,
            "memlimit": limits.memlimit,
            "auth_key": b64(fresh.auth_key.raw),
            "bundle": b64(crypto.seal_bundle(unlocked.keys, fresh.bundle_key)),
        }
        csrf = {"X-CSRF-Token": session["csrf"]}
        refused = await client.post("/webmail/api/passphrase", json=body, headers=csrf)
        assert refused.status_code == 401, "the current passphrase is asked again"
        weak = {**body, "current_auth_key": b64(current.auth_key.raw), "opslimit": 1}
        assert (
            await client.post("/webmail/api/passphrase", json=weak, headers=csrf)
        ).status_code == 422
        body["current_auth_key"] = b64(current.auth_key.raw)
        changed = await client.post("/webmail/api/passphrase", json=body, headers=csrf)
        assert changed.status_code == 200, changed.text
        assert (await client.get("/webmail/api/session")).status_code == 200, "this session lives"
    with pytest.raises(Exception, match="uthentication"):
        await world.pli.accounts.unlock(Address.parse(PATIENT), world.passphrases[PATIENT])
    reopened = await world.pli.accounts.unlock(Address.parse(PATIENT), "une toute nouvelle phrase")
    assert reopened.keys.encryption_public == unlocked.keys.encryption_public


async def test_an_app_password_sealed_in_the_client_unlocks_like_one_made_by_pli(
    world: WebmailWorld,
) -> None:
    async with world.client() as client:
        session = await sign_in(world, client, PATIENT)
        unlocked = await world.pli.accounts.unlock(
            Address.parse(PATIENT), world.passphrases[PATIENT]
        )
        parameters = (await client.get("/webmail/api/app-passwords")).json()
        assert parameters["items"] == []
        password = crypto.generate_app_password()
        derived = crypto.derive_keys(
            password,
            unb64(parameters["salt"]),
            crypto.Argon2Limits(parameters["opslimit"], parameters["memlimit"]),
        )
        csrf = {"X-CSRF-Token": session["csrf"]}
        created = await client.post(
            "/webmail/api/app-passwords",
            json={
                "label": "Thunderbird",
                "auth_key": b64(derived.auth_key.raw),
                "bundle": b64(crypto.seal_bundle(unlocked.keys, derived.bundle_key)),
            },
            headers=csrf,
        )
        assert created.status_code == 201, created.text
        app = await world.pli.accounts.unlock(
            Address.parse(PATIENT), password, CredentialKind.APP_PASSWORD
        )
        assert app.keys.signing_public == unlocked.keys.signing_public
        listed = (await client.get("/webmail/api/app-passwords")).json()["items"]
        assert [i["label"] for i in listed] == ["Thunderbird"]
        revoked = await client.delete(f"/webmail/api/app-passwords/{listed[0]['id']}", headers=csrf)
        assert revoked.status_code == 200
        assert (await client.get("/webmail/api/app-passwords")).json()["items"] == []


async def test_recovery_key_sign_in_then_a_new_passphrase(world: WebmailWorld) -> None:
    async with world.client() as client:
        parameters = (
            await client.post("/webmail/api/prelogin", json={"address": OTHER, "kind": "recovery"})
        ).json()
        secret = crypto.normalize_recovery_key(world.recovery_keys[OTHER])
        derived = crypto.derive_keys(
            secret,
            unb64(parameters["salt"]),
            crypto.Argon2Limits(parameters["opslimit"], parameters["memlimit"]),
        )
        login = await client.post(
            "/webmail/api/login",
            json={"address": OTHER, "kind": "recovery", "auth_key": b64(derived.auth_key.raw)},
        )
        assert login.status_code == 200, login.text
        code = await world.wait_for_code(OTHER, 0)
        done = await client.post(
            "/webmail/api/login/code", json={"ticket": login.json()["ticket"], "code": code}
        )
        client.headers["Cookie"] = f"pli_session={done.cookies['pli_session']}"
        session = (await client.get("/webmail/api/session")).json()
        assert session["credential"] == "recovery"
        keys = crypto.open_bundle(unb64(session["bundle"]), derived.bundle_key)
        salt = crypto.new_salt()
        fresh = crypto.derive_keys(
            "retrouvée grâce à la clé", salt, crypto.Argon2Limits.INTERACTIVE
        )
        changed = await client.post(
            "/webmail/api/passphrase",
            json={
                "salt": b64(salt),
                "opslimit": crypto.Argon2Limits.INTERACTIVE.opslimit,
                "memlimit": crypto.Argon2Limits.INTERACTIVE.memlimit,
                "auth_key": b64(fresh.auth_key.raw),
                "bundle": b64(crypto.seal_bundle(keys, fresh.bundle_key)),
            },
            headers={"X-CSRF-Token": session["csrf"]},
        )
        assert changed.status_code == 200, changed.text
    await world.pli.accounts.unlock(Address.parse(OTHER), "retrouvée grâce à la clé")


async def test_webmail_responses_carry_the_security_headers(client: httpx.AsyncClient) -> None:
    page = await client.get("/webmail/")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self' 'wasm-unsafe-eval'" in csp
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert "frame-ancestors 'none'" in csp
    assert page.headers["strict-transport-security"].startswith("max-age=")
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "<script>" not in page.text and "style=" not in page.text
    api = await client.post("/webmail/api/prelogin", json={"address": PATIENT})
    assert api.headers["cache-control"] == "no-store"
    asset = await client.get("/webmail/static/app.js", headers={"Accept-Encoding": "gzip"})
    assert asset.status_code == 200 and "javascript" in asset.headers["content-type"]
    assert asset.headers["content-encoding"] == "gzip"
    assert asset.num_bytes_downloaded < 500 * 1024, "the 500 KB compressed budget"
    assert (await client.get("/", follow_redirects=False)).headers["location"] == "/webmail/"


async def test_without_a_personal_address_no_code_and_no_session(
    world: WebmailWorld, client: httpx.AsyncClient
) -> None:
    assert world.pli.webmail is not None
    await world.pli.webmail.set_preferences(Address.parse(OTHER), notify_email=None, language="fr")
    parameters = (await client.post("/webmail/api/prelogin", json={"address": OTHER})).json()
    derived = crypto.derive_keys(
        world.passphrases[OTHER],
        unb64(parameters["salt"]),
        crypto.Argon2Limits(parameters["opslimit"], parameters["memlimit"]),
    )
    answer = await client.post(
        "/webmail/api/login", json={"address": OTHER, "auth_key": b64(derived.auth_key.raw)}
    )
    assert answer.status_code == 409
    assert "personal e-mail address" in answer.json()["detail"]
    assert world.sink.received == []


async def test_new_mail_is_pushed_at_once_as_a_server_sent_event(
    world: WebmailWorld,
) -> None:
    async with world.client() as client:
        await sign_in(world, client, PATIENT)
        async with client.stream("GET", "/webmail/api/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.aiter_lines()
            assert await anext(lines) == ": open"

            async def next_data() -> str:
                async for line in lines:
                    if line.startswith("data:"):
                        return line
                raise AssertionError("the stream ended")

            for uid in (1, 2):
                await _doctor_writes(world, PATIENT, f"message {uid}")
                # Pushed at once, not at the next keep-alive (20 s): bounded well below it.
                assert await asyncio.wait_for(next_data(), 10) == f"data: exists INBOX {uid}"

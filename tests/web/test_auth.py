"""Professionals' HTTP Basic credentials: parsing, the account check, its cache, 401s."""

from __future__ import annotations

import base64
import logging

import httpx

from messaging import Address, AuthenticationFailed, CredentialKind
from messaging.accounts import UnlockedAccount
from tests.web.conftest import CARDIO, SOPHIE, World, open_client
from web import AccountAuthenticator, WebSettings, create_app
from web.auth import parse_basic

PROBLEM = "application/problem+json"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_credentials_parse_as_address_and_password():
    assert parse_basic(basic("Sophie.Martin@medecin.pli.test", "pass:word é")) == (
        Address.parse(SOPHIE),
        "pass:word é",
    )
    assert parse_basic("  basic   " + basic(SOPHIE, "x").split()[1] + " ") == (
        Address.parse(SOPHIE),
        "x",
    )


def test_anything_else_is_no_credentials():
    for header in [
        "",
        "Basic",
        "Bearer abc",
        "Basic !!!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"user@x.test:").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
        basic("not an address", "secret"),
        "Basic " + "A" * 5000,
    ]:
        assert parse_basic(header) is None, header


class CountingUnlocker:
    def __init__(self, world: World) -> None:
        self.world = world
        self.calls = 0

    async def unlock(
        self, address: Address, secret: str, kind: CredentialKind = CredentialKind.PASSPHRASE
    ) -> UnlockedAccount:
        self.calls += 1
        return await self.world.accounts.unlock(address, secret, kind)


async def test_an_app_password_of_a_professional_authenticates(world: World):
    authenticator = AccountAuthenticator(world.accounts)
    assert await authenticator.professional(
        Address.parse(SOPHIE), world.doctor.password
    ) == Address.parse(SOPHIE)


async def test_wrong_or_foreign_credentials_do_not(world: World):
    authenticator = AccountAuthenticator(world.accounts)
    sophie = Address.parse(SOPHIE)
    assert await authenticator.professional(sophie, "wrong") is None
    assert await authenticator.professional(Address.parse(CARDIO), world.doctor.password) is None
    # The passphrase is no app password.
    assert await authenticator.professional(sophie, f"passphrase of {SOPHIE}") is None
    # A patient is no professional, whatever their credentials.
    patient = Address.parse(world.patient.address)
    assert await authenticator.professional(patient, world.patient.password) is None


async def test_successes_are_cached_for_a_short_time_and_failures_never(world: World):
    unlocker = CountingUnlocker(world)
    now = [100.0]
    authenticator = AccountAuthenticator(unlocker, ttl=60, monotonic=lambda: now[0])
    sophie = Address.parse(SOPHIE)
    for _ in range(3):
        assert await authenticator.professional(sophie, world.doctor.password) == sophie
    assert unlocker.calls == 1
    for _ in range(2):
        assert await authenticator.professional(sophie, "wrong") is None
    assert unlocker.calls == 3
    now[0] += 61
    assert await authenticator.professional(sophie, world.doctor.password) == sophie
    assert unlocker.calls == 4


async def test_the_cache_keeps_a_bounded_number_of_entries(world: World):
    unlocker = CountingUnlocker(world)
    sophie = Address.parse(SOPHIE)

    class Anyone:
        async def unlock(self, address, secret, kind=CredentialKind.PASSPHRASE):  # noqa: ARG002
            unlocker.calls += 1
            return await world.accounts.unlock(sophie, world.doctor.password, kind)

    authenticator = AccountAuthenticator(Anyone(), max_entries=2)
    for secret in ("a", "b", "c", "a"):
        await authenticator.professional(sophie, secret)
    assert unlocker.calls == 4  # "a" was forgotten when "c" came


async def test_a_revoked_app_password_stops_working_after_the_cache_time(world: World):
    now = [0.0]
    authenticator = AccountAuthenticator(world.accounts, ttl=5, monotonic=lambda: now[0])
    sophie = Address.parse(SOPHIE)
    assert await authenticator.professional(sophie, world.doctor.password) == sophie
    for credential in await world.accounts.list_app_passwords(sophie):
        await world.accounts.revoke_app_password(sophie, credential.id)
    now[0] = 6
    assert await authenticator.professional(sophie, world.doctor.password) is None


# --- Over HTTP -----------------------------------------------------------------------------


async def test_wrong_credentials_get_401_without_saying_whether_the_address_exists(client):
    known = await client.get(
        "/v1/directory/search",
        params={"q": "martin"},
        headers={"Authorization": basic(SOPHIE, "x")},
    )
    unknown = await client.get(
        "/v1/directory/search",
        params={"q": "martin"},
        headers={"Authorization": basic("nobody@medecin.pli.test", "x")},
    )
    malformed = await client.get(
        "/v1/directory/search", params={"q": "martin"}, headers={"Authorization": "Basic ???"}
    )
    for response in (known, unknown, malformed):
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM
        assert response.headers["www-authenticate"].startswith('Basic realm="Pli directory"')
    assert known.content == unknown.content == malformed.content


async def test_a_patient_cannot_use_professional_access(client, world: World):
    response = await client.get(
        "/v1/directory/search",
        params={"q": "generaliste", "limit": 100},
        headers=world.patient.header(),
    )
    assert response.status_code == 401


async def test_fhir_authentication_failures_are_operation_outcomes(client):
    response = await client.get(
        "/fhir/Practitioner",
        params={"family": "martin"},
        headers={"Authorization": basic(SOPHIE, "x")},
    )
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/fhir+json"
    assert response.json()["issue"][0]["code"] == "login"


async def test_without_an_authenticator_credentials_are_refused(world: World):
    async with open_client(create_app(directory=world.directory)) as client:
        response = await client.get(
            "/v1/directory/search", params={"q": "martin"}, headers=world.doctor.header()
        )
    assert response.status_code == 401


async def test_repeated_failures_from_one_address_are_throttled_before_any_check(world: World):
    unlocker = CountingUnlocker(world)
    app = create_app(
        directory=world.directory,
        authenticator=AccountAuthenticator(unlocker),
        settings=WebSettings(auth_failure_burst=3),
    )
    transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        statuses = [
            (
                await client.get(
                    "/v1/directory/search",
                    params={"q": "martin"},
                    headers={"Authorization": basic(SOPHIE, f"guess {n}")},
                )
            ).status_code
            for n in range(5)
        ]
        assert statuses == [401, 401, 401, 429, 429]
        assert unlocker.calls == 3
        throttled = await client.get(
            "/v1/directory/search", params={"q": "martin"}, headers=world.doctor.header()
        )
        assert throttled.status_code == 429
        assert int(throttled.headers["retry-after"]) >= 1
    other = httpx.ASGITransport(app=app, client=("192.0.2.8", 1234))
    async with httpx.AsyncClient(transport=other, base_url="http://testserver") as client:
        response = await client.get(
            "/v1/directory/search", params={"q": "martin"}, headers=world.doctor.header()
        )
        assert response.status_code == 200


async def test_authentication_failures_do_not_leak_through_unlock_errors(world: World):
    class Failing:
        async def unlock(self, address, secret, kind=CredentialKind.PASSPHRASE):  # noqa: ARG002
            raise AuthenticationFailed()

    authenticator = AccountAuthenticator(Failing())
    assert await authenticator.professional(Address.parse(SOPHIE), "x") is None


async def test_no_password_reaches_the_logs(client, world: World, caplog):
    caplog.set_level(logging.DEBUG)
    await client.get("/v1/directory/search", params={"q": "martin"}, headers=world.doctor.header())
    wrong = {"Authorization": basic(SOPHIE, "hunter2-wrong-password")}
    await client.get("/v1/directory/search", params={"q": "martin"}, headers=wrong)
    logged = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    assert world.doctor.password not in logged
    assert "hunter2-wrong-password" not in logged

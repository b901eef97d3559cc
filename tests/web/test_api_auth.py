"""OAuth 2.0 client credentials (RFC 6749 §4.4), bearer tokens, scopes, rotation, revocation,
certificate-bound tokens (RFC 8705) and per-client rate limits."""

from __future__ import annotations

import base64
import hashlib
import urllib.parse

from tests.web.api_fixtures import ApiEnv, make_env
from web.api import ApiSettings

PROBLEM = "application/problem+json"
NOTE = {"to": ["sophie.martin@medecin.pli.test"], "subject": "s", "body": "b"}
FAKE_CERT = (
    "-----BEGIN CERTIFICATE-----\n"
    + base64.b64encode(b"a certificate the proxy verified" * 3).decode()
    + "\n-----END CERTIFICATE-----\n"
)


async def token_response(env: ApiEnv, **data: str):  # noqa: ANN201 - httpx.Response
    return await env.http.post("/v1/oauth/token", data={"grant_type": "client_credentials", **data})


async def test_a_token_is_issued_for_the_right_secret_with_all_scopes(api: ApiEnv):
    response = await api.http.post(
        "/v1/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": api.basic()},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert set(body["scope"].split()) == set(api.client.client.scopes)
    assert response.headers["cache-control"] == "no-store"
    assert "cnf" not in body


async def test_credentials_in_the_form_body_work_too(api: ApiEnv):
    response = await token_response(
        api, client_id=api.client_id, client_secret=api.client.secret, scope="send:note"
    )
    assert response.status_code == 200
    assert response.json()["scope"] == "send:note"


async def test_a_wrong_secret_or_an_unknown_client_is_invalid_client(api: ApiEnv):
    for client_id, secret in ((api.client_id, "wrong-secret"), ("pli_nobody", api.client.secret)):
        response = await token_response(api, client_id=client_id, client_secret=secret)
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["error"] == "invalid_client"
        assert response.headers["www-authenticate"].startswith("Basic")


async def test_no_client_authentication_is_401(api: ApiEnv):
    response = await token_response(api)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_another_grant_type_is_refused_naming_it(api: ApiEnv):
    response = await api.http.post(
        "/v1/oauth/token",
        data={"grant_type": "password"},
        headers={"Authorization": api.basic()},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"
    assert response.json()["errors"][0]["field"] == "grant_type"


async def test_a_scope_beyond_the_clients_is_invalid_scope(api: ApiEnv):
    other = await api.new_client(frozenset({"send:note"}))
    response = await token_response(
        api, client_id=other.client.client_id, client_secret=other.secret, scope="send:document"
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"
    assert response.json()["errors"][0]["field"] == "scope"


async def test_an_app_password_of_the_same_mailbox_is_not_a_client_secret(api: ApiEnv):
    from messaging.types import Address
    from tests.web.api_fixtures import APP, PASSPHRASE

    unlocked = await api.pli.accounts.unlock(Address.parse(APP), PASSPHRASE)
    mail_client = await api.pli.accounts.create_app_password(unlocked, "Thunderbird")
    response = await token_response(
        api, client_id=api.client_id, client_secret=mail_client.password
    )
    assert response.status_code == 401


async def test_no_token_a_bad_token_and_a_missing_scope(api: ApiEnv):
    response = await api.http.post(
        "/v1/messages/notes", json=NOTE, headers={"Idempotency-Key": "a"}
    )
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"].startswith("Bearer")
    response = await api.http.post(
        "/v1/messages/notes",
        json=NOTE,
        headers={"Authorization": "Bearer pli_at_forged", "Idempotency-Key": "b"},
    )
    assert response.status_code == 401
    assert "invalid_token" in response.headers["www-authenticate"]
    response = await api.http.post(
        "/v1/messages/notes",
        json=NOTE,
        headers=await api.bearer("read:mailbox") | {"Idempotency-Key": "c"},
    )
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["title"] == "Insufficient scope"
    assert 'scope="send:note"' in response.headers["www-authenticate"]
    response = await api.http.get("/v1/mailbox/folders", headers=await api.bearer("send:note"))
    assert response.status_code == 403
    response = await api.http.get("/v1/webhooks", headers=await api.bearer("send:note"))
    assert response.status_code == 403


async def test_rotation_keeps_two_live_secrets(api: ApiEnv):
    clients = api.services.clients
    first = api.client.secret
    second = (await clients.rotate(api.client_id, "correct horse battery staple")).secret
    assert (
        await token_response(api, client_id=api.client_id, client_secret=first)
    ).status_code == 200
    assert (
        await token_response(api, client_id=api.client_id, client_secret=second)
    ).status_code == 200
    third = (await clients.rotate(api.client_id, "correct horse battery staple")).secret
    assert (
        await token_response(api, client_id=api.client_id, client_secret=first)
    ).status_code == 401
    for secret in (second, third):
        ok = await token_response(api, client_id=api.client_id, client_secret=secret)
        assert ok.status_code == 200


async def test_a_revoked_client_gets_no_token(api: ApiEnv):
    await api.services.clients.revoke(api.client_id)
    response = await token_response(api, client_id=api.client_id, client_secret=api.client.secret)
    assert response.status_code == 401


async def test_a_certificate_bound_token_needs_the_same_certificate(tmp_path, database_url):
    settings = ApiSettings(trusted_proxies=frozenset({"127.0.0.1"}), upload_dir=tmp_path)
    async for env in make_env(tmp_path, database_url, settings):
        import httpx

        transport = httpx.ASGITransport(app=env.app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://pli.test") as http:
            header = {"X-Client-Cert": urllib.parse.quote(FAKE_CERT)}
            response = await http.post(
                "/v1/oauth/token",
                data={"grant_type": "client_credentials"},
                headers={"Authorization": env.basic()} | header,
            )
            assert response.status_code == 200
            der = base64.b64decode(FAKE_CERT.splitlines()[1])
            thumb = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
            assert response.json()["cnf"] == {"x5t#S256": thumb}
            bearer = {"Authorization": f"Bearer {response.json()['access_token']}"}
            ok = await http.get("/v1/mailbox/folders", headers=bearer | header)
            assert ok.status_code == 200
            refused = await http.get("/v1/mailbox/folders", headers=bearer)
            assert refused.status_code == 401
            assert "RFC 8705" in refused.json()["detail"]
        # From an address that is not a trusted proxy the header proves nothing: no binding.
        elsewhere = httpx.ASGITransport(app=env.app, client=("10.1.2.3", 40000))
        async with httpx.AsyncClient(transport=elsewhere, base_url="http://pli.test") as http:
            untrusted = await http.post(
                "/v1/oauth/token",
                data={"grant_type": "client_credentials"},
                headers={"Authorization": env.basic()} | header,
            )
        assert untrusted.status_code == 200
        assert "cnf" not in untrusted.json()


async def test_a_client_over_its_rate_gets_429(api: ApiEnv):
    other = await api.new_client(frozenset({"read:mailbox"}), rate_per_minute=2)
    token = await api.token(client_id=other.client.client_id, secret=other.secret)
    auth = {"Authorization": f"Bearer {token}"}
    statuses = [
        (await api.http.get("/v1/mailbox/folders", headers=auth)).status_code for _ in range(4)
    ]
    assert statuses[:2] == [200, 200]
    assert statuses[-1] == 429
    last = await api.http.get("/v1/mailbox/folders", headers=auth)
    assert last.headers["content-type"] == PROBLEM
    assert int(last.headers["retry-after"]) >= 1

"""A real Pli (SQL store on SQLite and PostgreSQL, key log, directory) behind the real app,
with an APP mailbox, a professional, a patient, and an API client, for the API tests.

Test modules import the fixtures they use (``from tests.web.api_fixtures import api``).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from messaging.api_clients import NewClient, Scope
from messaging.types import Address, MailboxKind
from pli.api_wiring import api_services
from pli.settings import load_settings
from pli.wiring import Pli, initialise, open_pli
from tests.messaging.kinds.samples import JEANNE, pdf
from web import AccountAuthenticator, WebSettings, create_app
from web.api import ApiServices, ApiSettings

__all__ = [
    "ApiEnv",
    "api",
    "APP",
    "DOCTOR",
    "PATIENT",
    "PASSPHRASE",
    "ALL_SCOPES",
    "prescription_json",
    "document_metadata",
    "pdf",
]

APP = "lis@ch-exemple.pli.test"
DOCTOR = "sophie.martin@medecin.pli.test"
PATIENT = f"{JEANNE.ins}@patient.pli.test"
PASSPHRASE = "correct horse battery staple"
ALL_SCOPES = frozenset(s.value for s in Scope)


@dataclass
class ApiEnv:
    pli: Pli
    services: ApiServices
    app: FastAPI
    http: httpx.AsyncClient
    client: NewClient
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def client_id(self) -> str:
        return self.client.client.client_id

    def basic(self, client_id: str | None = None, secret: str | None = None) -> str:
        raw = f"{client_id or self.client_id}:{secret or self.client.secret}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    async def token(
        self, scope: str | None = None, *, client_id: str | None = None, secret: str | None = None
    ) -> str:
        data = {"grant_type": "client_credentials"}
        if scope is not None:
            data["scope"] = scope
        response = await self.http.post(
            "/v1/oauth/token",
            data=data,
            headers={"Authorization": self.basic(client_id, secret)},
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    async def bearer(self, scope: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.token(scope)}"}

    async def new_client(self, scopes: frozenset[str], **kw: int) -> NewClient:
        return await self.services.clients.create(
            Address.parse(APP), PASSPHRASE, name="Other software", scopes=scopes, **kw
        )


async def make_env(
    tmp_path: Path, database_url: str, settings: ApiSettings | None = None
) -> AsyncIterator[ApiEnv]:
    config = load_settings(
        tmp_path / "home",
        database_url=database_url,
        demo=True,
        domain="pli.test",
        passphrase_opslimit=1,
        passphrase_memlimit=8192,
        app_password_opslimit=1,
        app_password_memlimit=8192,
    )
    initialise(config)
    pli = await open_pli(config)
    try:
        accounts = pli.accounts
        await accounts.create(Address.parse(APP), MailboxKind.APP, "Laboratoire CH", PASSPHRASE)
        await accounts.create(Address.parse(DOCTOR), MailboxKind.PER, "Dr Martin", PASSPHRASE)
        await accounts.create(Address.parse(PATIENT), MailboxKind.PAT, "Jeanne Dupont", PASSPHRASE)
        services = api_services(
            pli,
            settings
            or ApiSettings(
                webhook_allow_http=True,
                webhook_first_backoff_seconds=0.05,
                worker_poll_seconds=0.05,
                upload_dir=tmp_path,
            ),
        )
        app = create_app(
            directory=pli.directory,
            key_log=pli.key_log,
            authenticator=AccountAuthenticator(pli.accounts),
            settings=WebSettings(),
            api=services,
        )
        client = await services.clients.create(
            Address.parse(APP), PASSPHRASE, name="Laboratoire CH", scopes=ALL_SCOPES
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://pli.test") as http:
            yield ApiEnv(pli, services, app, http, client)
        await app.state.api_trace.close()
    finally:
        await pli.close()


@pytest.fixture
async def api(tmp_path: Path, database_url: str) -> AsyncIterator[ApiEnv]:
    async for env in make_env(tmp_path, database_url):
        yield env


def prescription_json(to: list[str] | None = None) -> dict[str, object]:
    return {
        "to": to or [PATIENT],
        "prescriber": {"rpps": "10003578209", "name": "Dr Sophie Martin", "profession_code": "10"},
        "patient": {
            "ins": str(JEANNE.ins),
            "birth_name": JEANNE.birth_name,
            "first_given_name": JEANNE.first_given_name,
            "birth_date": JEANNE.birth_date.isoformat(),
            "sex": "F",
        },
        "date": "2026-11-22",
        "items": [
            {
                "medication": "Amoxicilline 1 g",
                "dosage": "1 cp matin et soir",
                "duration": "7 jours",
            }
        ],
    }


def document_metadata(to: list[str] | None = None, part: str = "report") -> dict[str, object]:
    return {
        "to": to or [DOCTOR],
        "patient": prescription_json()["patient"],
        "documents": [
            {"title": "Compte rendu", "type_code": "11488-4", "date": "2026-11-20", "pdf": part}
        ],
        "comment": "Résultats",
    }

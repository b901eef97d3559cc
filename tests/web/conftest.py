"""A directory, a key log and accounts behind the real FastAPI app, for the web tests.

The directory holds the lines of a small extraction (31 fields each, as the national file
has them); the key log is a real Merkle log with signed heads; the authenticator checks app
passwords of real accounts (fast Argon2id limits).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

import crypto
from crypto.keys import SigningKey, generate_keys
from directory.extraction import COLUMNS, DEMATERIALISED, HEADER
from mailbox_store import InMemoryMailboxStore
from messaging import AccountService, Address, MailboxKind, ManualClock
from messaging.directory import (
    Code,
    Directory,
    MailboxEntry,
    Organisation,
    Patient,
    PostalAddress,
    Practitioner,
    Role,
)
from messaging.ins import Ins, QualifiedIdentity, Sex, nir_key
from messaging.ports import KeyLog
from tests.web.fakes import FakeDirectory, FakeKeyLog
from web import AccountAuthenticator, WebSettings, create_app

FAST = crypto.Argon2Limits(1, 8192)
LOG_KEY = SigningKey.from_seed(b"\x09" * 32)
LOG_ID = "directory.pli.test"
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

SOPHIE = "sophie.martin@medecin.pli.test"
CARDIO = "cardiologie@ch-exemple.pli.test"
HELENE = "helene.dupont@medecin.pli.test"
SECRET = "secret.martin@medecin.pli.test"
SOPHIE_ID = "810001234567"
CH_ID = "1750000001"
CH_FINESS = "750000001"

NIR = "2850575123456"
PATIENT_INS = NIR + nir_key(NIR)


def line(**fields: str) -> list[str]:
    """31 values, named by the header's column names (``Adresse BAL`` → ``adresse_bal``)."""
    names = {
        c.lower().replace(" ", "_").replace("'", "_").replace("é", "e").replace("-", "_"): i
        for i, c in enumerate(COLUMNS)
    }
    values = [""] * len(COLUMNS)
    values[DEMATERIALISED] = "True"
    for key, value in fields.items():
        values[names[key]] = value
    return values


def per(
    address: str,
    *,
    national_id: str,
    family: str,
    given: str,
    structure: str = CH_ID,
    structure_name: str = "CENTRE HOSPITALIER EXEMPLE",
    routing: str = "75014 PARIS",
    postcode: str = "75014",
    profession: tuple[str, str] = ("10", "Médecin"),
    specialty: tuple[str, str] = ("SM04", "Cardiologie"),
    service: str = "",
) -> list[str]:
    return line(
        type_de_bal="PER",
        adresse_bal=address,
        type_identifiant_pp=national_id[0],
        identifiant_pp=national_id[1:],
        identification_nationale_pp=national_id,
        type_identifiant_structure=structure[0],
        identification_structure=structure,
        service_de_rattachement=service,
        civilite_d_exercice="DR",
        nom_d_exercice=family,
        prenom_d_exercice=given,
        categorie_profession="C",
        libelle_de_categorie_profession="Civil",
        code_profession=profession[0],
        libelle_profession=profession[1],
        code_savoir_faire=specialty[0],
        libelle_savoir_faire=specialty[1],
        raison_sociale_structure_bal=structure_name,
        l4numerovoie_structure_bal="12",
        nl4typevoie_structure_bal="R",
        l4libellevoie_structure_bal="DE LA SANTE",
        l6ligneacheminement_structure_bal=routing,
        code_postal_structure_bal=postcode,
        departement_structure_bal=postcode[:2],
        pays_structure_bal="FRANCE",
    )


def org(
    address: str, *, structure: str, name: str, service: str, routing: str, postcode: str
) -> list[str]:
    return line(
        type_de_bal="ORG",
        adresse_bal=address,
        type_identifiant_structure=structure[0],
        identification_structure=structure,
        service_de_rattachement=service,
        raison_sociale_structure_bal=name,
        l4numerovoie_structure_bal="12",
        nl4typevoie_structure_bal="R",
        l4libellevoie_structure_bal="DE LA SANTE",
        l6ligneacheminement_structure_bal=routing,
        code_postal_structure_bal=postcode,
        departement_structure_bal=postcode[:2],
        pays_structure_bal="FRANCE",
    )


GENERALISTS = 45


def extraction_rows() -> list[list[str]]:
    rows = [
        per(SOPHIE, national_id=SOPHIE_ID, family="MARTIN", given="Sophie", service="Cardiologie"),
        org(
            CARDIO,
            structure=CH_ID,
            name="CENTRE HOSPITALIER EXEMPLE",
            service="Cardiologie",
            routing="75014 PARIS",
            postcode="75014",
        ),
        per(
            HELENE,
            national_id="810009876543",
            family="DUPONT-MARTIN",
            given="Hélène",
            structure="3123456789",
            structure_name="CABINET DES LILAS",
            routing="69003 LYON",
            postcode="69003",
            profession=("40", "Chirurgien-Dentiste"),
            specialty=("", ""),
        ),
        per(SECRET, national_id="810005555555", family="MARTIN", given="Secret"),
        # The second line of Sophie's mailbox: she also consults in a practice.
        per(
            SOPHIE,
            national_id=SOPHIE_ID,
            family="MARTIN",
            given="Sophie",
            structure="3999999999",
            structure_name="CABINET DU PARC",
            routing="75015 PARIS",
            postcode="75015",
        ),
    ]
    rows += [
        per(
            f"medecin{n:02d}@generaliste.pli.test",
            national_id=f"8100020000{n:02d}",
            family="GENERALISTE",
            given=f"Jean{n:02d}",
            structure="1350000002",
            structure_name="MAISON DE SANTE DU PORT",
            routing="35000 RENNES",
            postcode="35000",
            profession=("10", "Médecin"),
            specialty=("SM54", "Médecine générale"),
        )
        for n in range(GENERALISTS)
    ]
    return rows


def role_of(values: Sequence[str], line_number: int) -> Role:
    """The role a line states, as the directory builds it (``directory.model.role_from``)."""
    v = values
    practitioner = None
    if v[4]:
        practitioner = Practitioner(
            national_id=v[4],
            id_type=v[2],
            identifier=v[3],
            civility=v[8],
            family_name=v[9],
            given_name=v[10],
            category=Code(v[11], v[12]),
            profession=Code(v[13], v[14]),
            specialty=Code(v[15], v[16]),
        )
    organisation = None
    if v[6]:
        organisation = Organisation(
            national_id=v[6],
            id_type=v[5],
            name=v[18],
            trade_name=v[19],
            address=PostalAddress(*v[20:31]),
        )
    return Role(
        mailbox=Address.parse(v[1]),
        kind=MailboxKind(v[0]),
        practitioner=practitioner,
        organisation=organisation,
        service=v[7],
        dematerialised=v[17] == "True",
        line=line_number,
    )


def entries_of(rows: Sequence[Sequence[str]]) -> list[MailboxEntry]:
    """The mailboxes the lines make (lines numbered from 2, after the header)."""
    entries: dict[Address, MailboxEntry] = {}
    for number, values in enumerate(rows, start=2):
        role = role_of(values, number)
        entry = entries.get(role.mailbox) or MailboxEntry(
            role.mailbox, role.kind, service=role.service
        )
        entries[role.mailbox] = replace(entry, roles=(*entry.roles, role))
    return list(entries.values())


async def apply_local_changes(directory: Directory) -> None:
    """What is set outside the extraction: liste rouge, descriptions, a patient."""
    changes: dict[str, Any]
    for address, changes in (
        (SECRET, {"liste_rouge": True}),
        (
            CARDIO,
            {
                "description": "Secrétariat de cardiologie",
                "responsible": "Mme Durand, cadre de santé, 01 02 03 04 05",
            },
        ),
        (SOPHIE, {"description": "BAL personnelle", "preferred_rank": 1}),
    ):
        stored = await directory.get_mailbox(Address.parse(address))
        assert stored is not None
        await directory.update_mailbox(replace(stored, **changes))
    identity = QualifiedIdentity(
        Ins.parse(PATIENT_INS), "DURAND", "Alice", date(1985, 5, 10), Sex.FEMALE
    )
    await directory.add_patient(Patient.create(identity, "pli.test"))


async def load_directory(directory: FakeDirectory) -> None:
    """The fake directory with the extraction's lines and the local changes."""
    for entry in entries_of(extraction_rows()):
        directory.add(entry)
    await apply_local_changes(directory)


@dataclass
class Credentials:
    address: str
    password: str

    def header(self) -> dict[str, str]:
        token = base64.b64encode(f"{self.address}:{self.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}


BACKENDS = ["fake", "memory", "sqlite"]
"""The web runs over the tests' fake directory and key log, over the real in-memory
directory and transparent key directory (``directory``'s reference implementations), and
over the SQL directory on SQLite (with the in-memory log)."""


@dataclass
class World:
    backend: str
    directory: Directory
    keys: KeyLog
    accounts: AccountService
    authenticator: AccountAuthenticator
    clock: ManualClock
    doctor: Credentials
    patient: Credentials
    published: dict[str, tuple[bytes, bytes]]
    rows: list[list[str]]

    def app(self, **settings: Any) -> FastAPI:
        return create_app(
            directory=self.directory,
            key_log=self.keys,
            authenticator=self.authenticator,
            settings=WebSettings(**settings),
        )

    async def publish(self, address: str, encryption_key: bytes, signing_key: bytes) -> None:
        keys: Any = self.keys
        done = keys.publish(Address.parse(address), encryption_key, signing_key)
        if self.backend != "fake":
            await done

    async def revoke(self, address: str) -> None:
        keys: Any = self.keys
        done = keys.revoke(Address.parse(address))
        if self.backend != "fake":
            await done

    async def add_lines(self, rows: Sequence[list[str]]) -> None:
        """More lines in the extraction (a re-import for the real directory)."""
        self.rows += rows
        if isinstance(self.directory, FakeDirectory):
            for entry in entries_of(self.rows):
                if entry.address not in self.directory.mailboxes:
                    self.directory.add(entry)
            return
        memory: Any = self.directory
        await memory.import_extraction(extraction_file(self.rows))


def extraction_file(rows: Sequence[Sequence[str]]) -> list[bytes]:
    return [
        HEADER,
        *(("|".join(values) + "\n").encode() for values in rows),
    ]


async def open_backend(
    backend: str, clock: ManualClock, tmp_path: Path | None = None
) -> tuple[Directory, KeyLog, Any]:
    """The directory (loaded) and an empty key log of ``backend``, and its publish function.

    The caller closes the directory (``await directory.close()``).
    """
    if backend == "fake":
        fake = FakeDirectory()
        await load_directory(fake)
        log = FakeKeyLog(LOG_KEY, LOG_ID, clock)
        return fake, log, log.publish
    from directory import InMemoryDirectory, SqlDirectory
    from directory.keys import TransparentKeyDirectory
    from directory.transparency import InMemoryLogStorage, TransparencyLog

    real: InMemoryDirectory | SqlDirectory
    if backend == "memory":
        real = InMemoryDirectory(clock)
    else:
        assert tmp_path is not None
        real = await SqlDirectory.open(f"sqlite+aiosqlite:///{tmp_path / 'dir.db'}", clock=clock)
    await real.import_extraction(extraction_file(extraction_rows()))
    await apply_local_changes(real)
    transparency = TransparencyLog(InMemoryLogStorage(), LOG_KEY, log_id=LOG_ID, clock=clock)
    keys = TransparentKeyDirectory(transparency, clock=clock)
    return real, keys, keys.publish


async def _account(accounts: AccountService, address: str, kind: MailboxKind) -> Credentials:
    parsed = Address.parse(address)
    await accounts.create(parsed, kind, address, f"passphrase of {address}")
    unlocked = await accounts.unlock(parsed, f"passphrase of {address}")
    app_password = await accounts.create_app_password(unlocked, "directory client")
    return Credentials(address, app_password.password)


@pytest.fixture(params=BACKENDS)
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    clock = ManualClock(START)
    directory, keys, publish = await open_backend(request.param, clock, tmp_path)
    published: dict[str, tuple[bytes, bytes]] = {}
    for address in (SOPHIE, CARDIO, HELENE, SECRET):
        pair = generate_keys()
        published[address] = (pair.encryption_public.raw, pair.signing_public.raw)
        done = publish(Address.parse(address), *published[address])
        if request.param != "fake":
            await done
    store = InMemoryMailboxStore()
    accounts = AccountService(
        store=store,
        clock=clock,
        instance_secret=b"w" * 32,
        passphrase_limits=FAST,
        app_password_limits=FAST,
    )
    doctor = await _account(accounts, SOPHIE, MailboxKind.PER)
    patient = await _account(accounts, f"{PATIENT_INS}@patient.pli.test", MailboxKind.PAT)
    yield World(
        request.param,
        directory,
        keys,
        accounts,
        AccountAuthenticator(accounts),
        clock,
        doctor,
        patient,
        published,
        extraction_rows(),
    )
    await directory.close()


@pytest.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with open_client(world.app()) as opened:
        yield opened


def open_client(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
        base_url="http://testserver",
    )


def addresses(items: Sequence[dict[str, object]]) -> list[str]:
    return [str(item["address"]) for item in items]


# The application API's fixture (a real Pli on each engine behind the app): tests/web/test_api_*.
from tests.web.api_fixtures import api  # noqa: E402, F401

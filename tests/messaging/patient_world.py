"""A wired patient world on each store implementation: memory, SQLite, PostgreSQL.

The delivery service, the patient rules and the patient service as ``pli`` wires them,
over a real store (SQL on a fresh database, blobs in files) and a directory in memory, with
a controllable clock. Tests reach the database itself (to tamper with a row) through
:meth:`PatientWorld.execute`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

import crypto
from directory.memory import InMemoryDirectory
from mailbox_store import InMemoryBlobStore, InMemoryMailboxStore, SqlMailboxStore
from mailbox_store.engine import create_engine
from messaging import (
    AccountService,
    Address,
    DeliveryService,
    InProcessNotifier,
    Limits,
    LocalKeyDirectory,
    MailboxKind,
    ManualClock,
)
from messaging.notices import NoticeSender
from messaging.patient_delivery import PatientDeliveryRules
from messaging.patient_ports import PatientStore
from messaging.patients import PatientService
from messaging.ports import BlobStore, MailboxStore
from tests.directory.factories import extraction
from tests.directory.factories import line as directory_line
from tests.support.databases import fresh_database

FAST = crypto.Argon2Limits(1, 8192)
START = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
PATIENT_DOMAIN = "patient.pli.test"


@dataclass
class PatientWorld:
    engine: str
    url: str | None
    store: MailboxStore
    patients: PatientStore
    blobs: BlobStore
    clock: ManualClock
    directory: InMemoryDirectory
    accounts: AccountService
    delivery: DeliveryService
    rules: PatientDeliveryRules
    service: PatientService
    keys_cache: dict[Address, crypto.MailboxKeys] = field(default_factory=dict)
    lines: list[bytes] = field(default_factory=list)

    async def professional(self, name: str, *, pharmacist: bool = False) -> Address:
        """A PER account, listed in the directory by an extraction line (a pharmacist's for
        ``pharmacist``: profession 21, what makes a pharmacy for the patient rules)."""
        address = Address.parse(f"{name}@medecin.pli.test")
        await self.accounts.create(address, MailboxKind.PER, name, f"passphrase of {name}")
        number = f"{10001234567 + len(self.lines):011d}"
        self.lines.append(
            directory_line(
                address=str(address),
                national_id=f"8{number}",
                family=name.upper(),
                **{
                    "Identifiant PP": number,
                    "Code Profession": "21" if pharmacist else "10",
                    "profession": "Pharmacien" if pharmacist else "Médecin",
                },
            )
        )
        await self.directory.import_extraction(extraction(*self.lines))
        return address

    async def patient(self, ins: str) -> Address:
        address = Address.parse(f"{ins}@{PATIENT_DOMAIN}")
        await self.accounts.create(address, MailboxKind.PAT, ins, f"passphrase of {ins}")
        return address

    async def keys(self, address: Address) -> crypto.MailboxKeys:
        if address not in self.keys_cache:
            unlocked = await self.accounts.unlock(address, f"passphrase of {address.local}")
            self.keys_cache[address] = unlocked.keys
        return self.keys_cache[address]

    async def execute(self, sql: str, **params: Any) -> int:
        """Run one statement on the real database (for tampering tests); rows affected."""
        assert self.url is not None
        engine = create_engine(self.url)
        try:
            async with engine.begin() as connection:
                result = await connection.execute(text(sql), params)
                return int(result.rowcount or 0)
        finally:
            await engine.dispose()


def mail(
    sender: Address,
    to: Address,
    subject: str = "Bonjour",
    body: str = "Texte",
    **headers: str,
) -> bytes:
    """A plain RFC 5322 message; ``headers`` given as ``X_MSS_MES="FIN"`` style names."""
    msg = EmailMessage()
    msg["From"] = str(sender)
    msg["To"] = str(to)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(START)
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@{sender.domain}>"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg.as_bytes()


async def build_world(
    request: pytest.FixtureRequest,
    engine: str,
    tmp_path: Path,
    notices: NoticeSender | None = None,
) -> AsyncIterator[PatientWorld]:
    clock = ManualClock(START)
    if engine == "memory":
        memory = InMemoryMailboxStore(clock=clock)
        async for world in _wire(
            engine, None, memory, memory.patients, InMemoryBlobStore(), clock, notices
        ):
            yield world
        return
    async with fresh_database(request, engine, tmp_path) as url:
        sql = await SqlMailboxStore.open(url, clock=clock, blob_dir=tmp_path / "blobs")
        try:
            async for world in _wire(engine, url, sql, sql.patients, sql.blobs, clock, notices):
                yield world
        finally:
            await sql.close()


async def _wire(
    engine: str,
    url: str | None,
    store: MailboxStore,
    patients: PatientStore,
    blobs: BlobStore,
    clock: ManualClock,
    notices: NoticeSender | None,
) -> AsyncIterator[PatientWorld]:
    directory = InMemoryDirectory(clock)
    keys = LocalKeyDirectory(store, cache_seconds=0)
    accounts = AccountService(
        store=store,
        clock=clock,
        instance_secret=b"k" * 32,
        passphrase_limits=FAST,
        app_password_limits=FAST,
    )
    rules = PatientDeliveryRules(
        store=store,
        patients=patients,
        keys=keys,
        clock=clock,
        directory=directory,
        notices=notices,
        notice_link="https://pli.example/webmail",
    )
    delivery = DeliveryService(
        store=store,
        blobs=blobs,
        keys=keys,
        notifier=InProcessNotifier(),
        clock=clock,
        operator_key=crypto.generate_signing_key(),
        limits=Limits(max_message_size=4 * 1024 * 1024, max_recipients=5, account_cache_seconds=0),
        patients=rules,
    )
    service = PatientService(
        store=store,
        patients=patients,
        blobs=blobs,
        keys=keys,
        delivery=delivery,
        rules=rules,
        clock=clock,
    )
    yield PatientWorld(
        engine, url, store, patients, blobs, clock, directory, accounts, delivery, rules, service
    )

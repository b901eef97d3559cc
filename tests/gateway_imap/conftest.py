"""An IMAP gateway on the real SQL store, listening on 127.0.0.1 port 0, with a test CA."""

from __future__ import annotations

import imaplib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import crypto
from gateway_imap.auth import ThrottleSettings
from gateway_imap.server import ImapServer, ImapSettings
from gateway_imap.session import SessionSettings
from mailbox_store import SqlMailboxStore
from messaging import (
    AccountService,
    Address,
    DeliveryService,
    InProcessNotifier,
    Limits,
    LocalKeyDirectory,
    MailboxKind,
    SystemClock,
)
from messaging.mailbox_session import MailboxAccess
from pli.tls import TlsFiles, server_context
from tests.support.databases import fresh_database
from tests.support.test_ca import make_ca

FAST = crypto.Argon2Limits(1, 8192)
DOMAIN = "medecin.pli.test"


@dataclass
class Gateway:
    server: ImapServer
    store: SqlMailboxStore
    accounts: AccountService
    delivery: DeliveryService
    ca_file: Path
    database_url: str
    operator: crypto.SigningKey

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def imaps_port(self) -> int:
        assert self.server.imaps_port is not None
        return self.server.imaps_port

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    async def person(self, name: str) -> tuple[Address, str]:
        """A new account and one of its app passwords."""
        address = Address.parse(f"{name}@{DOMAIN}")
        await self.accounts.create(address, MailboxKind.PER, name, f"passphrase of {name}")
        unlocked = await self.accounts.unlock(address, f"passphrase of {name}")
        created = await self.accounts.create_app_password(unlocked, "tests")
        return address, created.password

    async def keys(self, address: Address) -> crypto.MailboxKeys:
        unlocked = await self.accounts.unlock(address, f"passphrase of {address.local}")
        return unlocked.keys

    async def send(self, sender: Address, to: Address, message: bytes) -> None:
        await self.delivery.send(sender, await self.keys(sender), [to], message)

    async def receive(self, to: Address, message: bytes, peer: str = "mx.ch-x.fr") -> None:
        await self.delivery.receive(
            Address.parse("someone@ch-x.fr"),
            [to],
            message,
            gateway=crypto.GatewayInfo(peer=peer, tls=""),
        )

    def imap(self, user: Address, password: str, *, implicit: bool = False) -> imaplib.IMAP4:
        """A logged-in imaplib client (STARTTLS, or implicit TLS), run in a thread by callers."""
        if implicit:
            client: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                "127.0.0.1", self.imaps_port, ssl_context=self.client_context(), timeout=30
            )
        else:
            client = imaplib.IMAP4("127.0.0.1", self.port, timeout=30)
            client.starttls(self.client_context())
        client.login(str(user), password)
        return client


async def start_gateway(
    tmp_path: Path,
    database_url: str,
    *,
    session: SessionSettings | None = None,
    throttle: ThrottleSettings | None = None,
    max_message_size: int = 4 * 1024 * 1024,
) -> Gateway:
    ca = make_ca(tmp_path / "ca")
    issued = ca.issue("127.0.0.1", dns_names=("localhost",))
    # The context `pli serve` gives its IMAP listeners (TLS 1.2+, no session tickets).
    context = server_context(TlsFiles(cert=issued.chain, key=issued.key, ca=ca.cert_path))
    store = await SqlMailboxStore.open(
        database_url, blob_dir=tmp_path / "blobs", watch_poll_interval=0.1
    )
    clock = SystemClock()
    accounts = AccountService(
        store=store,
        clock=clock,
        instance_secret=b"k" * 32,
        passphrase_limits=FAST,
        app_password_limits=FAST,
    )
    operator = crypto.generate_signing_key()
    delivery = DeliveryService(
        store=store,
        blobs=store.blobs,
        keys=LocalKeyDirectory(store),
        notifier=InProcessNotifier(),
        clock=clock,
        operator_key=operator,
        limits=Limits(max_message_size=max_message_size, max_recipients=10),
    )
    access = MailboxAccess(store=store, delivery=delivery, cache_bytes=4 * 1024 * 1024)
    server = ImapServer(
        access=access,
        accounts=accounts,
        tls_context=context,
        settings=ImapSettings(
            host="127.0.0.1",
            port=0,
            imaps_port=0,
            session=session or SessionSettings(login_timeout=20, idle_timeout=60),
            throttle=throttle or ThrottleSettings(base_delay=0.01, max_delay=0.05),
        ),
    )
    await server.start()
    return Gateway(server, store, accounts, delivery, ca.cert_path, database_url, operator)


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    """The gateway on a SQLite store (the PostgreSQL runs are in the tests that need both)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'pli.db'}"
    started = await start_gateway(tmp_path, url)
    try:
        yield started
    finally:
        await started.server.close(grace=2)
        await started.store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def gateway_any(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Gateway]:
    async with fresh_database(request, request.param, tmp_path) as url:
        started = await start_gateway(tmp_path, url)
        try:
            yield started
        finally:
            await started.server.close(grace=2)
            await started.store.close()


def literals(data: Any) -> list[tuple[bytes, bytes]]:  # noqa: ANN401 - imaplib's data
    """The (response head, literal) pairs of an imaplib answer."""
    return [(item[0], item[1]) for item in data if isinstance(item, tuple)]


def message(subject: str = "Hello", body: str = "Bonjour.\r\n", sender: str = "a@b.test") -> bytes:
    return (
        f"From: {sender}\r\nTo: x@{DOMAIN}\r\nSubject: {subject}\r\n"
        f"Date: Sun, 22 Nov 2026 09:00:00 +0000\r\nMessage-ID: <{subject}@b.test>\r\n"
        f"\r\n{body}"
    ).encode()

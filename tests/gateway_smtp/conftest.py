"""A Pli world with its SMTP fronts listening on 127.0.0.1 (port 0), and clients for them.

The fronts run in the test's event loop; the clients (``smtplib``, ``swaks``) run in worker
threads or processes and talk to them over real sockets, with TLS from a throwaway test CA.
Storage is the in-memory reference store, so every test can assert on what was stored.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

import crypto
from gateway_smtp.allowlist import NAMESPACE, AllowListSource
from gateway_smtp.limits import SmtpLimits
from gateway_smtp.peers import PeerTrust
from gateway_smtp.server import Listening, SmtpFronts, SmtpPorts
from mailbox_store import InMemoryBlobStore, InMemoryMailboxStore
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
from messaging.gateways import GatewaySupport
from messaging.outbound import Relaying
from messaging.types import AccountRecord, FolderRole
from tests.support.test_ca import Issued, TestCA, make_ca

FAST = crypto.Argon2Limits(1, 8192)
LOCAL = "pli.test"
PEER_DOMAIN = "peer.test"
IDN_PEER = "hôpital-exemple.test"
T = TypeVar("T")

DOCTOR = Address.parse("sophie.martin@medecin.pli.test")
NURSE = Address.parse("paul.durand@medecin.pli.test")
PATIENT = Address.parse("180012345678901@patient.pli.test")
LAB_APP = Address.parse("integration@labo.pli.test")
CLOSED = Address.parse("ancien@medecin.pli.test")


def allowlist_xml(*domains: str) -> bytes:
    body = "".join(f"<Domaine><Nom>{d}</Nom></Domaine>" for d in domains)
    head = '<?xml version="1.0" encoding="UTF-8"?>'
    return f'{head}<ListeBlanche xmlns="{NAMESPACE}">{body}</ListeBlanche>'.encode()


@dataclass
class Certificates:
    ca: TestCA
    server: Issued
    peer: Issued
    idn_peer: Issued
    expired: Issued
    revoked: Issued
    foreign: Issued
    off_list: Issued


@dataclass
class SmtpWorld:
    store: InMemoryMailboxStore
    accounts: AccountService
    delivery: DeliveryService
    fronts: SmtpFronts
    listening: Listening
    certs: Certificates
    allowlist_path: Path
    app_passwords: dict[Address, str]
    limits: SmtpLimits
    queue_keys: crypto.MailboxKeys

    def port(self, name: str) -> int:
        return self.listening.addresses[name][1]

    async def inbox(self, address: Address, folder: str = FolderRole.INBOX.value) -> list[Any]:
        return await self.store.list_messages(address, folder)

    async def everything(self) -> list[tuple[str, int]]:
        """Every message of every mailbox: (address, uid)."""
        found = []
        for account in await self.store.list_accounts():
            for folder in await self.store.list_folders(account.address):
                for record in await self.store.list_messages(account.address, folder.name):
                    found.append((str(account.address), record.uid))
        return sorted(found)

    async def opened(self, address: Address, uid: int, folder: str = "INBOX") -> Any:
        keys = (await self.accounts.unlock(address, f"passphrase of {address.local}")).keys
        return await self.delivery.open_message(address, keys, folder, uid)


@pytest.fixture
def certs(tmp_path: Path) -> Certificates:
    ca = make_ca(tmp_path / "ca")
    other = make_ca(tmp_path / "other-ca", name="Another CA")
    server = ca.issue("mx.pli.test", dns_names=("127.0.0.1", "localhost"), file_stem="server")
    revoked = ca.issue(f"mx.revoked.{PEER_DOMAIN}", server=False, file_stem="revoked")
    ca.revoke(revoked)
    return Certificates(
        ca=ca,
        server=server,
        peer=ca.issue(f"mx.{PEER_DOMAIN}", server=False, file_stem="peer"),
        idn_peer=ca.issue("mx.xn--hpital-exemple-0ob.test", server=False, file_stem="idn"),
        expired=ca.issue(f"mx.old.{PEER_DOMAIN}", server=False, expired=True, file_stem="old"),
        revoked=revoked,
        foreign=other.issue(f"mx.{PEER_DOMAIN}", server=False, file_stem="foreign"),
        off_list=ca.issue("mx.elsewhere.test", server=False, file_stem="elsewhere"),
    )


async def make_world(
    tmp_path: Path,
    certs: Certificates,
    limits: SmtpLimits,
    *,
    relay: bool = False,
    crl_refresh_seconds: float = 3600.0,
    store: Any = None,  # noqa: ANN401 - a MailboxStore with .blobs and .outbound
) -> SmtpWorld:
    store = store if store is not None else InMemoryMailboxStore()
    tmp_path.mkdir(parents=True, exist_ok=True)
    blobs = store.blobs if hasattr(store, "blobs") else InMemoryBlobStore()
    allowlist_path = tmp_path / "allowlist.xml"
    allowlist_path.write_bytes(allowlist_xml(PEER_DOMAIN, IDN_PEER))
    allowlist = AllowListSource(allowlist_path, always=[LOCAL])
    queue_keys = crypto.generate_keys()
    relaying = (
        Relaying(
            local_domain=LOCAL,
            peers=allowlist,
            queue=store.outbound,
            queue_key=queue_keys.encryption_public,
        )
        if relay
        else None
    )
    clock = ManualClock(datetime(2026, 11, 22, 9, 0, tzinfo=UTC))
    accounts = AccountService(
        store=store,
        clock=clock,
        instance_secret=b"k" * 32,
        passphrase_limits=FAST,
        app_password_limits=FAST,
    )
    delivery = DeliveryService(
        store=store,
        blobs=blobs,
        keys=LocalKeyDirectory(store),
        notifier=InProcessNotifier(),
        clock=clock,
        operator_key=crypto.generate_signing_key(),
        limits=Limits(
            max_message_size=limits.max_message_size, max_recipients=limits.max_recipients
        ),
        relaying=relaying,
    )
    app_passwords: dict[Address, str] = {}
    for address, kind in (
        (DOCTOR, MailboxKind.PER),
        (NURSE, MailboxKind.PER),
        (PATIENT, MailboxKind.PAT),
        (LAB_APP, MailboxKind.APP),
    ):
        label = "Dr_Sophie_MARTIN_Cabinet" if address == DOCTOR else address.local
        if await store.get_account(address) is None:  # a reopened store keeps its accounts
            await accounts.create(address, kind, label, f"passphrase of {address.local}")
        unlocked = await accounts.unlock(address, f"passphrase of {address.local}")
        app_passwords[address] = (await accounts.create_app_password(unlocked, "test")).password
    if await store.get_account(CLOSED) is None:
        await store.create_account(
            AccountRecord(
                address=CLOSED,
                kind=MailboxKind.PER,
                display_name="closed",
                encryption_key=b"\x01" * 32,
                signing_key=b"\x02" * 32,
                created_at=clock.now(),
                closed_at=clock.now(),
            ),
            [],
        )
    trust = PeerTrust(
        cert=certs.server.chain,
        key=certs.server.key,
        anchor=certs.ca.cert_path,
        crl=certs.ca.crl_path,
        kept_crl=tmp_path / "kept.crl.pem",
    )
    fronts = SmtpFronts(
        delivery=delivery,
        accounts=accounts,
        support=GatewaySupport(store, clock),
        allowlist=allowlist,
        trust=trust,
        clock=clock,
        local_domain=LOCAL,
        hostname="mx.pli.test",
        limits=limits,
        crl_refresh_seconds=crl_refresh_seconds,
    )
    listening = await fronts.start(SmtpPorts(host="127.0.0.1", mx=0, submission=0, submissions=0))
    return SmtpWorld(
        store,
        accounts,
        delivery,
        fronts,
        listening,
        certs,
        allowlist_path,
        app_passwords,
        limits,
        queue_keys,
    )


TEST_LIMITS = SmtpLimits(
    max_message_size=256 * 1024,
    max_recipients=100,
    max_errors=20,
    max_connections_per_peer=8,
    auth_failure_delay=0.01,
    timeout=30,
)


@pytest.fixture
async def world(tmp_path: Path, certs: Certificates) -> AsyncIterator[SmtpWorld]:
    made = await make_world(tmp_path, certs, TEST_LIMITS)
    try:
        yield made
    finally:
        await made.fronts.stop(grace=1)


async def in_thread(function: Callable[..., T], *args: Any) -> T:
    """Run a blocking client; the fronts keep serving in this loop meanwhile."""
    return await asyncio.wait_for(asyncio.to_thread(function, *args), timeout=60)


# -- clients ---------------------------------------------------------------------------------


def peer_context(world: SmtpWorld, issued: Issued | None) -> ssl.SSLContext:
    return world.certs.ca.client_context(issued)


def mx_session(world: SmtpWorld, issued: Issued | None, *, tls: bool = True) -> smtplib.SMTP:
    """A peer operator's session on the MX, after EHLO (and STARTTLS with ``issued``)."""
    client = smtplib.SMTP("127.0.0.1", world.port("mx"), local_hostname="mx.peer.test", timeout=30)
    client.ehlo()
    if tls:
        client.starttls(context=peer_context(world, issued))
        client.ehlo()
    return client


def submission_session(world: SmtpWorld, *, implicit: bool = False) -> smtplib.SMTP:
    context = world.certs.ca.client_context()
    client: smtplib.SMTP
    if implicit:
        client = smtplib.SMTP_SSL(
            "127.0.0.1", world.port("submissions"), context=context, timeout=30
        )
        client.ehlo()
    else:
        client = smtplib.SMTP("127.0.0.1", world.port("submission"), timeout=30)
        client.ehlo()
        client.starttls(context=context)
        client.ehlo()
    return client


def raw_data(client: smtplib.SMTP, payload: bytes) -> tuple[int, bytes]:
    """DATA with ``payload`` sent as is (smtplib would fix line ends), then the reply."""
    code, _ = client.docmd("DATA")
    assert code == 354
    client.send(payload)
    return client.getreply()


def note(
    sender: Address | str,
    recipient: Address | str,
    body: str = "Bonjour,\r\nà demain.\r\n",
    **headers: str,
) -> bytes:
    lines = [
        f"From: {sender}",
        f"To: {recipient}",
        "Subject: Avis",
        "Message-ID: <note-1@peer.test>",
        "Date: Sun, 22 Nov 2026 09:00:00 +0000",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
    ]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

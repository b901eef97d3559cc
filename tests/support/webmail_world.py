"""A running Pli with its webmail, for the webmail's HTTP and browser tests.

Everything is real: ``pli.wiring.open_pli`` over a fresh database (each engine) and data
directory, ``uvicorn`` on 127.0.0.1 port 0 serving ``create_app`` plus the webmail, and an
aiosmtpd smarthost on port 0 that receives the one-time sign-in codes. Server logs go to a
file the tests scan afterwards.
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import logging
import re
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from aiosmtpd.smtp import SMTP as SmtpServer
from aiosmtpd.smtp import Envelope, Session

import crypto
from messaging.directory import MailboxEntry
from messaging.types import Address, MailboxKind
from pli.settings import Settings
from pli.wiring import Pli, initialise, open_pli
from tests.directory.factories import extraction
from tests.directory.factories import line as directory_line
from tests.support.kannel import KannelGateway
from tests.support.scan import encodings, files_containing, tables_containing
from web import AccountAuthenticator, create_app
from web.webmail import include_webmail

__all__ = ["WebmailWorld", "webmail_world", "DOCTOR", "PHARMACY", "PATIENT", "OTHER", "REMOTE"]

DOCTOR = "sophie.martin@medecin.pli.test"
PHARMACY = "pharmacie.centrale@pharmacie.pli.test"
PATIENT = "185057800608491@patient.pli.test"
OTHER = "290017512345678@patient.pli.test"
REMOTE = "jean.durand@ch-ailleurs.pli.test"
"""Listed in the directory with published keys, but not a mailbox of this instance."""

PHARMACY_LINE = directory_line(
    kind="ORG",
    address=PHARMACY,
    national_id="810009876543",
    family="CENTRALE",
    given="Claire",
    organisation="Pharmacie centrale",
    **{
        "Type Identifiant PP": "8",
        "Identifiant PP": "10009876543",
        "Code Profession": "21",
        "Libellé Profession": "Pharmacien",
    },
)

PERSONAL = {
    PATIENT: "camille.durand@example.org",
    OTHER: "louis.petit@example.org",
    DOCTOR: "sophie.martin@example.org",
}


@dataclass
class Sink:
    port: int = 0
    received: list[Envelope] = field(default_factory=list)

    async def handle_DATA(self, _server: SmtpServer, _session: Session, envelope: Envelope) -> str:
        self.received.append(envelope)
        return "250 OK"


@dataclass
class WebmailWorld:
    base: str
    pli: Pli
    home: Path
    database_url: str
    sink: Sink
    log_path: Path
    passphrases: dict[str, str]
    recovery_keys: dict[str, str]

    def codes_for(self, address: str) -> list[str]:
        """The sign-in codes the smarthost received for the personal address of ``address``."""
        codes = []
        for envelope in self.sink.received:
            if PERSONAL[address] not in envelope.rcpt_tos:
                continue
            assert isinstance(envelope.content, bytes)
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            found = re.search(r"^\s+(\d{6})\s*$", text, re.MULTILINE)
            assert found is not None, text
            codes.append(found.group(1))
        return codes

    def last_code(self, address: str) -> str:
        codes = self.codes_for(address)
        assert codes, f"no code was sent for {address}"
        return codes[-1]

    async def wait_for_code(self, address: str, already: int) -> str:
        for _ in range(200):
            if len(self.codes_for(address)) > already:
                return self.last_code(address)
            await asyncio.sleep(0.05)
        raise AssertionError(f"no new code for {address}")

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, timeout=30)

    async def assert_nothing_left_of(self, address: str, canary: str, *, logged: bytes) -> None:
        """After a visit in the browser: the passphrase of ``address``, its auth key in any
        spelling and ``canary`` (raw, or base64 at any alignment) are nowhere in the data
        directory, the database or the server log; ``logged`` is in the log (the control
        that the log did record the visit)."""
        parameters = await self.pli.accounts.login_parameters(Address.parse(address))
        auth_key = crypto.derive_keys(self.passphrases[address], *parameters).auth_key.raw
        needles = [
            *encodings(canary.encode()),
            self.passphrases[address].encode(),
            auth_key,
            auth_key.hex().encode(),
            b64(auth_key).encode(),
            base64.b64encode(auth_key),
        ]
        assert files_containing(self.home, needles) == []
        assert await tables_containing(self.database_url, needles) == []
        log = self.log_path.read_bytes()
        assert logged in log, "control: the server log recorded the visit"
        assert not any(n in log for n in needles)


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


@asynccontextmanager
async def webmail_world(
    tmp_path: Path, database_url: str, *, sms: KannelGateway | None = None
) -> AsyncIterator[WebmailWorld]:
    """``pli`` wired from its settings: codes and notices by the smarthost, and by SMS
    through ``sms`` (a real Kannel) when given."""
    sink = Sink()
    loop = asyncio.get_running_loop()
    smtp = await loop.create_server(
        lambda: SmtpServer(sink, hostname="smarthost.test"), "127.0.0.1", 0
    )
    sink.port = smtp.sockets[0].getsockname()[1]
    home = tmp_path / "home"
    settings = Settings(
        home=home,
        demo=True,
        domain="pli.test",
        database_url=database_url,
        notice_smarthost="127.0.0.1",
        notice_smarthost_port=sink.port,
        notice_starttls=False,
        sms_gateway_url=sms.url if sms else None,
        sms_gateway_username=sms.username if sms else None,
        sms_gateway_password_file=sms.password_file if sms else None,
    )
    initialise(settings)
    pli = await open_pli(settings)
    log_path = tmp_path / "server.log"
    handler = logging.FileHandler(log_path)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    server: uvicorn.Server | None = None
    task: asyncio.Task[None] | None = None
    try:
        # The pharmacy is one for the patient rules (a pharmacist's line of the directory's
        # extraction): the only professional a patient may write to first.
        await pli.directory.import_extraction(extraction(PHARMACY_LINE))
        passphrases: dict[str, str] = {}
        recovery: dict[str, str] = {}
        for address, kind, name in (
            (DOCTOR, MailboxKind.PER, "Dr Sophie MARTIN"),
            (PHARMACY, MailboxKind.ORG, "Pharmacie centrale"),
            (PATIENT, MailboxKind.PAT, "Camille Durand"),
            (OTHER, MailboxKind.PAT, "Louis Petit"),
        ):
            passphrases[address] = f"phrase {secrets.token_urlsafe(12)}"
            created = await pli.accounts.create(
                Address.parse(address), kind, name, passphrases[address]
            )
            recovery[address] = created.recovery_key
        for patient in (PATIENT, OTHER):
            assert pli.webmail is not None
            await pli.webmail.set_preferences(
                Address.parse(patient), notify_email=PERSONAL[patient], language="fr"
            )
        remote = crypto.generate_keys()
        await pli.directory.add_mailbox(
            MailboxEntry(Address.parse(REMOTE), MailboxKind.PER, description="Dr Jean DURAND")
        )
        await pli.key_log.publish(
            Address.parse(REMOTE), remote.encryption_public.raw, remote.signing_public.raw
        )
        app = create_app(
            directory=pli.directory,
            key_log=pli.key_log,
            authenticator=AccountAuthenticator(pli.accounts),
        )
        assert pli.webmail is not None
        stop_webmail = include_webmail(app, pli.webmail, patients=pli.patients)
        sock = _free_socket()
        port = sock.getsockname()[1]
        server = uvicorn.Server(
            uvicorn.Config(app, log_config=None, lifespan="off", access_log=True)
        )
        task = asyncio.create_task(server.serve(sockets=[sock]))
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        assert server.started, "uvicorn did not start"
        yield WebmailWorld(
            base=f"http://127.0.0.1:{port}",
            pli=pli,
            home=home,
            database_url=database_url,
            sink=sink,
            log_path=log_path,
            passphrases=passphrases,
            recovery_keys=recovery,
        )
    finally:
        if server is not None and task is not None:
            stop_webmail()
            server.should_exit = True
            await asyncio.wait_for(task, 30)
        await pli.close()
        root.removeHandler(handler)
        root.setLevel(previous_level)
        handler.close()
        smtp.close()
        await smtp.wait_closed()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def sign_in(world: WebmailWorld, client: httpx.AsyncClient, address: str) -> dict[str, Any]:
    """Sign in over the API as a browser would (auth key, then code); the session's JSON."""
    parameters = (await client.post("/webmail/api/prelogin", json={"address": address})).json()
    derived = crypto.derive_keys(
        world.passphrases[address],
        unb64(parameters["salt"]),
        crypto.Argon2Limits(parameters["opslimit"], parameters["memlimit"]),
    )
    before = len(world.codes_for(address))
    login = await client.post(
        "/webmail/api/login", json={"address": address, "auth_key": b64(derived.auth_key.raw)}
    )
    assert login.status_code == 200, login.text
    code = await world.wait_for_code(address, before)
    done = await client.post(
        "/webmail/api/login/code", json={"ticket": login.json()["ticket"], "code": code}
    )
    assert done.status_code == 200, done.text
    # The cookie is Secure: httpx keeps it from plain http, as it should; a browser treats
    # 127.0.0.1 as a secure context. The tests hand it over themselves.
    client.headers["Cookie"] = f"pli_session={done.cookies['pli_session']}"
    session = (await client.get("/webmail/api/session")).json()
    assert isinstance(session, dict)
    return session

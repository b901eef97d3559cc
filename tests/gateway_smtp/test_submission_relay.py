"""Acceptance 2 end to end: a mail client (swaks) submits one appointment to a local patient
and to a professional at a peer operator (a real Postfix); the patient has it typed as an
appointment at once, and the relay delivers the same message to Postfix over mutual TLS."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway_smtp.allowlist import AllowListSource
from gateway_smtp.limits import SmtpLimits
from gateway_smtp.peers import PeerTrust
from gateway_smtp.server import SmtpFronts, SmtpPorts
from messaging import MailboxKind, MessageKind
from messaging.gateways import GatewaySupport
from messaging.types import Address
from tests.gateway_smtp.relay_support import LOCAL, PEER, relay_world
from tests.support.postfix import PostfixPeer, start_postfix
from tests.support.test_ca import TestCA, make_ca

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return make_ca(tmp_path / "ca")


@pytest.fixture
def postfix(ca: TestCA) -> Iterator[PostfixPeer]:
    peer = start_postfix(ca, domain=PEER, mailboxes=("bob",))
    try:
        yield peer
    finally:
        peer.close()


async def test_swaks_submits_to_a_local_patient_and_a_postfix_peer(
    database_url: str, tmp_path: Path, ca: TestCA, postfix: PostfixPeer
) -> None:
    routes = {PEER: f"127.0.0.1:{postfix.port}"}
    async with relay_world(database_url, tmp_path, ca, routes) as world:
        doctor = Address.parse(f"sophie.martin@medecin.{LOCAL}")
        patient = Address.parse(f"180012345678901@patient.{LOCAL}")
        await world.accounts.create(doctor, MailboxKind.PER, "Dr_Sophie_MARTIN", "pass d")
        await world.accounts.create(patient, MailboxKind.PAT, "patient", "pass p")
        unlocked = await world.accounts.unlock(doctor, "pass d")
        app_password = (await world.accounts.create_app_password(unlocked, "swaks")).password
        server = ca.issue("mx.pli.test", dns_names=("127.0.0.1",), file_stem="server")
        fronts = SmtpFronts(
            delivery=world.delivery,
            accounts=world.accounts,
            support=GatewaySupport(world.store, world.clock),
            allowlist=AllowListSource(None, always=[LOCAL, PEER]),
            trust=PeerTrust(cert=server.chain, key=server.key, anchor=ca.cert_path),
            clock=world.clock,
            local_domain=LOCAL,
            hostname="mx.pli.test",
            limits=SmtpLimits(auth_failure_delay=0),
        )
        listening = await fronts.start(SmtpPorts(mx=None, submission=0, submissions=None))
        try:
            bob = postfix.address("bob")
            calendar = tmp_path / "invite.eml"
            calendar.write_bytes(
                (
                    f"From: {doctor}\r\nTo: {patient}, {bob}\r\nSubject: Consultation\r\n"
                    "MIME-Version: 1.0\r\n"
                    'Content-Type: text/calendar; method=REQUEST; charset="utf-8"\r\n\r\n'
                    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//swaks//EN\r\n"
                    "METHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:rdv-9@pli.test\r\n"
                    "DTSTAMP:20261122T090000Z\r\nDTSTART:20261201T093000Z\r\n"
                    f"DTEND:20261201T100000Z\r\nORGANIZER:mailto:{doctor}\r\n"
                    f"ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:{patient}\r\n"
                    "END:VEVENT\r\nEND:VCALENDAR\r\n"
                ).encode()
            )
            swaks = shutil.which("swaks")
            assert swaks, "swaks is installed by scripts/test (scripts/debian-packages)"
            proc = await asyncio.create_subprocess_exec(
                swaks,
                "--server",
                "127.0.0.1",
                "--port",
                str(listening.addresses["submission"][1]),
                "--tls",
                "--tls-ca-path",
                str(ca.cert_path),
                "--tls-verify",
                "--auth",
                "PLAIN",
                "--auth-user",
                str(doctor),
                "--auth-password",
                app_password,
                "--from",
                str(doctor),
                "--to",
                f"{patient},{bob}",
                "--data",
                f"@{calendar}",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
            assert proc.returncode == 0, out.decode()
        finally:
            await fronts.stop(grace=1)
        [local] = await world.delivery.list_messages(patient, "INBOX")
        assert local.kind is MessageKind.APPOINTMENT
        assert await world.worker.run_once() == 1
        [received] = await asyncio.to_thread(postfix.wait_for, "bob", 1)
        assert b"text/calendar" in received and b"UID:rdv-9@pli.test" in received
        assert b"X-MSS-NIL: Pli/0.1" in received
        assert b"From: Dr_Sophie_MARTIN <sophie.martin@medecin.pli.test>" in received

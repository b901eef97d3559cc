"""Acceptance 1, first direction: Debian's Postfix, a second operator of the trust space,
relays into our MX over mutual TLS; a sender off the allow-list and a Postfix without a
client certificate are refused with the trust space's codes (seen in Postfix's own log)."""

from __future__ import annotations

import asyncio
import smtplib
import subprocess
from collections.abc import Iterator

import pytest

from messaging import Provenance
from tests.gateway_smtp.conftest import DOCTOR, PATIENT, SmtpWorld, in_thread
from tests.support.postfix import PostfixPeer, start_postfix


@pytest.fixture
def postfix(world: SmtpWorld) -> Iterator[PostfixPeer]:
    peer = start_postfix(world.certs.ca, domain="peer.test", mailboxes=("alice",))
    try:
        for domain in ("medecin.pli.test", "patient.pli.test"):
            peer.route(domain, "127.0.0.1", world.port("mx"))
        yield peer
    finally:
        peer.close()


def inject(peer: PostfixPeer, sender: str, recipient: str, subject: str) -> None:
    """Hand a message to Postfix's plain listener; Postfix relays it to our MX."""
    message = (
        f"From: {sender}\r\nTo: {recipient}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '-')}@peer.test>\r\n\r\nBonjour.\r\n"
    )
    with smtplib.SMTP("127.0.0.1", peer.inject_port, timeout=30) as client:
        assert client.sendmail(sender, [recipient], message) == {}


async def wait_for_log(peer: PostfixPeer, text: str) -> str:
    for _ in range(600):  # bounded: Postfix retries every second here
        log = peer.log()
        if text in log:
            return log
        await asyncio.sleep(0.05)
    raise AssertionError(f"{text!r} not in Postfix's log:\n{peer.log()[-4000:]}")


async def test_postfix_relays_into_our_mx_over_mutual_tls(
    world: SmtpWorld, postfix: PostfixPeer
) -> None:
    await in_thread(inject, postfix, postfix.address("alice"), str(DOCTOR), "avis postfix")
    await in_thread(inject, postfix, postfix.address("alice"), str(PATIENT), "rdv postfix")
    for _ in range(600):  # bounded wait for Postfix's queue manager
        if await world.inbox(DOCTOR) and await world.inbox(PATIENT):
            break
        await asyncio.sleep(0.05)
    [record] = await world.inbox(DOCTOR)
    opened = await world.opened(DOCTOR, record.uid)
    assert opened.provenance is Provenance.GATEWAY
    assert opened.gateway_peer == "mx.peer.test"  # the name in Postfix's certificate
    assert b"Subject: avis postfix" in opened.raw
    assert b"with ESMTPS" in opened.raw
    log = await wait_for_log(postfix, "status=sent")
    assert "250 2.0.0 OK queued as" in log
    # Postfix verified our certificate against the trust anchor, and TLS was used.
    assert "Verified TLS connection established to 127.0.0.1" in log


async def test_a_sender_off_the_allow_list_is_refused_550_5_7_1(
    world: SmtpWorld, postfix: PostfixPeer
) -> None:
    await in_thread(inject, postfix, "someone@elsewhere.test", str(DOCTOR), "off list")
    log = await wait_for_log(postfix, "Sender domain is not in the trust space")
    assert "550 5.7.1 Sender domain is not in the trust space" in log
    assert await world.everything() == []


async def test_postfix_without_a_client_certificate_is_refused_530_5_7_0(
    world: SmtpWorld, postfix: PostfixPeer
) -> None:
    etc = str(postfix.config_dir)
    subprocess.run(["postconf", "-c", etc, "-X", "smtp_tls_chain_files"], check=True)
    subprocess.run(["postfix", "-c", etc, "reload"], check=True, capture_output=True)
    await in_thread(inject, postfix, postfix.address("alice"), str(DOCTOR), "no certificate")
    log = await wait_for_log(postfix, "A trust-space client certificate is required")
    assert "530 5.7.0 A trust-space client certificate is required" in log
    assert await world.everything() == []

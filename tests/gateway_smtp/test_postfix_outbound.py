"""Our relay and a real Postfix peer (a second operator of the trust space), over mutual TLS.

Acceptance 1 (our relay delivers to Postfix, a DSN comes back when Postfix refuses a
recipient) and 4 (the peer down for a while, then back: delivered once, after retries).
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from messaging.dsn import DsnAction
from messaging.outbound import DsnRequest, RecipientState, Ret
from messaging.types import Address
from tests.gateway_smtp.relay_support import PEER, relay_world
from tests.support.postfix import PostfixPeer, start_postfix
from tests.support.test_ca import TestCA, make_ca

pytestmark = pytest.mark.timeout(180)


def note(sender: Address, to: list[str], subject: str, message_id: str) -> bytes:
    return (
        f"From: {sender}\r\nTo: {', '.join(to)}\r\nSubject: {subject}\r\n"
        f"Message-ID: {message_id}\r\nDate: Sun, 22 Nov 2026 09:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Compte rendu de consultation.\r\n.leading dot kept\r\n"
    ).encode()


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return make_ca(tmp_path / "ca")


@pytest.fixture
def postfix(ca: TestCA) -> Iterator[PostfixPeer]:
    peer = start_postfix(ca, domain=PEER, mailboxes=("bob", "dan"))
    try:
        yield peer
    finally:
        peer.close()


async def test_relay_delivers_to_postfix_and_reports_the_refused_recipient(
    database_url: str, tmp_path: Path, ca: TestCA, postfix: PostfixPeer
) -> None:
    routes = {PEER: f"127.0.0.1:{postfix.port}"}
    async with relay_world(database_url, tmp_path, ca, routes) as world:
        alice, alice_keys = await world.person("alice")
        carol, _ = await world.person("carol")
        bob, refused = Address.parse(postfix.address("bob")), Address.parse(postfix.rejected)
        raw = note(alice, [str(bob), str(refused), str(carol)], "CR", "<cr-1@pli.test>")

        submitted = await world.delivery.send(
            alice,
            alice_keys,
            [bob, refused, carol],
            raw,
            dsn=DsnRequest(envid="ENV-77", ret=Ret.HDRS, orcpt={refused: f"rfc822;{refused}"}),
        )
        # The local recipient has it at once; the remote ones wait in the queue, sealed.
        assert [p.account for p in submitted.placed] == [carol, alice]
        [queued] = await world.store.outbound.list_queued()
        assert raw not in queued.message.sealed and b"Compte rendu" not in queued.message.sealed

        assert await world.worker.run_once() == 1

        [received] = postfix.wait_for("bob", 1)
        parsed = email.message_from_bytes(received, policy=email.policy.default)
        assert parsed["Message-ID"] == "<cr-1@pli.test>"
        assert b"Compte rendu de consultation.\r\n.leading dot kept" in received.replace(
            b"\n", b"\r\n"
        ).replace(b"\r\r\n", b"\r\n")
        assert postfix.messages("dan") == []
        # Postfix verified our client certificate: the connection is "Trusted" and signed.
        postfix.wait_for_log("Trusted TLS connection established")
        postfix.wait_for_log("client-signature")

        # Final for every recipient: the queue forgot the message, its sealed copy included.
        assert await world.store.outbound.list_queued() == []
        [report] = await world.reports(alice, alice_keys)
        assert report.original_message_id == "<cr-1@pli.test>"
        assert report.original_envelope_id == "ENV-77"
        [status] = report.recipients
        assert status.final_recipient == refused
        assert status.original_recipient == refused
        assert status.action is DsnAction.FAILED
        assert status.status == "5.1.1"
        assert "550" in status.diagnostic and "unknown" in status.diagnostic.lower()
        assert status.remote_mta == "127.0.0.1"
        actions = {(e.action, e.subject) for e in await world.store.list_trace(limit=50)}
        assert ("relay", str(bob)) in actions
        assert ("relay-failed", str(refused)) in actions
        assert ("report-failed", str(alice)) in actions


async def test_a_peer_down_for_a_while_gets_the_message_once_after_retries(
    database_url: str, tmp_path: Path, ca: TestCA, postfix: PostfixPeer
) -> None:
    routes = {PEER: f"127.0.0.1:{postfix.port}"}
    policy = {"retry_base_seconds": 60.0, "retry_jitter": 0.0, "delay_notice_seconds": 150.0}
    async with relay_world(database_url, tmp_path, ca, routes, **policy) as world:
        alice, alice_keys = await world.person("alice")
        bob = Address.parse(postfix.address("bob"))
        postfix.stop()

        await world.delivery.send(
            alice, alice_keys, [bob], note(alice, [str(bob)], "RDV", "<rdv-1@pli.test>")
        )
        delays = []
        for _ in range(3):
            assert await world.worker.run_once() == 1
            [queued] = await world.store.outbound.list_queued()
            [state] = queued.recipients
            assert state.state is RecipientState.QUEUED
            assert state.status.startswith("4.")
            delays.append(state.next_attempt - world.clock.now())
            # Backing off: nothing is due before the next attempt time.
            assert await world.worker.run_once() == 0
            world.clock.advance(state.next_attempt - world.clock.now())
        # Exponential back-off: 60 s, 120 s, 240 s (jitter off for the test).
        assert delays == [timedelta(seconds=60), timedelta(seconds=120), timedelta(seconds=240)]
        # Still queued 150 s after acceptance: one "delayed" report, not one per attempt.
        [delayed] = await world.reports(alice, alice_keys)
        assert [r.action for r in delayed.recipients] == [DsnAction.DELAYED]

        postfix.start()
        assert await world.worker.run_once() == 1
        [received] = postfix.wait_for("bob", 1)
        assert b"<rdv-1@pli.test>" in received
        assert await world.store.outbound.list_queued() == []
        assert await world.worker.run_once() == 0
        assert len(postfix.messages("bob")) == 1
        assert len(await world.reports(alice, alice_keys)) == 1  # no report of success


async def test_a_message_too_old_is_given_up_and_reported(
    database_url: str, tmp_path: Path, ca: TestCA, postfix: PostfixPeer
) -> None:
    routes = {PEER: f"127.0.0.1:{postfix.port}"}
    policy = {"retry_jitter": 0.0, "max_age_seconds": 3600.0, "delay_notice_seconds": 1e9}
    async with relay_world(database_url, tmp_path, ca, routes, **policy) as world:
        alice, alice_keys = await world.person("alice")
        bob = Address.parse(postfix.address("bob"))
        postfix.stop()
        await world.delivery.send(alice, alice_keys, [bob], note(alice, [str(bob)], "x", "<o@p>"))
        assert await world.worker.run_once() == 1
        world.clock.advance(timedelta(hours=2))
        assert await world.worker.run_once() == 1
        assert await world.store.outbound.list_queued() == []
        [report] = await world.reports(alice, alice_keys)
        [status] = report.recipients
        assert (status.action, status.status) == (DsnAction.FAILED, "5.4.7")


async def test_notify_never_silences_the_failure_report(
    database_url: str, tmp_path: Path, ca: TestCA, postfix: PostfixPeer
) -> None:
    routes = {PEER: f"127.0.0.1:{postfix.port}"}
    async with relay_world(database_url, tmp_path, ca, routes) as world:
        alice, alice_keys = await world.person("alice")
        refused = Address.parse(postfix.rejected)
        await world.delivery.send(
            alice,
            alice_keys,
            [refused],
            note(alice, [str(refused)], "x", "<n@p>"),
            dsn=DsnRequest(notify={refused: frozenset({"NEVER"})}),
        )
        assert await world.worker.run_once() == 1
        assert await world.store.outbound.list_queued() == []
        assert await world.reports(alice, alice_keys) == []


async def test_a_peer_whose_certificate_is_from_another_ca_gets_nothing(
    database_url: str, tmp_path: Path, ca: TestCA
) -> None:
    stranger = start_postfix(make_ca(tmp_path / "other-ca", "Not the trust anchor"), domain=PEER)
    try:
        routes = {PEER: f"127.0.0.1:{stranger.port}"}
        async with relay_world(database_url, tmp_path, ca, routes) as world:
            alice, alice_keys = await world.person("alice")
            bob = Address.parse(stranger.address("bob"))
            await world.delivery.send(
                alice, alice_keys, [bob], note(alice, [str(bob)], "x", "<t@p>")
            )
            assert await world.worker.run_once() == 1
            [queued] = await world.store.outbound.list_queued()
            [state] = queued.recipients
            assert (state.state, state.status) == (RecipientState.QUEUED, "4.7.5")
            assert "certificate" in state.diagnostic.lower()
            assert stranger.messages("bob") == []
    finally:
        stranger.close()


def max_concurrent_sessions(log: str) -> int:
    """The most smtpd sessions open at once, from Postfix's connect/disconnect lines."""
    current = peak = 0
    for line in log.splitlines():
        if "postfix/smtpd[" not in line:
            continue
        if ": connect from " in line:
            current += 1
            peak = max(peak, current)
        elif ": disconnect from " in line:
            current -= 1
    return peak


async def test_at_most_the_configured_connections_go_to_one_domain(
    database_url: str, tmp_path: Path, ca: TestCA, postfix: PostfixPeer
) -> None:
    routes = {PEER: f"127.0.0.1:{postfix.port}"}
    async with relay_world(database_url, tmp_path, ca, routes, concurrency_per_domain=2) as world:
        alice, alice_keys = await world.person("alice")
        bob = Address.parse(postfix.address("bob"))
        for index in range(10):
            raw = note(alice, [str(bob)], f"n{index}", f"<c{index}@pli.test>")
            await world.delivery.send(alice, alice_keys, [bob], raw + b"x" * 200_000 + b"\r\n")
        assert await world.worker.run_once() == 10
        postfix.wait_for("bob", 10)
        assert await world.store.outbound.list_queued() == []
        assert 1 <= max_concurrent_sessions(postfix.log()) <= 2

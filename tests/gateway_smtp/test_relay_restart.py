"""``pli serve`` runs the relay; killed with SIGKILL mid-queue and restarted, it loses nothing.

Acceptance 4 (the relay half): messages accepted into the queue by one process are relayed
to a real Postfix by ``pli serve``; the server is killed with SIGKILL while it works through
the queue, restarted, and every accepted message reaches the peer. A message the peer had
accepted in the instant before the kill — its ``250`` received, not yet recorded — is sent
again after the lease (at-least-once, RFC 5321 §6.1's "duplicate rather than lose"): the
receiving side deduplicates on Message-ID + recipient. The test allows at most as many
such duplicates as the relay had connections in flight.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from messaging import Address, MailboxKind
from pli.settings import load_settings
from pli.wiring import open_pli
from tests.gateway_smtp.relay_support import PEER
from tests.support.cli import Pli
from tests.support.postfix import PostfixPeer, start_postfix
from tests.support.test_ca import TestCA, make_ca

pytestmark = pytest.mark.timeout(300)

MESSAGES = 24
CONCURRENCY = 4


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


def relay_env(pli: Pli, ca: TestCA, postfix: PostfixPeer) -> dict[str, str]:
    ours = ca.issue("mx.pli.test", dns_names=("127.0.0.1",), file_stem="pli")
    return pli.env() | {
        "PLI_HTTP_PORT": "0",
        "PLI_TLS_CERT": str(ours.chain),
        "PLI_TLS_KEY": str(ours.key),
        "PLI_TRUST_ANCHOR": str(ca.cert_path),
        "PLI_RELAY_PEER_DOMAINS": json.dumps([PEER]),
        "PLI_RELAY_ROUTES": json.dumps({PEER: f"127.0.0.1:{postfix.port}"}),
        "PLI_RELAY_CONCURRENCY_PER_DOMAIN": str(CONCURRENCY),
        "PLI_RELAY_POLL_SECONDS": "0.2",
        "PLI_RELAY_LEASE_SECONDS": "2",
        "PLI_RELAY_RETRY_BASE_SECONDS": "0.5",
        "PLI_RELAY_RETRY_JITTER": "0",
    }


def serve(env: dict[str, str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pli", "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    fronts = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line or line.startswith("ready"):
            break
        fronts.append(line.split()[0])
    if "relay" not in fronts:
        proc.kill()
        _, err = proc.communicate(timeout=30)
        raise AssertionError(f"pli serve did not start its relay: {fronts}\n{err}")
    return proc


def message_ids(postfix: PostfixPeer) -> Counter[str]:
    found: Counter[str] = Counter()
    for raw in postfix.messages("bob"):
        for line in raw.splitlines():
            if line.lower().startswith(b"message-id:"):
                found[line.split(b":", 1)[1].strip().decode()] += 1
    return found


async def queue_messages(pli: Pli, env: dict[str, str]) -> set[str]:
    settings = load_settings(
        pli.home,
        database_url=pli.database_url,
        relay_peer_domains=[PEER],
        passphrase_opslimit=1,
        passphrase_memlimit=8192,
        app_password_opslimit=1,
        app_password_memlimit=8192,
        tls_cert=Path(env["PLI_TLS_CERT"]),
        tls_key=Path(env["PLI_TLS_KEY"]),
        trust_anchor=Path(env["PLI_TRUST_ANCHOR"]),
    )
    app = await open_pli(settings)
    try:
        alice = Address.parse("alice@pli.test")
        await app.accounts.create(alice, MailboxKind.PER, "Alice", "pass alice")
        keys = (await app.accounts.unlock(alice, "pass alice")).keys
        bob = Address.parse(f"bob@{PEER}")
        ids = set()
        for index in range(MESSAGES):
            message_id = f"<restart-{index}@pli.test>"
            raw = (
                f"From: alice@pli.test\r\nTo: {bob}\r\nSubject: n{index}\r\n"
                f"Message-ID: {message_id}\r\n\r\n" + "ligne\r\n" * 2000
            ).encode()
            await app.delivery.send(alice, keys, [bob], raw)
            ids.add(message_id)
        assert len(await app.store.outbound.list_queued()) == MESSAGES
        return ids
    finally:
        await app.close()


async def queued_after(pli: Pli, env: dict[str, str]) -> int:
    settings = load_settings(
        pli.home,
        database_url=pli.database_url,
        tls_cert=Path(env["PLI_TLS_CERT"]),
        tls_key=Path(env["PLI_TLS_KEY"]),
        trust_anchor=Path(env["PLI_TRUST_ANCHOR"]),
    )
    app = await open_pli(settings)
    try:
        return len(await app.store.outbound.list_queued())
    finally:
        await app.close()


async def test_sigkill_mid_queue_then_restart_delivers_every_accepted_message(
    tmp_path: Path, database_url: str, ca: TestCA, postfix: PostfixPeer
) -> None:
    pli = Pli(home=tmp_path / "home", database_url=database_url)
    pli.run("init", "--demo", "--domain", "pli.test")
    env = relay_env(pli, ca, postfix)
    accepted = await queue_messages(pli, env)

    first = serve(env)
    try:
        deadline = time.monotonic() + 60
        while not postfix.messages("bob") and time.monotonic() < deadline:
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)  # mid-queue: some delivered, most not yet
        first.communicate(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == -signal.SIGKILL
    before_restart = sum(message_ids(postfix).values())
    assert before_restart < MESSAGES, "the kill came too late to be mid-queue"

    second = serve(env)
    try:
        deadline = time.monotonic() + 120
        while set(message_ids(postfix)) != accepted and time.monotonic() < deadline:
            time.sleep(0.1)
        assert set(message_ids(postfix)) == accepted, postfix.log()[-3000:]
        # Messages the killed process had handed over without recording it come back after
        # their lease and are sent again; the queue ends empty either way.
        deadline = time.monotonic() + 60
        while await queued_after(pli, env) and time.monotonic() < deadline:
            time.sleep(0.5)
        # SIGTERM lets the cycle in flight record its outcomes and forget the messages.
        second.send_signal(signal.SIGTERM)
        second.communicate(timeout=60)
    finally:
        if second.poll() is None:
            second.kill()
    assert second.returncode == 0
    assert await queued_after(pli, env) == 0
    counts = message_ids(postfix)
    duplicates = sum(n - 1 for n in counts.values())
    assert duplicates <= CONCURRENCY, counts

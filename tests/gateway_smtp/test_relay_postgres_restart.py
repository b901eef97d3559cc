"""PostgreSQL restarted while the relay works and messages keep coming (acceptance 4).

A private PostgreSQL cluster (never the shared server) is restarted while the relay worker
runs and a sender keeps submitting: submissions during the outage fail with
``Unavailable`` — which the SMTP gateways answer ``451 4.3.0`` — and nothing of them is
stored (a COMMIT whose answer was lost in the restart is the one ambiguity: the client
retries and the receiver's Message-ID deduplication absorbs it); the worker survives the
outage; once the database is back every accepted message reaches the Postfix peer, and
the queue ends empty.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from messaging import Address, Unavailable
from tests.gateway_smtp.relay_support import PEER, relay_world
from tests.support.postfix import PostfixPeer, start_postfix
from tests.support.postgres import _pg_bindir, create_database, throwaway_cluster
from tests.support.test_ca import TestCA, make_ca

pytestmark = pytest.mark.timeout(300)


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


def message_id(raw: bytes) -> str:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    return str(parsed["Message-ID"])


async def restart(admin_url: str) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        data = await connection.fetchval("SHOW data_directory")
    finally:
        await connection.close()
    done = await asyncio.to_thread(
        subprocess.run,
        ["runuser", "-u", "postgres", "--", str(_pg_bindir() / "pg_ctl"), "-D", data]
        # A log file, or the new postmaster would hold our output pipe open for ever.
        + ["-l", str(Path(data).parent / "restart.log"), "-m", "fast", "-w", "restart"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


async def test_relay_and_submissions_heal_after_a_postgresql_restart(
    tmp_path: Path, ca: TestCA, postfix: PostfixPeer
) -> None:
    with throwaway_cluster() as admin_url:
        url = await create_database(admin_url)
        routes = {PEER: f"127.0.0.1:{postfix.port}"}
        policy = {"poll_seconds": 0.1, "retry_base_seconds": 0.0, "lease_seconds": 0.0}
        async with relay_world(url, tmp_path, ca, routes, **policy) as world:
            alice, keys = await world.person("alice")
            bob = Address.parse(postfix.address("bob"))
            stop = asyncio.Event()
            worker = asyncio.create_task(world.worker.run(stop))
            accepted: list[str] = []
            refused = 0

            async def sender() -> None:
                nonlocal refused
                for index in range(60):
                    message_id = f"<pg-{index}@pli.test>"
                    raw = f"From: {alice}\r\nMessage-ID: {message_id}\r\n\r\nn{index}\r\n"
                    try:
                        await world.delivery.send(alice, keys, [bob], raw.encode())
                    except Unavailable:
                        refused += 1
                    else:
                        accepted.append(message_id)
                    await asyncio.sleep(0.05)

            load = asyncio.create_task(sender())
            await asyncio.sleep(0.5)
            await restart(admin_url)
            await load

            assert refused > 0, "the restart was not seen by any submission"
            assert len(accepted) > 0
            got: set[str] = set()
            for _ in range(600):
                got = {message_id(raw) for raw in postfix.messages("bob")}
                if got >= set(accepted):
                    break
                await asyncio.sleep(0.1)
            assert got >= set(accepted), postfix.log()[-3000:]
            for _ in range(100):
                if not await world.store.outbound.list_queued():
                    break
                await asyncio.sleep(0.1)
            assert await world.store.outbound.list_queued() == []
            assert not worker.done()
            stop.set()
            await asyncio.wait_for(worker, 30)

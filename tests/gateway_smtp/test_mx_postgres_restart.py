"""Acceptance 4 on the MX: a private PostgreSQL restarted while a peer keeps delivering.
During the outage the peer is told ``451 4.3.0`` (come back later), never a 5xx; every
message answered ``250`` is stored, once; the MX heals without a restart of its own."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from gateway_smtp.limits import SmtpLimits
from mailbox_store import SqlMailboxStore
from tests.gateway_smtp.conftest import (
    DOCTOR,
    Certificates,
    in_thread,
    make_world,
    mx_session,
    note,
    raw_data,
)
from tests.gateway_smtp.test_relay_postgres_restart import restart
from tests.support.postgres import create_database, throwaway_cluster

pytestmark = pytest.mark.timeout(300)
PEER_SENDER = "dr.house@hopital.peer.test"


def load(world, count: int) -> list[tuple[int, str]]:
    """One message per transaction, each with its own Message-ID: (reply code, Message-ID)."""
    results = []
    for index in range(count):
        message_id = f"<pg-mx-{index}@peer.test>"
        try:
            client = mx_session(world, world.certs.peer)
        except OSError:
            results.append((-1, message_id))
            continue
        try:
            code = client.docmd(f"MAIL FROM:<{PEER_SENDER}>")[0]
            if code == 250:
                code = client.docmd(f"RCPT TO:<{DOCTOR}>")[0]
            if code == 250:
                payload = note(PEER_SENDER, DOCTOR).replace(
                    b"<note-1@peer.test>", message_id.encode()
                )
                code = raw_data(client, payload + b"\r\n.\r\n")[0]
            results.append((code, message_id))
        finally:
            client.close()
        time.sleep(0.05)
    return results


async def test_the_mx_answers_451_during_a_postgresql_restart_and_heals(
    tmp_path: Path, certs: Certificates
) -> None:
    with throwaway_cluster() as admin_url:
        url = await create_database(admin_url)
        store = await SqlMailboxStore.open(url, blob_dir=tmp_path / "blobs")
        world = await make_world(tmp_path, certs, SmtpLimits(auth_failure_delay=0), store=store)
        try:
            running = asyncio.create_task(in_thread(load, world, 60))
            await asyncio.sleep(0.5)
            await restart(admin_url)
            results = await running
            codes = [code for code, _ in results]
            assert all(code in (250, 451) for code in codes), codes
            assert 451 in codes, "the restart was not seen by any transaction"
            accepted = {mid for code, mid in results if code == 250}
            assert accepted
            assert codes[-1] == 250  # healed, without restarting the MX
            stored = set()
            for record in await store.list_messages(DOCTOR, "INBOX"):
                raw = (await world.opened(DOCTOR, record.uid)).raw
                stored.add(raw.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0].decode())
            assert accepted <= stored
            # The one ambiguity: a COMMIT whose answer the restart lost was answered 451; the
            # peer sends it again and Message-ID deduplication keeps it single.
            assert len(stored - accepted) <= 1
        finally:
            await world.fronts.stop(grace=1)
            await store.close()

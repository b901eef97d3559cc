"""An acknowledged delivery survives the death of the process that acknowledged it.

A child process delivers in a loop with many concurrent callers (so group commit is in
play) and prints each envelope id once ``deliver`` has returned; the test kills it with
SIGKILL mid-stream, reopens the database, and finds every acknowledged envelope.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from mailbox_store import SqlMailboxStore
from tests.mailbox_store import factories as f

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from mailbox_store import SqlMailboxStore
    from tests.mailbox_store import factories as f

    async def main(url):
        store = await SqlMailboxStore.open(url)
        alice, bob = f.address("alice"), f.address("bob")
        await store.create_account(f.account(alice), [])
        await store.create_account(f.account(bob), [])
        print("ready", flush=True)

        async def caller():
            while True:
                sent = f.delivery(alice, [bob])
                await store.deliver(sent)
                print(sent.envelope_id, flush=True)

        await asyncio.gather(*(caller() for _ in range(16)))

    asyncio.run(main(sys.argv[1]))
    """
)


@pytest.mark.slow
async def test_every_acknowledged_delivery_survives_a_kill(database_url: str) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        database_url,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    acknowledged: list[str] = []
    try:
        assert await asyncio.wait_for(child.stdout.readline(), 60) == b"ready\n"
        while len(acknowledged) < 200:
            line = await asyncio.wait_for(child.stdout.readline(), 60)
            assert line, "the child stopped early"
            acknowledged.append(line.decode().strip())
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()

    store = await SqlMailboxStore.open(database_url)
    try:
        stored = [m.envelope_id for m in await store.list_messages(f.address("bob"), "INBOX")]
        assert set(acknowledged) <= set(stored)
        assert [m.uid for m in await store.list_messages(f.address("bob"), "INBOX")] == list(
            range(1, len(stored) + 1)
        )
    finally:
        await store.close()

"""Acceptance: SIGKILL during concurrent submissions loses nothing acknowledged and shows
nothing half-written (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from messaging import Address, parse_message
from pli.settings import load_settings
from pli.wiring import open_pli
from tests.support.cli import Pli

SENDER = "crash.sender@medecin.pli.test"
RECIPIENT = "crash.recipient@medecin.pli.test"


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(2))
async def test_sigkill_mid_submission_keeps_every_acknowledged_message(
    pli: Pli, tmp_path: Path, round_: int
):
    for address in (SENDER, RECIPIENT):
        pli.run("account", "create", address, stdin=f"pass {address}\n")
    secret = tmp_path / "sender-passphrase"
    secret.write_text(f"pass {SENDER}\n")
    rng = random.Random()
    kill_after = rng.randint(5, 120)

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.submitter",
            SENDER,
            RECIPIENT,
            str(secret),
            "100000",
            "16",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=pli.env(),
        text=True,
    )
    acked: dict[int, str] = {}
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    try:
        while len(acked) < kill_after and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("ACK "):
                _, number, envelope = line.split()
                acked[int(number)] = envelope
        # Kill at a moment chosen at random, without a chance to flush or close anything.
        time.sleep(rng.random() * 0.05)
        proc.send_signal(signal.SIGKILL)
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    for line in rest.splitlines():
        if line.startswith("ACK "):
            _, number, envelope = line.split()
            acked[int(number)] = envelope
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= kill_after, err

    settings = load_settings(
        pli.home,
        database_url=pli.database_url,
        passphrase_opslimit=1,
        passphrase_memlimit=8192,
        app_password_opslimit=1,
        app_password_memlimit=8192,
    )
    app = await open_pli(settings)
    try:
        recipient = Address.parse(RECIPIENT)
        keys = (await app.accounts.unlock(recipient, f"pass {RECIPIENT}")).keys
        records = await app.delivery.list_messages(recipient, "INBOX")
        by_envelope = {r.envelope_id: r for r in records}
        for index, envelope in acked.items():
            assert envelope in by_envelope, f"acknowledged message {index} was lost"
        # Everything visible opens and verifies: no half-written message anywhere.
        for record in records:
            opened = await app.delivery.open_message(recipient, keys, "INBOX", record.uid)
            assert parse_message(opened.raw).subject.startswith("crash test ")
        uids = [r.uid for r in records]
        assert uids == sorted(set(uids))
    finally:
        await app.close()

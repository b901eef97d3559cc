"""Acceptance: `pli send` then `pli read` round-trip a 5 MB attachment, e2e and signed; no
plaintext reaches the database or the blobs."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from tests.support.cli import Pli
from tests.support.scan import encodings, files_containing, tables_containing

DOCTOR = "sophie.martin@medecin.pli.test"
PATIENT = "185057800608491@patient.pli.test"


def create(pli: Pli, address: str, passphrase: str, kind: str = "PER") -> str:
    out = pli.run("account", "create", address, "--kind", kind, stdin=f"{passphrase}\n").stdout
    assert "Recovery key" in out
    return out


async def test_a_5mb_attachment_round_trips_e2e_and_no_plaintext_is_stored(
    pli: Pli, tmp_path: Path
):
    create(pli, DOCTOR, "doctor secret")
    create(pli, PATIENT, "patient secret", kind="PAT")
    canary = secrets.token_hex(16)
    attachment = tmp_path / "scan.pdf"
    payload = os.urandom(5 * 1024 * 1024 // 2) + canary.encode() + os.urandom(5 * 1024 * 1024 // 2)
    attachment.write_bytes(payload)

    sent = pli.run(
        "send",
        "--from",
        DOCTOR,
        "--to",
        PATIENT,
        "--subject",
        f"Compte rendu {canary}",
        "--body",
        f"Résultats: {canary}",
        "--attach",
        str(attachment),
        stdin="doctor secret\n",
    )
    assert "sealed e2e" in sent.stdout

    listing = pli.run("list", PATIENT, stdin="patient secret\n").stdout
    assert f"Compte rendu {canary}" in listing
    assert "e2e/valid" in listing

    saved = tmp_path / "saved"
    shown = pli.run("read", PATIENT, "1", "--save", str(saved), stdin="patient secret\n").stdout
    assert "Provenance:  e2e" in shown
    assert f"Signature:   valid ({DOCTOR})" in shown
    assert f"Résultats: {canary}" in shown
    assert (saved / "scan.pdf").read_bytes() == payload

    needles = encodings(canary.encode())
    raw = pli.run("read", PATIENT, "1", "--raw", stdin="patient secret\n").stdout.encode()
    assert any(n in raw for n in needles[1:]), "control: the MIME carries the canary in base64"
    assert files_containing(pli.home, needles) == []
    assert await tables_containing(pli.database_url, needles) == []


def test_a_wrong_passphrase_reads_nothing(pli: Pli):
    create(pli, DOCTOR, "doctor secret")
    result = pli.run("list", DOCTOR, stdin="not it\n", check=False)
    assert result.returncode == 1
    assert "authentication failed" in result.stderr


def test_the_sender_sees_the_message_in_sent(pli: Pli):
    create(pli, DOCTOR, "doctor secret")
    create(pli, PATIENT, "patient secret", kind="PAT")
    pli.run(
        "send",
        "--from",
        DOCTOR,
        "--to",
        PATIENT,
        "--subject",
        "Hello",
        "--body",
        "b",
        stdin="doctor secret\n",
    )
    listing = pli.run("list", DOCTOR, "--folder", "Sent", stdin="doctor secret\n").stdout
    assert "Hello" in listing and "\\Seen" in listing


def test_app_passwords_and_passphrase_change_from_the_command_line(pli: Pli):
    create(pli, DOCTOR, "doctor secret")
    made = pli.run(
        "account",
        "app-password",
        DOCTOR,
        "create",
        "--label",
        "Thunderbird",
        stdin="doctor secret\n",
    ).stdout
    assert "Thunderbird" in made
    listed = pli.run("account", "app-password", DOCTOR, "list").stdout
    assert "Thunderbird" in listed and "never" in listed
    ident = listed.splitlines()[1].split()[0]
    pli.run("account", "passwd", DOCTOR, stdin="doctor secret\nnew secret\n")
    assert pli.run("list", DOCTOR, stdin="doctor secret\n", check=False).returncode == 1
    assert pli.run("list", DOCTOR, stdin="new secret\n").returncode == 0
    pli.run("account", "app-password", DOCTOR, "revoke", ident)
    assert "Thunderbird" not in pli.run("account", "app-password", DOCTOR, "list").stdout


def test_the_recovery_key_resets_the_passphrase(pli: Pli):
    out = create(pli, DOCTOR, "forgotten")
    recovery = out.strip().splitlines()[-1].strip()
    pli.run("account", "passwd", DOCTOR, "--recovery-key", stdin=f"{recovery}\nfresh one\n")
    assert pli.run("list", DOCTOR, stdin="fresh one\n").returncode == 0


def test_demo_seeds_accounts_and_messages_and_prints_how_to_log_in(pli: Pli):
    out = pli.run("demo").stdout
    assert DOCTOR in out and "demo-" in out
    passphrase = next(line.split()[-1] for line in out.splitlines() if line.startswith(PATIENT))
    listing = pli.run("list", PATIENT, stdin=f"{passphrase}\n").stdout
    assert "Votre compte rendu de consultation" in listing
    again = pli.run("demo").stdout
    assert passphrase in again  # a second run reuses the accounts it made

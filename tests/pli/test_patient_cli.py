"""``pli purge`` and ``pli patient …`` as a user runs them (a subprocess), on each engine."""

from __future__ import annotations

from datetime import UTC, datetime

from messaging import Address, MailboxKind, ManualClock
from pli.settings import load_settings
from pli.wiring import open_pli
from tests.support.cli import FAST_KDF, Pli

PATIENT = "277076322082910@patient.pli.test"
DOCTOR = "sophie.martin@medecin.pli.test"


async def closed_long_ago(pli: Pli, address: str, closed: datetime) -> None:
    """An account created and closed at ``closed``, by the wired application on a clock
    set in the past (the purge then runs on the real clock)."""
    settings = load_settings(
        pli.home,
        database_url=pli.database_url,
        passphrase_opslimit=int(FAST_KDF["PLI_PASSPHRASE_OPSLIMIT"]),
        passphrase_memlimit=int(FAST_KDF["PLI_PASSPHRASE_MEMLIMIT"]),
    )
    app = await open_pli(settings, clock=ManualClock(closed))
    try:
        who = Address.parse(address)
        await app.accounts.create(who, MailboxKind.PAT, address, "passphrase")
        await app.patients.close(who)
    finally:
        await app.close()


async def test_purge_dry_run_reports_and_purge_deletes_only_what_is_due(pli: Pli) -> None:
    await closed_long_ago(pli, "100000000000001@patient.pli.test", datetime(2014, 1, 6, tzinfo=UTC))
    await closed_long_ago(pli, "200000000000002@patient.pli.test", datetime(2021, 5, 3, tzinfo=UTC))
    pli.run("account", "create", DOCTOR, stdin="pw\n")

    dry = pli.run("purge", "--dry-run")
    assert "1 account(s) to purge, 1 closed account(s) retained" in dry.stdout
    assert "purge  100000000000001@patient.pli.test (PAT) closed 2014-01-06" in dry.stdout
    assert "retain 200000000000002@patient.pli.test (PAT) closed 2021-05-03" in dry.stdout
    assert "nothing was deleted" in dry.stdout
    listed = pli.run("account", "list").stdout
    assert "100000000000001@patient.pli.test" in listed

    done = pli.run("purge", "--lang", "fr")
    assert "purged 1 account(s)" in done.stdout
    listed = pli.run("account", "list").stdout
    assert "100000000000001@patient.pli.test" not in listed
    assert "200000000000002@patient.pli.test" in listed and DOCTOR in listed


def test_a_patient_declares_the_treating_doctor_who_then_cannot_be_blocked(pli: Pli) -> None:
    pli.run("account", "create", DOCTOR, stdin="pw\n")
    pli.run("account", "create", PATIENT, "--kind", "PAT", stdin="secret\n")

    pli.run("patient", "treating-doctor", PATIENT, DOCTOR, stdin="secret\n")
    refused = pli.run("patient", "block", PATIENT, DOCTOR, stdin="secret\n", check=False)
    assert refused.returncode == 1
    assert "Vous ne pouvez pas bloquer votre médecin traitant" in refused.stderr

    history = pli.run("patient", "history", PATIENT, "--lang", "en", stdin="secret\n")
    assert "Blocking the regular doctor refused" in history.stdout
    assert "verified: 1 entries" in history.stdout
    wrong = pli.run("patient", "history", PATIENT, stdin="not it\n", check=False)
    assert wrong.returncode == 1 and "authentication failed" in wrong.stderr


def test_the_demo_shows_a_treating_doctor_a_thread_a_document_and_what_to_answer(pli: Pli) -> None:
    out = pli.run("demo").stdout
    patient = "185057800608491@patient.pli.test"
    assert f"Patient {patient}: médecin traitant sophie.martin@medecin.pli.test" in out
    assert "Document envoyé" in out
    passphrase = next(line.split()[-1] for line in out.splitlines() if line.startswith(patient))
    listing = pli.run("list", patient, stdin=f"{passphrase}\n").stdout
    assert "Suivi de votre tension" in listing
    assert "document" in listing and "XDM/1.0/DDM" in listing
    sent = pli.run("list", patient, "--folder", "Sent", stdin=f"{passphrase}\n").stdout
    assert "Re: Suivi de votre tension" in sent
    # An invitation for the agenda and a consent request, both answered in the webmail.
    assert "appointment" in listing and "consent-request" in listing
    history = pli.run("patient", "history", patient, stdin=f"{passphrase}\n").stdout
    assert "Consentement demandé" in history
    assert "verified: 2 entries" in history

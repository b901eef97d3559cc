"""Demo data: a few accounts of each kind and some messages between them.

Demo passphrases are random per data directory, written to ``demo-credentials.txt`` (mode
0600) in it, and printed: they protect demo data only, in demo mode only.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, replace
from typing import TextIO

from crypto import GatewayInfo
from messaging import Address, Attachment, Draft, MailboxKind, build_message
from messaging.mime import new_message_id
from pli.demo_patient import seed_patient
from pli.terminal import table
from pli.wiring import Pli

__all__ = ["seed", "DEMO_ACCOUNTS"]


@dataclass(frozen=True, slots=True)
class DemoAccount:
    local: str
    subdomain: str
    kind: MailboxKind
    name: str


DEMO_ACCOUNTS = (
    DemoAccount("sophie.martin", "medecin", MailboxKind.PER, "Dr_Sophie_MARTIN_Cabinet Martin"),
    DemoAccount("cardiologie", "ch-exemple", MailboxKind.ORG, "Service de cardiologie"),
    DemoAccount("labo-resultats", "ch-exemple", MailboxKind.APP, "Laboratoire - résultats"),
    DemoAccount("pharmacie.centrale", "pharmacie", MailboxKind.ORG, "Pharmacie centrale"),
    DemoAccount("185057800608491", "patient", MailboxKind.PAT, "Camille Durand"),
)

_TINY_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


def _address(pli: Pli, account: DemoAccount) -> Address:
    return Address.parse(f"{account.local}@{account.subdomain}.{pli.settings.domain}")


def _read_credentials(path: os.PathLike[str]) -> dict[str, str]:
    try:
        with open(path, encoding="utf-8") as handle:
            return dict(line.rstrip("\n").split(" ", 1) for line in handle if " " in line)
    except FileNotFoundError:
        return {}


async def seed(pli: Pli, out: TextIO) -> int:
    path = pli.settings.home / "demo-credentials.txt"
    known = _read_credentials(path)
    created: dict[str, str] = {}
    for account in DEMO_ACCOUNTS:
        address = _address(pli, account)
        if await pli.store.get_account(address) is not None:
            continue
        passphrase = f"demo-{secrets.token_urlsafe(9)}"
        await pli.accounts.create(address, account.kind, account.name, passphrase)
        created[str(address)] = passphrase
    if created:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            for text, secret in created.items():
                handle.write(f"{text} {secret}\n")
        known.update(created)
        await _seed_messages(pli, created)
        doctor, patient = _address(pli, DEMO_ACCOUNTS[0]), _address(pli, DEMO_ACCOUNTS[-1])
        await seed_patient(pli, doctor, patient, created, _TINY_PDF, out)
        await _reference_demo_services(pli)
        if pli.webmail is not None:
            # Demo only: the patient's sign-in codes go to demo-signin-codes.txt, never here.
            patient = _address(pli, DEMO_ACCOUNTS[-1])
            if str(patient) in created:
                await pli.webmail.set_preferences(
                    patient, notify_email="camille.durand@example.org", language="fr"
                )
    rows = [
        [str(_address(pli, a)), a.kind.value, known.get(str(_address(pli, a)), "(unknown)")]
        for a in DEMO_ACCOUNTS
    ]
    out.write(f"Demo accounts (passphrases are also in {path}):\n")
    table(rows, ["ADDRESS", "TYPE", "PASSPHRASE"], out)
    return 0


async def _reference_demo_services(pli: Pli) -> None:
    """The demo laboratory's application is *référencée*: the webmail's catalogue lists it."""
    lab = _address(pli, DEMO_ACCOUNTS[2])
    application = await pli.directory.get_application(lab)
    if application is not None and not application.referenced:
        await pli.directory.update_application(
            replace(
                application,
                referenced=True,
                category="Biologie médicale",
                description="Vos résultats d'analyses et vos rendez-vous de prélèvement.",
            )
        )


async def _seed_messages(pli: Pli, passphrases: dict[str, str]) -> None:
    doctor, _org, lab, pharmacy, patient = (_address(pli, a) for a in DEMO_ACCOUNTS)
    if str(doctor) not in passphrases or str(patient) not in passphrases:
        return
    unlocked = await pli.accounts.unlock(doctor, passphrases[str(doctor)])
    welcome = Draft(
        sender=doctor,
        recipients=(patient,),
        subject="Votre compte rendu de consultation",
        body="Bonjour,\n\nVous trouverez ci-joint le compte rendu de votre consultation.\n\n"
        "Dr Sophie Martin",
        sender_name="Dr Sophie MARTIN",
        attachments=(Attachment("compte-rendu.pdf", _TINY_PDF),),
    )
    raw = build_message(
        welcome, message_id=new_message_id(pli.settings.domain), date=pli.clock.now()
    )
    await pli.delivery.send(doctor, unlocked.keys, (patient,), raw)
    result = Draft(
        sender=lab,
        recipients=(doctor,),
        subject="Résultats disponibles",
        body="Les résultats d'analyse de votre patient sont disponibles.",
        sender_name="Laboratoire",
    )
    raw = build_message(
        result, message_id=new_message_id(pli.settings.domain), date=pli.clock.now()
    )
    await pli.delivery.receive(lab, (doctor,), raw, gateway=GatewayInfo(peer="demo-api", tls=""))
    note = Draft(
        sender=pharmacy,
        recipients=(doctor,),
        subject="Renouvellement d'ordonnance",
        body="Bonjour Docteur, pouvez-vous confirmer le renouvellement ?",
        sender_name="Pharmacie centrale",
    )
    raw = build_message(note, message_id=new_message_id(pli.settings.domain), date=pli.clock.now())
    await pli.delivery.receive(
        pharmacy, (doctor,), raw, gateway=GatewayInfo(peer="demo-smtp", tls="")
    )

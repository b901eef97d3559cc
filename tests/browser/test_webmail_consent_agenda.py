"""A patient in Chromium answers an appointment, grants then withdraws a consent, blocks a
professional and reads the approved services (issue 8, acceptance 2), with everything that
needs a key done in the page: the iTIP REPLY is written and sealed there, the consent answer
and withdrawal are signed with the patient's Ed25519 key there, and the document's content
key is re-wrapped there for the doctor. The doctor's side checks each with Python's own
readers; the access history shows each step; screenshots and axe-core at both widths;
afterwards no passphrase, auth key or plaintext on disk, in the database or the log."""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta
from pathlib import Path

import icalendar
import pytest
from playwright.async_api import Browser, expect

from messaging.agenda import ReceivedAppointment, derive_agenda
from messaging.directory import Application
from messaging.errors import RuleViolation
from messaging.kinds.appointment import (
    Method,
    PartStat,
    build_appointment,
    new_request,
    new_uid,
    parse_appointment,
)
from messaging.kinds.consent import Scope
from messaging.types import Address, MessageKind
from pli.wiring import tls_files
from tests.browser.test_webmail_flows import DESKTOP, PHONE, shoot
from tests.browser.test_webmail_patient_screens import (
    _submit,
    doctor_submits_a_document,
    screen,
    sign_in,
)
from tests.support.webmail_world import DOCTOR, PATIENT, REMOTE, WebmailWorld

SERVICE = "rdv@labo.pli.test"


async def _inbox_of_kind(world: WebmailWorld, address: Address, kind: MessageKind) -> list[int]:
    return [r.uid for r in await world.pli.store.list_messages(address, "INBOX") if r.kind is kind]


async def test_a_patient_answers_an_appointment_and_grants_then_withdraws_a_consent(
    world: WebmailWorld, browser: Browser, artifacts: Path, submission: int
) -> None:
    patient, doctor = Address.parse(PATIENT), Address.parse(DOCTOR)
    await doctor_submits_a_document(world, submission)
    [document_id] = [r.envelope_id for r in await world.pli.store.list_messages(patient, "INBOX")]
    doctor_keys = (await world.pli.accounts.unlock(doctor, world.passphrases[DOCTOR])).keys

    # The doctor's mail client sends an invitation over SMTP submission, as Thunderbird would.
    canary = secrets.token_hex(16)
    now = world.pli.clock.now()
    invitation = new_request(
        uid=new_uid("medecin.pli.test"),
        organizer=doctor,
        organizer_name="Dr Sophie MARTIN",
        attendees=[patient],
        start=now + timedelta(days=2),
        end=now + timedelta(days=2, minutes=30),
        summary="Consultation de suivi",
        location="Cabinet, 3 rue de la Paix",
        description=f"Apportez vos derniers résultats. {canary}",
        dtstamp=now,
        reminder=timedelta(days=1),
    )
    raw = build_appointment(invitation, message_id="<rdv-1@medecin.pli.test>", date=now)
    unlocked = await world.pli.accounts.unlock(doctor, world.passphrases[DOCTOR])
    app = await world.pli.accounts.create_app_password(unlocked, "agenda du cabinet")
    ca = tls_files(world.pli.settings).ca
    await asyncio.to_thread(_submit, submission, ca, DOCTOR, app.password, PATIENT, raw)
    await world.pli.patients.request_consent(
        doctor,
        doctor_keys,
        patient,
        scope=Scope.record(),
        purpose="Suivi de votre traitement",
        duration_days=90,
    )
    await world.pli.directory.add_application(
        Application(
            Address.parse(SERVICE),
            "Laboratoire Exemple — rendez-vous",
            category="Biologie",
            description="Prenez rendez-vous pour vos prises de sang.",
            referenced=True,
        )
    )
    await world.pli.directory.add_application(
        Application(Address.parse("essai@labo.pli.test"), "Service non référencé")
    )

    context = await browser.new_context(viewport=DESKTOP, locale="fr-FR")
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("console", lambda m: problems.append(m.text) if "Content Security" in m.text else None)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.post_data or ""))
    await sign_in(page, world)

    # -- my agenda: the invitation read in the page, accepted there --------------------------
    await page.get_by_role("link", name="Mon agenda").click()
    await page.locator("body[data-screen=agenda]").wait_for(timeout=30_000)
    card = page.locator("li[data-appointment]")
    await expect(card).to_have_count(1)
    await expect(card).to_contain_text("Consultation de suivi")
    await expect(card).to_contain_text("Cabinet, 3 rue de la Paix")
    await expect(card).to_contain_text("En attente de votre réponse")
    await expect(card).to_contain_text("Rappel")
    await shoot(page, artifacts, "agenda-invited")
    await page.get_by_role("button", name="Accepter : Consultation de suivi").click()
    await expect(page.get_by_text("Votre acceptation a été chiffrée et envoyée.")).to_be_visible()
    await expect(page.locator("li[data-appointment]")).to_have_attribute("data-status", "accepted")
    await expect(page.locator("li[data-appointment]")).to_contain_text(
        "Vous avez accepté ce rendez-vous"
    )
    await shoot(page, artifacts, "agenda")
    # The reminder for the patient's own phone or computer: a calendar file made in the page.
    async with page.expect_download() as downloading:
        await page.get_by_role(
            "link", name="Ajouter à mon agenda (.ics) : Consultation de suivi"
        ).click()
    download = await downloading.value
    assert download.suggested_filename == "rendez-vous.ics"
    exported = icalendar.Calendar.from_ical(Path(await download.path()).read_bytes())
    [event] = exported.walk("VEVENT")
    assert (str(event["UID"]), str(event["STATUS"])) == (invitation.uid, "CONFIRMED")
    assert invitation.start is not None
    assert event.decoded("DTSTART").timestamp() == invitation.start.timestamp()
    [alarm] = event.walk("VALARM")
    assert -alarm.decoded("TRIGGER") == timedelta(days=1)

    # The doctor's copy: an iTIP REPLY Python reads, sealed and signed by the patient.
    [uid] = await _inbox_of_kind(world, doctor, MessageKind.APPOINTMENT)
    opened = await world.pli.delivery.open_message(doctor, doctor_keys, "INBOX", uid)
    assert (opened.provenance.value, opened.signature.value) == ("e2e", "valid")
    assert opened.signer == PATIENT
    reply = parse_appointment(opened.raw)
    assert (reply.method, reply.uid, reply.sequence) == (Method.REPLY, invitation.uid, 0)
    assert reply.replier is not None
    assert (reply.replier.address, reply.replier.partstat) == (patient, PartStat.ACCEPTED)
    agenda = derive_agenda(
        [ReceivedAppointment(doctor, invitation), ReceivedAppointment(patient, reply)], owner=doctor
    )
    assert agenda.refused == ()
    [entry] = agenda.entries
    assert [(a.address, a.partstat) for a in entry.attendees] == [(patient, PartStat.ACCEPTED)]

    # -- consents: granted (signed in the page), the document shared, then withdrawn ---------
    await screen(page, world, "consents")
    await expect(page.locator("li[data-consent]")).to_contain_text("Suivi de votre traitement")
    with pytest.raises(RuleViolation):
        await world.pli.patients.open_document(doctor, doctor_keys, patient, document_id)
    await page.get_by_role("button", name=f"Accepter la demande de {DOCTOR}").click()
    await expect(
        page.get_by_text(f"Vous avez accordé l'accès à {DOCTOR}. Documents partagés : 1.")
    ).to_be_visible()
    await expect(page.locator("li[data-consent]")).to_have_count(0)
    await expect(page.locator("li[data-grant]")).to_have_count(1)
    await shoot(page, artifacts, "consents-granted")
    # The slot made in the browser opens for the doctor: the document is theirs to read.
    shared = await world.pli.patients.open_document(doctor, doctor_keys, patient, document_id)
    assert b"X-MSS-CODECDA" in shared.raw or b"Content-Type" in shared.raw
    stored = await world.pli.store.find_message(patient, document_id)
    assert shared.record.envelope_id == stored.record.envelope_id

    await page.get_by_role("button", name=f"Retirer l'accès de {DOCTOR}").click()
    await expect(page.get_by_text(f"Vous avez retiré l'accès de {DOCTOR}.")).to_be_visible()
    await expect(page.locator("li[data-grant]")).to_have_count(0)
    await shoot(page, artifacts, "consents")
    with pytest.raises(RuleViolation) as refused:
        await world.pli.patients.open_document(doctor, doctor_keys, patient, document_id)
    assert refused.value.code == "consent-required"

    # -- blocked professionals ---------------------------------------------------------------
    await screen(page, world, "blocked")
    await page.get_by_label("Adresse de messagerie du professionnel").fill(REMOTE)
    await page.get_by_role("button", name="Bloquer", exact=True).click()
    await expect(page.get_by_text(f"{REMOTE} est bloqué.")).to_be_visible()

    # -- approved services: the referenced ones only -----------------------------------------
    await screen(page, world, "services")
    services = page.locator("li[data-service]")
    await expect(services).to_have_count(1)
    await expect(services).to_contain_text("Laboratoire Exemple — rendez-vous")
    await expect(services).to_contain_text("Biologie")
    await shoot(page, artifacts, "services")

    # -- the access history: each step, the chain verified -----------------------------------
    await screen(page, world, "history")
    await expect(page.locator(".status.ok")).to_contain_text("Historique vérifié")
    actions = await page.locator("tr[data-action]").evaluate_all(
        "rows => rows.map(r => r.dataset.action)"
    )
    assert list(reversed(actions)) == [
        "document-sent",
        "consent-requested",
        "appointment-answered",
        "consent-answered",
        "document-shared",
        "document-read-with-consent",
        "consent-revoked",
        "document-unshared",
        "blocked",
    ]
    await expect(page.locator("tr[data-action=appointment-answered]")).to_contain_text(
        "Réponse à un rendez-vous"
    )
    await expect(page.locator("tr[data-action=document-read-with-consent]")).to_contain_text(DOCTOR)
    # The server's own action is named as such, not by its internal actor name.
    await expect(page.locator("tr[data-action=document-unshared]")).to_contain_text(
        "Pli (automatiquement)"
    )
    await shoot(page, artifacts, "history-consent")
    assert await world.pli.patients.verify_history(patient) == []

    # -- phone width, then English -----------------------------------------------------------
    await page.set_viewport_size(PHONE)
    for name in ("agenda", "consents", "services"):
        await screen(page, world, name)
        await shoot(page, artifacts, name)
    await screen(page, world, "settings")
    await page.locator("#pref-lang").select_option("en")
    await page.get_by_role("button", name="Enregistrer").click()
    await expect(page.get_by_role("heading", name="Settings")).to_be_visible()
    await screen(page, world, "agenda")
    await expect(page.get_by_role("heading", name="My agenda")).to_be_visible()
    await expect(page.locator("li[data-appointment]")).to_contain_text(
        "You accepted this appointment"
    )
    await shoot(page, artifacts, "agenda-en")
    assert problems == [], "no script error, no CSP violation"
    assert not any(world.passphrases[PATIENT] in body for body in requests)
    await context.close()

    # -- afterwards: no passphrase, auth key or plaintext on disk or in the database ---------
    await world.assert_nothing_left_of(PATIENT, canary, logged=b"/webmail/api/patient/sharing")

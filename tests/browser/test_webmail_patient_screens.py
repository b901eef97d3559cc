"""A patient in Chromium uses the screens of their rights (issue 8, acceptance 2): reads a
document a doctor submitted over SMTP (the real submission front, STARTTLS and an app
password), masks it from a pharmacy, sees a consent request, is refused blocking the
médecin traitant (with the reason), blocks and unblocks another professional, finds each
in the verified access history, is refused a new thread with the doctor (with the reason),
writes to a pharmacy. Every new screen is screenshotted at desktop and phone width and
checked by axe-core; afterwards no passphrase, auth key or plaintext is on disk."""

from __future__ import annotations

import asyncio
import secrets
import smtplib
import ssl
from dataclasses import replace
from pathlib import Path

from playwright.async_api import Browser, Page, expect

from messaging.kinds.consent import Scope
from messaging.kinds.document import build_document
from messaging.types import Address
from pli.wiring import tls_files
from tests.browser.test_webmail_flows import DESKTOP, PHONE, shoot
from tests.messaging.kinds.test_document import MESSAGE
from tests.support.webmail_world import DOCTOR, PATIENT, PHARMACY, REMOTE, WebmailWorld


def _submit(port: int, ca: Path, login: str, password: str, to: str, data: bytes) -> None:
    context = ssl.create_default_context(cafile=str(ca))
    with smtplib.SMTP("127.0.0.1", port, local_hostname="cabinet.test", timeout=30) as client:
        client.starttls(context=context)
        client.login(login, password)
        refused = client.sendmail(login, [to], data)
        assert refused == {}


async def doctor_submits_a_document(world: WebmailWorld, port: int) -> None:
    doctor = Address.parse(DOCTOR)
    unlocked = await world.pli.accounts.unlock(doctor, world.passphrases[DOCTOR])
    app = await world.pli.accounts.create_app_password(unlocked, "logiciel du cabinet")
    message = replace(MESSAGE, sender=doctor, recipients=(Address.parse(PATIENT),))
    raw = build_document(
        message, message_id="<cr-smtp@medecin.pli.test>", date=world.pli.clock.now()
    )
    ca = tls_files(world.pli.settings).ca
    await asyncio.to_thread(_submit, port, ca, DOCTOR, app.password, PATIENT, raw)


async def sign_in(page: Page, world: WebmailWorld) -> None:
    await page.goto(f"{world.base}/webmail/")
    await page.wait_for_selector("body[data-ready]")
    await page.get_by_label("Adresse de messagerie").fill(PATIENT)
    await page.get_by_label("Phrase secrète").fill(world.passphrases[PATIENT])
    await page.get_by_role("button", name="Se connecter").click()
    await page.get_by_label("Code reçu").wait_for(timeout=30_000)
    await page.get_by_label("Code reçu").fill(world.last_code(PATIENT))
    await page.get_by_role("button", name="Valider").click()
    await page.locator("body[data-screen=inbox]").wait_for(timeout=30_000)


async def screen(page: Page, world: WebmailWorld, name: str) -> None:
    """Show a screen afresh (the same address again would change no hash, draw nothing)."""
    if page.url.endswith(f"#/{name}"):
        await page.goto(f"{world.base}/webmail/#/inbox")
        await page.locator("body[data-screen=inbox]").wait_for(timeout=30_000)
    await page.goto(f"{world.base}/webmail/#/{name}")
    await page.locator(f"body[data-screen={name}]").wait_for(timeout=30_000)


async def test_a_patient_uses_the_screens_of_their_rights(
    world: WebmailWorld, browser: Browser, artifacts: Path, submission: int
) -> None:
    await doctor_submits_a_document(world, submission)
    patient = Address.parse(PATIENT)
    doctor = Address.parse(DOCTOR)
    await world.pli.patients.declare_treating_doctor(patient, doctor)
    unlocked = await world.pli.accounts.unlock(doctor, world.passphrases[DOCTOR])
    await world.pli.patients.request_consent(
        doctor,
        unlocked.keys,
        patient,
        scope=Scope.record(),
        purpose="Suivi de votre traitement",
        duration_days=90,
    )

    context = await browser.new_context(viewport=DESKTOP, locale="fr-FR")
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("console", lambda m: problems.append(m.text) if "Content Security" in m.text else None)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.post_data or ""))
    await sign_in(page, world)
    assert not any(world.passphrases[PATIENT] in body for body in requests)

    # -- my documents: the document submitted over SMTP, opened here; masked from a pharmacy
    await page.get_by_role("link", name="Mes documents").click()
    await page.locator("body[data-screen=documents]").wait_for(timeout=30_000)
    await expect(page.get_by_role("heading", name="Document", exact=True)).to_be_visible()
    card = page.locator("li[data-document]")
    await expect(card).to_have_count(1)
    await expect(card).to_contain_text(f"De {DOCTOR}")
    await expect(card).to_contain_text("Masqué à personne.")
    await card.get_by_label("Masquer ce document à").fill(PHARMACY)
    await card.get_by_role("button", name="Masquer", exact=True).click()
    await expect(page.get_by_text("Le document est masqué à ce professionnel.")).to_be_visible()
    await expect(page.locator("li[data-document]")).to_contain_text(PHARMACY)
    await shoot(page, artifacts, "documents")
    # The doctor wrote it: it cannot be masked from them, and the page says why.
    card = page.locator("li[data-document]")
    await card.get_by_label("Masquer ce document à").fill(DOCTOR)
    await card.get_by_role("button", name="Masquer", exact=True).click()
    await expect(page.locator(".status.error")).to_contain_text(
        "ce professionnel est l'auteur du document"
    )
    masks = await world.pli.patients.masks(patient)
    assert list(masks.values()) == [frozenset({Address.parse(PHARMACY)})]
    # The title comes from the document itself, opened in the browser.
    title = await page.locator("li[data-document] h3").inner_text()
    await page.get_by_role("link", name=title).click()
    await page.locator("body[data-screen=read]").wait_for(timeout=30_000)
    assert "Signature vérifiée" in await page.locator(".trust").inner_text()

    # -- consents: the doctor's request waits for an answer -----------------------------
    await screen(page, world, "consents")
    pending = page.locator("li[data-consent]")
    await expect(pending).to_have_count(1)
    await expect(pending).to_contain_text("Suivi de votre traitement")
    await expect(pending).to_contain_text("tout votre dossier")
    await shoot(page, artifacts, "consents")

    # -- blocked professionals: not the médecin traitant (the reason), another one yes ----
    await screen(page, world, "blocked")
    await expect(page.get_by_text(f"Votre médecin traitant : {DOCTOR}.")).to_be_visible()
    await page.get_by_label("Adresse de messagerie du professionnel").fill(DOCTOR)
    await page.get_by_role("button", name="Bloquer", exact=True).click()
    await expect(page.locator(".status.error")).to_contain_text(
        "vous ne pouvez pas bloquer votre médecin traitant"
    )
    await page.get_by_label("Adresse de messagerie du professionnel").fill(REMOTE)
    await page.get_by_role("button", name="Bloquer", exact=True).click()
    await expect(page.get_by_text(f"{REMOTE} est bloqué.")).to_be_visible()
    await shoot(page, artifacts, "blocked")
    assert await world.pli.patients.blocked(patient) == frozenset({Address.parse(REMOTE)})
    await page.get_by_role("button", name=f"Débloquer {REMOTE}").click()
    await expect(page.get_by_text(f"{REMOTE} est débloqué.")).to_be_visible()
    await expect(page.get_by_text("Vous n'avez bloqué personne.")).to_be_visible()
    await page.get_by_label("Adresse de messagerie du professionnel").fill(REMOTE)
    await page.get_by_role("button", name="Bloquer", exact=True).click()
    await expect(page.get_by_text(f"{REMOTE} est bloqué.")).to_be_visible()

    # -- a new thread with the doctor: refused, in words a patient understands -----------
    await screen(page, world, "compose")
    await page.get_by_label("Destinataire").fill(DOCTOR)
    await page.get_by_label("Objet").fill("Une question")
    await page.get_by_label("Message", exact=True).fill("Bonjour docteur")
    await page.get_by_role("button", name="Chiffrer et envoyer").click()
    await expect(page.locator(".status.error")).to_contain_text(
        "Votre message n'a pas été envoyé : vous ne pouvez pas écrire en premier à un médecin"
    )
    await expect(page.locator(".status.error")).to_contain_text("écrire à une pharmacie")
    await shoot(page, artifacts, "refused-new-thread")
    assert await world.pli.store.list_messages(doctor, "INBOX") == []

    # -- and to a pharmacy, which the rules allow ------------------------------------------
    canary = secrets.token_hex(16)
    await screen(page, world, "compose")
    await page.get_by_label("Destinataire").fill(PHARMACY)
    await page.get_by_label("Objet").fill("Renouvellement")
    await page.get_by_label("Message", exact=True).fill(f"Bonjour, est-ce prêt ? {canary}")
    await page.get_by_role("button", name="Chiffrer et envoyer").click()
    await expect(page.get_by_text("Message chiffré et envoyé.")).to_be_visible()
    pharmacy = Address.parse(PHARMACY)
    assert len(await world.pli.store.list_messages(pharmacy, "INBOX")) == 1

    # -- the access history: each of these, and the chain verified ------------------------
    await screen(page, world, "history")
    await expect(page.locator(".status.ok")).to_contain_text("Historique vérifié")
    rows = page.locator("tr[data-action]")
    actions = await rows.evaluate_all("rows => rows.map(r => r.dataset.action)")
    assert list(reversed(actions)) == [
        "document-sent",
        "consent-requested",
        "masked",
        "block-refused",
        "blocked",
        "unblocked",
        "blocked",
    ]
    await expect(page.locator("tr[data-action=block-refused]")).to_contain_text(
        "Blocage refusé (médecin traitant)"
    )
    # The patient's own actions are "Vous"; the professional's are named.
    await expect(page.locator("tr[data-action=masked]")).to_contain_text("Vous")
    await expect(page.locator("tr[data-action=document-sent]")).to_contain_text(DOCTOR)
    await shoot(page, artifacts, "history")
    assert await world.pli.patients.verify_history(patient) == []

    # -- phone width, then English -----------------------------------------------------
    await page.set_viewport_size(PHONE)
    for name in ("documents", "consents", "blocked", "history"):
        await screen(page, world, name)
        await shoot(page, artifacts, name)
    await screen(page, world, "settings")
    await page.locator("#pref-lang").select_option("en")
    await page.get_by_role("button", name="Enregistrer").click()
    await expect(page.get_by_role("heading", name="Settings")).to_be_visible()
    await screen(page, world, "history")
    await expect(page.get_by_role("heading", name="Access history")).to_be_visible()
    await expect(page.locator(".status.ok")).to_contain_text("History verified")
    assert problems == [], "no script error, no CSP violation"
    await context.close()

    # -- afterwards: no passphrase, auth key or plaintext on disk or in the database -------
    await world.assert_nothing_left_of(PATIENT, canary, logged=b"/webmail/api/patient/blocks")

"""A patient in Chromium: signs in with passphrase and one-time code, reads what a doctor
(e2e) and a pharmacy (through a gateway) sent, replies, is refused with the reason, sees
new mail arrive live, changes the language; every screen is screenshotted at desktop and
phone width and checked by axe-core; afterwards no secret and no plaintext is on disk."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, FilePayload, Page, ViewportSize, expect

from crypto import GatewayInfo
from messaging import Attachment, Draft, build_message, parse_message
from messaging.types import Address
from tests.support.cli import Pli as CliPli
from tests.support.webmail_world import (
    DOCTOR,
    PATIENT,
    PHARMACY,
    REMOTE,
    WebmailWorld,
    b64,
)

AXE = Path(__file__).resolve().parents[2] / "web/frontend/node_modules/axe-core/axe.min.js"
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


# In the signed-in page: the doctor's real proof verifies; a swapped key, a swapped leaf
# address and a head checked against another log key are refused.
CHECK_PROOFS = """
async ([address, otherKey]) => {
  const c = globalThis.pliCrypto;
  const session = await (await fetch("/webmail/api/session")).json();
  const log = { id: session.log_id, key: c.fromB64url(session.log_key) };
  const entry = await (await fetch("/v1/directory/mailboxes/" + address)).json();
  const verdict = async (mailbox, logKey) => {
    try { await globalThis.pliDirectory.verifiedKeys(address, mailbox, logKey); return "ok"; }
    catch (e) { return "refused"; }
  };
  return [
    await verdict(entry, log),
    await verdict({ ...entry, keys: { ...entry.keys, encryption_key: otherKey } }, log),
    await verdict(entry, { id: log.id, key: c.fromB64url(otherKey) }),
    await globalThis.pliDirectory.verifiedKeys("other@medecin.pli.test", entry, log)
      .then(() => "ok", () => "refused"),
  ];
}
"""


async def doctor_sends(world: WebmailWorld, subject: str, body: str, *, pdf: bool = False) -> str:
    unlocked = await world.pli.accounts.unlock(Address.parse(DOCTOR), world.passphrases[DOCTOR])
    raw = build_message(
        Draft(
            sender=Address.parse(DOCTOR),
            recipients=(Address.parse(PATIENT),),
            subject=subject,
            body=body,
            sender_name="Dr Sophie MARTIN",
            attachments=(Attachment("compte-rendu.pdf", PDF),) if pdf else (),
        ),
        message_id=f"<{secrets.token_hex(8)}@medecin.pli.test>",
        date=world.pli.clock.now(),
    )
    sent = await world.pli.delivery.send(
        Address.parse(DOCTOR), unlocked.keys, (Address.parse(PATIENT),), raw
    )
    return sent.envelope_id


async def pharmacy_sends(world: WebmailWorld) -> None:
    raw = build_message(
        Draft(
            sender=Address.parse(PHARMACY),
            recipients=(Address.parse(PATIENT),),
            subject="Votre commande est prête",
            body="Vous pouvez passer la chercher.",
            sender_name="Pharmacie centrale",
        ),
        message_id="<cmd-1@pharmacie.pli.test>",
        date=world.pli.clock.now(),
    )
    await world.pli.delivery.receive(
        Address.parse(PHARMACY),
        (Address.parse(PATIENT),),
        raw,
        gateway=GatewayInfo(peer="mx.pharmacie.fr", tls=""),
    )


async def check_accessibility(page: Page, screen: str) -> None:
    """axe-core, from the local npm package, injected through the debugger (not the page's
    CSP, which rightly forbids it): no serious or critical violation of WCAG 2.1 A/AA."""
    if not await page.evaluate("typeof axe !== 'undefined'"):
        await page.evaluate(AXE.read_text())
    result: dict[str, Any] = await page.evaluate(
        "axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"
    )
    bad = [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']]}"
        for v in result["violations"]
        if v["impact"] in {"serious", "critical"}
    ]
    assert bad == [], f"{screen}: {bad}"


async def shoot(page: Page, artifacts: Path, screen: str) -> None:
    width = page.viewport_size["width"] if page.viewport_size else 0
    await page.screenshot(path=str(artifacts / f"{screen}-{width}.png"), full_page=True)
    await check_accessibility(page, f"{screen} at {width}px")


async def test_a_patient_signs_in_reads_replies_and_is_refused_with_the_reason(
    world: WebmailWorld, browser: Browser, artifacts: Path
) -> None:
    await doctor_sends(
        world, "Votre compte rendu de consultation", "Bonjour,\nvoici le compte rendu.", pdf=True
    )
    await pharmacy_sends(world)
    context = await browser.new_context(viewport=DESKTOP, locale="fr-FR")
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("console", lambda m: problems.append(m.text) if "Content Security" in m.text else None)

    # -- sign-in: passphrase (never sent), then the code from the personal mailbox --------
    await page.goto(f"{world.base}/webmail/")
    await page.wait_for_selector("body[data-ready]")
    assert await page.evaluate("document.documentElement.lang") == "fr"
    await shoot(page, artifacts, "signin")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.post_data or ""))
    await page.get_by_label("Adresse de messagerie").fill(PATIENT)
    await page.get_by_label("Phrase secrète").fill(world.passphrases[PATIENT])
    await page.get_by_role("button", name="Se connecter").click()
    await page.get_by_label("Code reçu").wait_for(timeout=30_000)
    await shoot(page, artifacts, "code")
    await page.get_by_label("Code reçu").fill(world.last_code(PATIENT))
    await page.get_by_role("button", name="Valider").click()
    await page.locator(".messages").wait_for()
    assert not any(world.passphrases[PATIENT] in body for body in requests)
    await shoot(page, artifacts, "inbox")
    await expect(page.locator(".messages li")).to_have_count(2)

    # -- read: the doctor's document (e2e, verified signature, PDF in the page) ------------
    await page.get_by_role("link", name="Votre compte rendu de consultation").click()
    await page.locator("body[data-screen=read]").wait_for()
    trust = await page.locator(".trust").inner_text()
    assert "Chiffré de bout en bout" in trust
    assert f"Signature vérifiée : ce message a bien été écrit par {DOCTOR}" in trust
    assert "voici le compte rendu" in await page.locator(".body").inner_text()
    await expect(page.locator("iframe.pdf")).to_have_count(1)
    link = page.get_by_role("link", name="Télécharger compte-rendu.pdf")
    async with page.expect_download() as download_info:
        await link.click()
    download = await download_info.value
    saved = artifacts / "downloaded.pdf"
    await download.save_as(saved)
    assert saved.read_bytes() == PDF
    await shoot(page, artifacts, "read")

    # -- the pharmacy's message came through a gateway: said plainly -----------------------
    await page.goto(f"{world.base}/webmail/#/inbox")
    await page.locator("body[data-screen=inbox]").wait_for()
    await page.get_by_role("link", name="Votre commande est prête").click()
    await page.locator("body[data-screen=read]").wait_for()
    trust = await page.locator(".trust").inner_text()
    assert "Reçu en clair par Pli depuis mx.pharmacie.fr" in trust
    assert "Signature de Pli vérifiée" in trust

    # -- reply to the doctor, sealed in the browser ---------------------------------------
    canary = secrets.token_hex(16)
    await page.goto(f"{world.base}/webmail/#/inbox")
    await page.locator("body[data-screen=inbox]").wait_for()
    await page.get_by_role("link", name="Votre compte rendu de consultation").click()
    await page.locator("body[data-screen=read]").wait_for()
    # By keyboard: the PDF viewer above it may still be laying itself out, and a pointer
    # click aimed before the layout settles can land beside the link.
    await page.get_by_role("link", name="Répondre").focus()
    await page.keyboard.press("Enter")
    await page.locator("body[data-screen=reply]").wait_for()
    await page.get_by_label("Message", exact=True).fill(f"Merci docteur. {canary}")
    await shoot(page, artifacts, "compose")
    await page.get_by_role("button", name="Chiffrer et envoyer").click()
    await expect(page.get_by_role("heading", name="Messages envoyés")).to_be_visible()
    await expect(page.get_by_text("Message chiffré et envoyé.")).to_be_visible()
    await shoot(page, artifacts, "sent")
    doctor = await world.pli.accounts.unlock(Address.parse(DOCTOR), world.passphrases[DOCTOR])
    opened = await world.pli.delivery.open_message(Address.parse(DOCTOR), doctor.keys, "INBOX", 1)
    assert opened.provenance.value == "e2e" and opened.signature.value == "valid"
    reply = parse_message(opened.raw)
    assert canary in reply.body
    assert reply.subject == "Re: Votre compte rendu de consultation"
    # And through the command a professional runs: `pli read`.
    shown = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "pli", "read", DOCTOR, "1"],
        input=world.passphrases[DOCTOR] + "\n",
        env=CliPli(world.home, world.database_url).env() | {"PLI_DOMAIN": "pli.test"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "Provenance:  e2e" in shown.stdout
    assert f"Signature:   valid ({PATIENT})" in shown.stdout
    assert canary in shown.stdout

    # -- a new thread with the pharmacy, with an attachment -----------------------------
    await page.goto(f"{world.base}/webmail/#/compose")
    await page.locator("body[data-screen=compose]").wait_for()
    await page.get_by_label("Destinataire").fill(PHARMACY)
    await page.get_by_label("Objet").fill("Ordonnance à préparer")
    await page.get_by_label("Message", exact=True).fill(f"Bonjour, voici l'ordonnance. {canary}")
    await page.get_by_label("Joindre des fichiers").set_input_files(
        files=[FilePayload(name="ordonnance.pdf", mimeType="application/pdf", buffer=PDF)]
    )
    await page.get_by_role("button", name="Chiffrer et envoyer").click()
    await expect(page.get_by_text("Message chiffré et envoyé.")).to_be_visible()
    pharmacy = await world.pli.accounts.unlock(Address.parse(PHARMACY), world.passphrases[PHARMACY])
    to_pharmacy = await world.pli.delivery.open_message(
        Address.parse(PHARMACY), pharmacy.keys, "INBOX", 1
    )
    assert to_pharmacy.signature.value == "valid"
    order = parse_message(to_pharmacy.raw)
    assert order.subject == "Ordonnance à préparer"
    assert [(a.filename, a.data) for a in order.attachments] == [("ordonnance.pdf", PDF)]

    # -- refused by the server: the reason, in words ------------------------------------
    await page.goto(f"{world.base}/webmail/#/compose")
    await page.locator("body[data-screen=compose]").wait_for()
    await page.get_by_label("Destinataire").fill(REMOTE)
    await page.get_by_label("Objet").fill("Rendez-vous")
    await page.get_by_label("Message", exact=True).fill("Bonjour")
    await page.get_by_role("button", name="Chiffrer et envoyer").click()
    refusal = page.locator(".status.error")
    await expect(refusal).to_contain_text(
        "Votre message n'a pas été envoyé : ce destinataire n'existe pas"
    )
    await shoot(page, artifacts, "refused")

    # -- live: new mail appears without a reload ----------------------------------------
    await page.goto(f"{world.base}/webmail/#/inbox")
    await page.locator("body[data-screen=inbox]").wait_for()
    await expect(page.locator(".messages li")).to_have_count(2)
    await doctor_sends(world, "Résultats d'analyse", "Tout est normal.")
    await expect(page.get_by_role("link", name="Résultats d'analyse")).to_be_visible(timeout=10_000)
    await expect(page.get_by_text("Nouveau message reçu.")).to_be_visible()

    # -- keys are sealed for only when the log's proof holds -------------------------------
    verdicts = await page.evaluate(CHECK_PROOFS, [DOCTOR, b64(b"\x07" * 32)])
    assert verdicts == ["ok", "refused", "refused", "refused"]

    # -- the page itself cannot change state without its CSRF token -------------------------
    forged = await page.evaluate(
        "fetch('/webmail/api/preferences', {method: 'PUT', headers: {'Content-Type': "
        "'application/json'}, body: JSON.stringify({language: 'en'})}).then(r => r.status)"
    )
    assert forged == 403

    # -- settings, then English ---------------------------------------------------------
    await page.goto(f"{world.base}/webmail/#/settings")
    await page.locator("#pref-lang").wait_for()
    await shoot(page, artifacts, "settings")
    await page.locator("#pref-lang").select_option("en")
    await page.get_by_role("button", name="Enregistrer").click()
    await expect(page.get_by_role("heading", name="Settings")).to_be_visible()
    assert await page.evaluate("document.documentElement.lang") == "en"
    await page.goto(f"{world.base}/webmail/#/inbox")
    await page.locator("body[data-screen=inbox]").wait_for()
    await expect(page.get_by_role("heading", name="Inbox")).to_be_visible()

    # -- every screen at phone width ----------------------------------------------------
    await page.set_viewport_size(PHONE)
    first = (await world.pli.store.list_messages(Address.parse(PATIENT), "INBOX"))[0]
    for screen, route in (
        ("inbox", "#/inbox"),
        ("read", f"#/read/{first.envelope_id}"),
        ("compose", "#/compose"),
        ("sent", "#/sent"),
        ("settings", "#/settings"),
    ):
        await page.goto(f"{world.base}/webmail/{route}")
        await page.locator(f"body[data-screen={screen}]").wait_for()
        await shoot(page, artifacts, screen)
    fresh = await browser.new_context(viewport=PHONE, locale="fr-FR")
    signin = await fresh.new_page()
    await signin.goto(f"{world.base}/webmail/")
    await signin.wait_for_selector("body[data-ready]")
    await shoot(signin, artifacts, "signin")
    await fresh.close()
    assert problems == [], "no script error, no CSP violation"
    await context.close()

    # -- afterwards: no passphrase, auth key or plaintext on disk or in the database -------
    await world.assert_nothing_left_of(PATIENT, canary, logged=b"/webmail/api/login")

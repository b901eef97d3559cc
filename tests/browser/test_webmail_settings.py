"""Settings in Chromium: recovery-key sign-in forces a new passphrase, which then works; an
app password made in the browser unlocks like one made by ``pli``; a new recovery key
replaces the old one; a reload keeps the session but asks for the passphrase again, since
keys live only in the page's memory."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from messaging.errors import AuthenticationFailed
from messaging.types import Address, CredentialKind
from tests.support.webmail_world import OTHER, WebmailWorld

NEW_PASSPHRASE = "une nouvelle phrase bien longue"


async def enter_code(world: WebmailWorld, page: Page, address: str, already: int) -> None:
    await page.get_by_label("Code reçu").wait_for(timeout=30_000)
    await page.get_by_label("Code reçu").fill(await world.wait_for_code(address, already))
    await page.get_by_role("button", name="Valider").click()


async def test_recovery_then_new_passphrase_then_app_password_then_reload(
    world: WebmailWorld, browser: Browser, artifacts: Path
) -> None:
    context = await browser.new_context(locale="fr-FR")
    page = await context.new_page()
    await page.goto(f"{world.base}/webmail/#/recover")
    await page.locator("body[data-ready]").wait_for()
    await page.get_by_label("Adresse de messagerie").fill(OTHER)
    await page.get_by_label("Clé de récupération").fill("pas une clé")
    await page.get_by_role("button", name="Continuer").click()
    await expect(page.get_by_role("alert")).to_contain_text("n'est pas valide")
    # Typed in lower case with spaces: normalised in the browser as pli does it.
    typed = world.recovery_keys[OTHER].lower().replace("-", " ")
    await page.get_by_label("Clé de récupération").fill(typed)
    await page.get_by_role("button", name="Continuer").click()
    await enter_code(world, page, OTHER, 0)
    await page.locator("body[data-screen=settings]").wait_for()
    await expect(
        page.get_by_text("choisissez maintenant une nouvelle phrase secrète")
    ).to_be_visible()
    await page.screenshot(path=str(artifacts / "recovered-settings.png"), full_page=True)
    await page.get_by_label("Nouvelle phrase secrète (12 caractères au moins)").fill(NEW_PASSPHRASE)
    await page.get_by_label("Confirmez la nouvelle phrase secrète").fill(NEW_PASSPHRASE + "x")
    await page.get_by_role("button", name="Changer de phrase secrète").click()
    await expect(page.get_by_text("ne sont pas identiques")).to_be_visible()
    await page.get_by_label("Confirmez la nouvelle phrase secrète").fill(NEW_PASSPHRASE)
    await page.get_by_role("button", name="Changer de phrase secrète").click()
    await expect(page.get_by_text("Phrase secrète changée.")).to_be_visible(timeout=30_000)
    with pytest.raises(AuthenticationFailed):
        await world.pli.accounts.unlock(Address.parse(OTHER), world.passphrases[OTHER])
    await world.pli.accounts.unlock(Address.parse(OTHER), NEW_PASSPHRASE)

    # An app password for a mail program: shown once, usable like one made by `pli`.
    await page.get_by_label("Nom de l'appareil ou du logiciel").fill("Thunderbird")
    await page.get_by_role("button", name="Créer").click()
    shown = page.get_by_text("affiché une seule fois")
    await expect(shown).to_be_visible(timeout=30_000)
    found = re.search(
        r"([0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})", await shown.inner_text()
    )
    assert found is not None
    unlocked = await world.pli.accounts.unlock(
        Address.parse(OTHER), found.group(1), CredentialKind.APP_PASSWORD
    )
    assert str(unlocked.account.address) == OTHER
    await expect(page.get_by_role("button", name="Révoquer Thunderbird")).to_be_visible()

    # A new recovery key, made in the browser and shown once; the old one stops working.
    recovery_form = page.locator(
        "form", has=page.get_by_role("heading", name="Clé de récupération")
    )
    await recovery_form.get_by_label("Phrase secrète actuelle").fill(NEW_PASSPHRASE)
    await recovery_form.get_by_role("button", name="Générer une nouvelle clé").click()
    shown_key = recovery_form.get_by_text("affichée une seule fois")
    await expect(shown_key).to_be_visible(timeout=30_000)
    new_key = re.search(r"((?:[A-Z2-7]{4}-){12}[A-Z2-7]{4})", await shown_key.inner_text())
    assert new_key is not None
    await world.pli.accounts.unlock(Address.parse(OTHER), new_key.group(1), CredentialKind.RECOVERY)
    with pytest.raises(AuthenticationFailed):
        await world.pli.accounts.unlock(
            Address.parse(OTHER), world.recovery_keys[OTHER], CredentialKind.RECOVERY
        )

    # A reload forgets the keys, not the session: the passphrase unlocks them again.
    await page.reload()
    await page.locator("body[data-screen=unlock]").wait_for()
    await page.get_by_label("Phrase secrète").fill(NEW_PASSPHRASE)
    await page.get_by_role("button", name="Déverrouiller").click()
    await page.locator("body[data-screen=inbox]").wait_for(timeout=30_000)
    await context.close()

    # And a fresh sign-in with the new passphrase goes all the way.
    context = await browser.new_context(locale="fr-FR")
    page = await context.new_page()
    await page.goto(f"{world.base}/webmail/")
    await page.locator("body[data-ready]").wait_for()
    await page.get_by_label("Adresse de messagerie").fill(OTHER)
    await page.get_by_label("Phrase secrète").fill(NEW_PASSPHRASE)
    already = len(world.codes_for(OTHER))
    await page.get_by_role("button", name="Se connecter").click()
    await enter_code(world, page, OTHER, already)
    await page.locator("body[data-screen=inbox]").wait_for()
    await context.close()

"""Sign-in codes by SMS in Chromium: a patient registers a mobile phone in the settings (a
number typed with spaces is normalised, one that is not international is refused with words
a patient understands), and the next sign-in's code arrives by SMS through a real Kannel."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from messaging.types import Address
from tests.browser.test_webmail_flows import shoot
from tests.support.kannel import KannelGateway
from tests.support.webmail_world import PATIENT, WebmailWorld, webmail_world

PHONE = "+33612345678"


@pytest.fixture
async def sms_world(
    tmp_path: Path, database_url: str, sms_gateway: KannelGateway
) -> AsyncIterator[WebmailWorld]:
    async with webmail_world(tmp_path, database_url, sms=sms_gateway) as started:
        yield started


async def _sign_in(world: WebmailWorld, page: Page) -> None:
    await page.goto(f"{world.base}/webmail/")
    await page.locator("body[data-ready]").wait_for()
    await page.get_by_label("Adresse de messagerie").fill(PATIENT)
    await page.get_by_label("Phrase secrète").fill(world.passphrases[PATIENT])
    await page.get_by_role("button", name="Se connecter").click()
    await page.get_by_label("Code reçu").wait_for(timeout=30_000)


async def test_a_patient_registers_a_phone_and_the_next_code_comes_by_sms(
    sms_world: WebmailWorld, sms_gateway: KannelGateway, browser: Browser, artifacts: Path
) -> None:
    world = sms_world
    context = await browser.new_context(locale="fr-FR")
    page = await context.new_page()
    await _sign_in(world, page)
    await page.get_by_label("Code reçu").fill(await world.wait_for_code(PATIENT, 0))
    await page.get_by_role("button", name="Valider").click()
    await page.locator("body[data-screen=inbox]").wait_for(timeout=30_000)

    await page.goto(f"{world.base}/webmail/#/settings")
    phone = page.get_by_label("Téléphone mobile pour recevoir les codes de connexion par SMS")
    await phone.fill("06 12 34 56 78")
    await page.get_by_role("button", name="Enregistrer").click()
    await expect(page.get_by_role("alert")).to_contain_text("au format international")
    assert world.pli.webmail is not None
    preferences = await world.pli.webmail.preferences(Address.parse(PATIENT))
    assert preferences.notify_phone is None, "a refused number is not stored"

    await phone.fill("+33 6 12 34 56 78")
    await page.get_by_role("button", name="Enregistrer").click()
    await expect(page.get_by_text("Enregistré.")).to_be_visible()
    await shoot(page, artifacts, "settings-phone")
    preferences = await world.pli.webmail.preferences(Address.parse(PATIENT))
    assert preferences.notify_phone == PHONE
    await context.close()

    mails = len(world.codes_for(PATIENT))
    context = await browser.new_context(locale="fr-FR")
    page = await context.new_page()
    await _sign_in(world, page)
    await expect(page.get_by_text("+33•••••78")).to_be_visible()
    sms = await sms_gateway.phones.wait_for(PHONE)
    code = re.search(r"\b(\d{6})\b", sms.text)
    assert code is not None, sms.text
    assert len(world.codes_for(PATIENT)) == mails, "the code went by SMS only"
    await page.get_by_label("Code reçu").fill(code.group(1))
    await page.get_by_role("button", name="Valider").click()
    await page.locator("body[data-screen=inbox]").wait_for(timeout=30_000)
    await context.close()

"""Browser tests: Playwright driving Debian's Chromium (``/usr/bin/chromium``, installed from
``scripts/debian-packages``; Playwright never downloads a browser here)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from tests.support.webmail_world import WebmailWorld, webmail_world

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: see scripts/debian-packages"
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def world(tmp_path: Path, database_url: str) -> AsyncIterator[WebmailWorld]:
    async with webmail_world(tmp_path, database_url) as started:
        yield started


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """Where screenshots go (git-ignored), one directory per test and engine."""
    path = ARTIFACTS / str(request.node.name).replace("[", "-").replace("]", "")
    path.mkdir(parents=True, exist_ok=True)
    return path

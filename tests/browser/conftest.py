"""Browser tests: Playwright driving Debian's Chromium (``/usr/bin/chromium``, installed from
``scripts/debian-packages``; Playwright never downloads a browser here)."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.async_api import Browser, Page, async_playwright

from gateway_smtp.server import SmtpPorts
from pli.smtp_wiring import allowlist_source, smtp_fronts
from pli.wiring import tls_files
from tests.support.webmail_world import WebmailWorld, webmail_world
from web.webmail.pages import pages_router, static_files
from web.webmail.security import security_headers

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


@pytest.fixture
async def submission(world: WebmailWorld) -> AsyncIterator[int]:
    """The SMTP submission front of ``pli serve``, on a free port of 127.0.0.1."""
    pli = world.pli
    fronts = smtp_fronts(
        pli.settings,
        store=pli.store,
        delivery=pli.delivery,
        accounts=pli.accounts,
        clock=pli.clock,
        tls=tls_files(pli.settings),
        allowlist=pli.allowlist or allowlist_source(pli.settings),
    )
    listening = await fronts.start(
        SmtpPorts(host="127.0.0.1", mx=None, submission=0, submissions=None)
    )
    try:
        yield listening.addresses["submission"][1]
    finally:
        await fronts.stop(grace=5)


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """The webmail's page, served by a real server with its CSP (no database needed)."""
    app = FastAPI()
    app.middleware("http")(security_headers)
    app.include_router(pages_router())
    app.mount("/webmail/static", static_files())
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    context = await browser.new_context()
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    opened.on("console", lambda m: errors.append(m.text) if "Content Security" in m.text else None)
    try:
        await opened.goto(f"http://127.0.0.1:{sock.getsockname()[1]}/webmail/")
        await opened.wait_for_selector("body[data-ready]", timeout=20_000)
        yield opened
        assert errors == [], "no script error and no CSP violation"
    finally:
        await context.close()
        server.should_exit = True
        await asyncio.wait_for(task, 10)

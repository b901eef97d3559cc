"""Webmail: what the first screen costs a browser, and what a sign-in costs it.

Against a real ``pli`` (wired as ``pli serve`` wires it, SQLite in a temporary directory)
served by uvicorn on 127.0.0.1, with Debian's Chromium driven by Playwright:

- **assets**: the bytes the page loads (``/webmail/``, ``app.js``, ``style.css``), raw and
  gzip -9 compressed, against the 500 KB compressed budget;
- **first screen**: from navigation start to the sign-in form being usable (libsodium's
  WebAssembly instantiated, ``body[data-ready]``), in a fresh browser context each time
  (cold cache), median and worst of N; the **peer** is a bare HTML page with one small
  script from the same server, which is the browser's and the server's fixed cost, and the
  ratio says what the webmail adds;
- **Argon2id** at the INTERACTIVE preset (2 passes, 64 MiB), the one derivation a sign-in
  costs: in the page (libsodium.js, WebAssembly) beside PyNaCl (native libsodium) on the
  same machine.

Prints a Markdown table.

    python -m bench.bench_webmail [--runs 10]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import platform
import socket
import statistics
import tempfile
import time
from pathlib import Path

import uvicorn
from fastapi.responses import HTMLResponse, Response
from playwright.async_api import async_playwright

import crypto
from pli.settings import Settings
from pli.wiring import initialise, open_pli
from web import AccountAuthenticator, create_app
from web.webmail import STATIC_DIR, include_webmail

CHROMIUM = "/usr/bin/chromium"
BUDGET = 500 * 1024

_BARE = (
    "<!doctype html><html lang=en><head><meta charset=utf-8><title>bare</title>"
    '<script type="module" src="/bench/bare.js"></script></head><body></body></html>'
)
_BARE_JS = "document.body.dataset.ready = 'true';"


def _asset_sizes() -> list[tuple[str, int, int]]:
    rows = []
    for name in ("app.js", "style.css"):
        data = (STATIC_DIR / name).read_bytes()
        rows.append((name, len(data), len(gzip.compress(data, 9))))
    return rows


async def _serve(home: Path) -> tuple[uvicorn.Server, asyncio.Task[None], str, object]:
    settings = Settings(home=home, demo=True, domain="pli.test")
    initialise(settings)
    pli = await open_pli(settings)
    app = create_app(
        directory=pli.directory,
        key_log=pli.key_log,
        authenticator=AccountAuthenticator(pli.accounts),
    )
    assert pli.webmail is not None
    include_webmail(app, pli.webmail)

    @app.get("/bench/bare.html", include_in_schema=False)
    async def bare() -> HTMLResponse:
        return HTMLResponse(_BARE)

    @app.get("/bench/bare.js", include_in_schema=False)
    async def bare_js() -> Response:
        return Response(_BARE_JS, media_type="text/javascript")

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="off", access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    return server, task, f"http://127.0.0.1:{sock.getsockname()[1]}", pli


async def _first_screen(browser: object, url: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        context = await browser.new_context()  # type: ignore[attr-defined]
        page = await context.new_page()
        start = time.perf_counter()
        await page.goto(url)
        await page.wait_for_selector("body[data-ready]", state="attached")
        times.append(time.perf_counter() - start)
        await context.close()
    return times


async def main(runs: int) -> None:
    sizes = _asset_sizes()
    with tempfile.TemporaryDirectory() as tmp:
        server, task, base, pli = await _serve(Path(tmp) / "home")
        try:
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, args=["--no-sandbox"]
                )
                await _first_screen(browser, f"{base}/webmail/", 1)  # warm the server up
                webmail = await _first_screen(browser, f"{base}/webmail/", runs)
                bare = await _first_screen(browser, f"{base}/bench/bare.html", runs)
                page = await (await browser.new_context()).new_page()
                await page.goto(f"{base}/webmail/")
                await page.wait_for_selector("body[data-ready]", state="attached")
                browser_kdf = await page.evaluate(
                    """() => {
                      const c = globalThis.pliCrypto, salt = new Uint8Array(16), t = [];
                      for (let i = 0; i < 3; i++) {
                        const s = performance.now();
                        c.deriveKeys("correct horse battery staple", salt, c.LIMITS.INTERACTIVE);
                        t.push((performance.now() - s) / 1000);
                      }
                      return t;
                    }"""
                )
                await browser.close()
        finally:
            server.should_exit = True
            await task
            await pli.close()  # type: ignore[attr-defined]
    native = []
    for _ in range(3):
        start = time.perf_counter()
        crypto.derive_keys(
            "correct horse battery staple", bytes(16), crypto.Argon2Limits.INTERACTIVE
        )
        native.append(time.perf_counter() - start)

    total_raw = sum(r for _, r, _ in sizes)
    total_gz = sum(g for _, _, g in sizes)
    print(f"Webmail bench — {platform.processor() or platform.machine()}, {runs} runs each\n")
    print("| asset | raw | gzip -9 |")
    print("|---|---:|---:|")
    for name, raw, gz in sizes:
        print(f"| {name} | {raw / 1024:.0f} KB | {gz / 1024:.0f} KB |")
    print(
        f"| **total** | {total_raw / 1024:.0f} KB | **{total_gz / 1024:.0f} KB** "
        f"(budget {BUDGET // 1024} KB: {'OK' if total_gz <= BUDGET else 'OVER'}) |\n"
    )
    med, worst = statistics.median(webmail), max(webmail)
    peer = statistics.median(bare)
    print("| measure | pli | peer | ratio pli/peer |")
    print("|---|---:|---:|---:|")
    print(
        f"| first screen usable, cold cache (median) | {med * 1000:.0f} ms | "
        f"{peer * 1000:.0f} ms (bare page) | {med / peer:.1f} |"
    )
    print(
        f"| first screen usable, cold cache (worst) | {worst * 1000:.0f} ms | "
        f"{max(bare) * 1000:.0f} ms | {worst / max(bare):.1f} |"
    )
    kdf_browser = statistics.median(browser_kdf)
    kdf_native = statistics.median(native)
    print(
        f"| Argon2id INTERACTIVE (sign-in) | {kdf_browser * 1000:.0f} ms (browser, wasm) | "
        f"{kdf_native * 1000:.0f} ms (PyNaCl) | {kdf_browser / kdf_native:.1f} |"
    )
    print(f"\nFirst screen within 2 s: {'yes' if worst < 2.0 else 'NO'} (worst {worst:.2f} s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    asyncio.run(main(parser.parse_args().runs))

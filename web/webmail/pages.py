"""The webmail's page and its static assets (built by ``web/frontend/build.mjs``).

``/webmail/`` is one HTML page with no inline script or style; the screens are drawn by
``/webmail/static/app.js`` (hash routes: ``#/inbox``, ``#/read/<id>``…). ``/`` redirects
there. Assets carry their content hash in the URL (``?v=``), so they can be cached for
long while a new build is picked up at once.
"""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

__all__ = ["STATIC_DIR", "pages_router", "static_files", "render_index"]

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

_INDEX = """<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<title>Pli — messagerie sécurisée de santé</title>
<link rel="stylesheet" href="/webmail/static/style.css?v={style}">
<script type="module" src="/webmail/static/app.js?v={app}"></script>
</head>
<body>
<a class="skip" href="#main">Aller au contenu</a>
<div id="app"><main id="main" tabindex="-1"><p class="loading">Chargement…</p></main></div>
<noscript>La messagerie Pli chiffre vos messages dans le navigateur :
JavaScript est nécessaire.</noscript>
</body>
</html>
"""


def render_index(static_dir: Path) -> str | None:
    try:
        manifest = json.loads((static_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return _INDEX.replace("{style}", manifest["style.css"]).replace("{app}", manifest["app.js"])


def pages_router(static_dir: Path = STATIC_DIR) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def root() -> Response:
        return RedirectResponse("/webmail/", status_code=303)

    @router.get("/webmail")
    async def webmail_bare() -> Response:
        return RedirectResponse("/webmail/", status_code=308)

    @router.get("/webmail/")
    async def index() -> Response:
        page = render_index(static_dir)
        if page is None:
            return HTMLResponse(
                "<!doctype html><html lang=en><title>Pli</title><p>The webmail is not built: "
                "run scripts/bootstrap.</p></html>",
                status_code=503,
            )
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    return router


def static_files(static_dir: Path = STATIC_DIR) -> StaticFiles:
    return StaticFiles(directory=static_dir, check_dir=False)

"""The patient webmail: the server side of a mailbox whose keys live in the browser.

:func:`include_webmail` adds to an application made by :func:`web.create_app` the page
and its assets (:mod:`web.webmail.pages`), the JSON API the browser talks to
(:mod:`web.webmail.routes`) and the web security around them (:mod:`web.webmail.security`).
``docs/webmail.md`` describes the whole, including the screens not wired yet.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from starlette.middleware.gzip import GZipMiddleware

from messaging.patients import PatientService
from messaging.webmail import WebmailService
from web.webmail.pages import STATIC_DIR, pages_router, static_files
from web.webmail.patient_routes import patient_router
from web.webmail.routes import WebmailContext, router
from web.webmail.security import WebmailLimiters, security_headers

__all__ = ["include_webmail", "WebmailLimiters", "STATIC_DIR"]


def include_webmail(
    app: FastAPI,
    service: WebmailService,
    *,
    limiters: WebmailLimiters | None = None,
    static_dir: Path = STATIC_DIR,
    patients: PatientService | None = None,
) -> Callable[[], None]:
    """Add the webmail to ``app``; the returned function, called at shutdown, ends the
    server-sent event streams so that stopping never waits on an open browser tab.

    With ``patients``, the patient's screens (record, blocks, consents, access history:
    :mod:`web.webmail.patient_routes`) are served too."""
    context = WebmailContext(service, limiters or WebmailLimiters.default())
    app.state.webmail = context
    app.middleware("http")(security_headers)
    app.include_router(router)
    app.state.webmail_patients = patients
    app.include_router(patient_router)
    app.include_router(pages_router(static_dir))
    # Compressed on the way out (the bundle is 1.1 MB, 0.33 MB gzipped); only the assets:
    # API answers hold secrets-adjacent data, where compression invites BREACH-style guesses.
    app.mount(
        "/webmail/static",
        GZipMiddleware(static_files(static_dir), minimum_size=1024, compresslevel=9),
        name="webmail-static",
    )
    return context.closing.set

"""Pli's HTTP front (FastAPI): the directory's REST and FHIR faces, the key log, health,
and the application API for health software (:mod:`web.api`).

The public API of the package: :func:`create_app` and what it needs from the wiring —
:class:`WebSettings`, the :class:`Authenticator` port and its
:class:`AccountAuthenticator` implementation. They are imported on first use, so that
:mod:`web.client` (the sealing client, which health software installs) loads without
FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from web.app import create_app
    from web.auth import AccountAuthenticator, Authenticator
    from web.settings import WebSettings

__all__ = ["create_app", "WebSettings", "Authenticator", "AccountAuthenticator"]


def __getattr__(name: str) -> Any:  # noqa: ANN401 - PEP 562 lazy attributes
    if name == "create_app":
        from web.app import create_app

        return create_app
    if name in ("AccountAuthenticator", "Authenticator"):
        from web import auth

        return getattr(auth, name)
    if name == "WebSettings":
        from web.settings import WebSettings

        return WebSettings
    raise AttributeError(f"module 'web' has no attribute {name!r}")

"""Pli's HTTP front (FastAPI): the directory's REST and FHIR faces, the key log, health.

The public API of the package: :func:`create_app` and what it needs from the wiring —
:class:`WebSettings`, the :class:`Authenticator` port and its
:class:`AccountAuthenticator` implementation.
"""

from web.app import create_app
from web.auth import AccountAuthenticator, Authenticator
from web.settings import WebSettings

__all__ = ["create_app", "WebSettings", "Authenticator", "AccountAuthenticator"]

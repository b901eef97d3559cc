"""Pli's HTTP front (FastAPI): health, and the versioned API as its issues land."""

from web.app import create_app

__all__ = ["create_app"]

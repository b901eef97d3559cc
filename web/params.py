"""Checks of request parameters that FastAPI's declarations cannot express.

Every text parameter is refused (400, naming it) when it holds control characters or
unpaired surrogates: nothing downstream — a SQL driver, a log line — ever sees them.
"""

from __future__ import annotations

import re

from fastapi import Request

from messaging.directory import InvalidQuery, SearchQuery
from web.problems import ApiError
from web.settings import WebSettings

__all__ = ["clean_text", "check_cursor", "public_url", "MAX_OFFSET"]

_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

MAX_OFFSET = 10_000_000
"""No directory has that many lines; a cursor beyond is not one this server made."""


def clean_text(name: str, value: str | None, *, location: str = "query") -> str:
    """``value`` stripped, or a 400 naming ``name`` if it holds what no query should."""
    if value is None:
        return ""
    if _FORBIDDEN.search(value):
        raise ApiError.bad_parameter(
            name, f"{name} contains control characters or invalid text", location
        )
    return value.strip()


def check_cursor(name: str, cursor: str | None) -> str | None:
    """A cursor the directory accepts, or a 400 naming ``name``."""
    if cursor is None:
        return None
    cursor = clean_text(name, cursor)
    try:
        offset = SearchQuery(text="x", cursor=cursor).offset
    except InvalidQuery:
        offset = -1
    if not 0 <= offset <= MAX_OFFSET:
        raise ApiError.bad_parameter(name, f"{name} is not a cursor this server gave")
    return cursor


def public_url(request: Request, settings: WebSettings, path: str, query: str = "") -> str:
    """The absolute URL of ``path`` (with ``query``) as clients reach this server."""
    base = settings.public_base_url or str(request.base_url)
    url = base.rstrip("/") + path
    return f"{url}?{query}" if query else url

"""Attachment checks by content, never by name or declared type (libmagic).

A file called ``ordonnance.pdf`` whose bytes are not a PDF is refused when the sender says it
is a PDF, and is always labelled with the type its bytes have.
"""

from __future__ import annotations

import threading

import magic

__all__ = ["detect_type", "SNIFF_BYTES"]

SNIFF_BYTES = 8192
"""libmagic decides from the first bytes; reading more only costs time."""

_lock = threading.Lock()
_magic = magic.Magic(mime=True)


def detect_type(data: bytes) -> str:
    """The MIME type of ``data`` as its content says (``application/octet-stream`` if unknown)."""
    if not data:
        return "application/x-empty"
    # libmagic handles are not thread-safe; sealing runs in worker threads.
    with _lock:
        found = _magic.from_buffer(data[:SNIFF_BYTES])
    return str(found) or "application/octet-stream"

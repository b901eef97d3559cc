"""Look for plaintext where only ciphertext may be: database rows and files."""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path

import asyncpg


def encodings(canary: bytes) -> list[bytes]:
    """The canary as it may appear inside a MIME message: raw, and base64 at each alignment."""
    forms = [canary]
    for shift in range(3):
        encoded = base64.b64encode(b"\x00" * shift + canary)
        # Drop the characters that depend on the neighbouring bytes.
        forms.append(encoded[4 : len(encoded) - 4])
    return forms


def files_containing(root: Path, needles: list[bytes]) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if any(n in data for n in needles):
                found.append(path)
    return found


def _values_contain(values: list[object], needles: list[bytes]) -> bool:
    for value in values:
        if isinstance(value, memoryview):
            value = value.tobytes()
        if isinstance(value, str):
            value = value.encode("utf-8")
        if isinstance(value, bytes) and any(n in value for n in needles):
            return True
    return False


async def tables_containing(url: str, needles: list[bytes]) -> list[str]:
    """Every table whose rows hold one of the needles (SQLite file or PostgreSQL URL)."""
    found: list[str] = []
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1]
        conn = sqlite3.connect(path)
        try:
            names = [
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            for name in names:
                for row in conn.execute(f'SELECT * FROM "{name}"'):  # noqa: S608 - test helper
                    if _values_contain(list(row), needles):
                        found.append(name)
                        break
        finally:
            conn.close()
        return found
    pg = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        names = [
            r["tablename"]
            for r in await pg.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        ]
        for name in names:
            for row in await pg.fetch(f'SELECT * FROM "{name}"'):  # noqa: S608 - test helper
                if _values_contain(list(row.values()), needles):
                    found.append(name)
                    break
    finally:
        await pg.close()
    return found

"""PostgreSQL for the test suite: the server named by ``PLI_TEST_DATABASE_URL``, or a
throwaway cluster started from the installed server binaries.

Each test that asks for PostgreSQL gets a database of its own, created here and dropped
afterwards, so test runs never see each other's rows. There is no silent skip: when no
server can be had, the fixture fails and so does the run.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg

ENV_VAR = "PLI_TEST_DATABASE_URL"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pg_bindir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if not candidates:
        found = shutil.which("initdb")
        if found is None:
            raise RuntimeError(
                f"PostgreSQL is needed: set {ENV_VAR} or install the server "
                "(scripts/test installs Debian's postgresql package)"
            )
        return Path(found).parent
    return Path(candidates[0]).parent


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Start a private PostgreSQL on a free loopback port; yield its admin URL."""
    bindir = _pg_bindir()
    root = Path(tempfile.mkdtemp(prefix="pli-pg-"))
    data = root / "data"
    port = _free_port()
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root:
        shutil.chown(root, "postgres", "postgres")
    try:
        subprocess.run(
            [
                *prefix,
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                *prefix,
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-w",
                "-l",
                str(root / "log"),
                "-o",
                f"-h 127.0.0.1 -p {port} -k {root} -c fsync=on",
                "start",
            ],
            check=True,
            capture_output=True,
        )
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def create_database(admin_url: str) -> str:
    """Create a fresh database; return its SQLAlchemy (asyncpg) URL."""
    name = f"pli_test_{uuid.uuid4().hex[:12]}"
    deadline = time.monotonic() + 30
    conn = None
    while conn is None:
        try:
            conn = await asyncpg.connect(_dsn(admin_url))
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = _dsn(admin_url).rsplit("/", 1)[0]
    return base.replace("postgresql://", "postgresql+asyncpg://") + "/" + name


async def drop_database(admin_url: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(_dsn(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()

"""Fixtures shared by the whole suite: engines, data directories, clocks."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from tests.support import postgres
from tests.support.databases import fresh_database
from tests.support.kannel import KannelGateway, kannel_gateway

# CI explores the same examples every run (a failure there is reproducible, never luck);
# developers' runs keep exploring new ones.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True, deadline=None)
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """An admin URL of a PostgreSQL server; fails (never skips) when none can be had."""
    url = os.environ.get(postgres.ENV_VAR)
    if url:
        yield url
        return
    with postgres.throwaway_cluster() as started:
        yield started


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database of each engine: SQLite in a file, PostgreSQL by URL."""
    async with fresh_database(request, request.param, tmp_path) as url:
        yield url


@pytest.fixture
async def sms_gateway(tmp_path: Path) -> AsyncIterator[KannelGateway]:
    """A real Kannel (Debian's bearerbox and smsbox) in front of its fake SMS centre."""
    async with kannel_gateway(tmp_path / "kannel") as started:
        yield started

"""The package's curated public API, and which routes ``create_app`` mounts."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import web
from tests.web.conftest import World, open_client
from tests.web.fakes import FakeDirectory
from web import WebSettings, create_app


def test_the_public_api_is_what_all_says():
    assert sorted(web.__all__) == sorted(
        ["create_app", "WebSettings", "Authenticator", "AccountAuthenticator"]
    )
    for name in web.__all__:
        assert getattr(web, name) is not None


def test_web_imports_neither_implementations_nor_the_wiring():
    """ARCHITECTURE.md §1: web uses messaging (and crypto's value types below it) only."""
    forbidden = {"directory", "mailbox_store", "pli", "sqlalchemy", "nacl", "aiosmtpd"}
    for path in Path(web.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                roots = {node.module.split(".")[0]}
            else:
                continue
            assert not roots & forbidden, (path, roots)


async def test_without_services_only_health_and_documentation_are_served():
    app = create_app()
    async with open_client(app) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/openapi.json")).status_code == 200
        for path in ("/v1/directory/search?q=x", "/v1/directory/log/head", "/fhir/metadata"):
            assert (await client.get(path)).status_code == 404


async def test_a_key_log_alone_serves_the_log_routes_only(world: World):
    async with open_client(create_app(key_log=world.keys)) as client:
        assert (await client.get("/v1/directory/log/head")).status_code == 200
        assert (await client.get("/v1/directory/search?q=x")).status_code == 404


async def test_a_directory_alone_serves_search_mailboxes_and_fhir():
    async with open_client(create_app(directory=FakeDirectory())) as client:
        assert (await client.get("/v1/directory/search?q=x")).status_code == 200
        assert (await client.get("/fhir/metadata")).status_code == 200
        assert (await client.get("/v1/directory/log/head")).status_code == 404


def test_settings_refuse_nonsense():
    for bad in (
        {"anonymous_page_size": 0},
        {"anonymous_page_size": 50, "professional_page_size": 20},
        {"professional_page_size": 101},
        {"rate_per_minute": 0},
        {"rate_burst": 0},
        {"fhir_scan_limit": 10},
        {"fhir_scan_limit": 10**6},
        {"public_base_url": "ftp://x"},
    ):
        with pytest.raises(ValueError):
            WebSettings(**bad)

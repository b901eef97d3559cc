"""Schemathesis against the published OpenAPI 3.1 document, authenticated, on a real server
(uvicorn on port 0, its own event loop in a thread) over SQLite and PostgreSQL: no server
error (5xx) and no response that violates the schema, whatever the generated request."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)

from tests.support import postgres
from tests.web.api_fixtures import make_env
from tests.web.api_servers import serving

EXAMPLES = 20
API_PATHS = ("/v1/oauth", "/v1/messages", "/v1/mailbox", "/v1/webhooks")


@schemathesis.serializer("message/rfc822")
def _rfc822(_ctx: object, value: object) -> bytes:
    """Generated bodies for ``message/rfc822``: bytes as they are, anything else as text."""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogatepass")


class LiveApi:
    """The API served from a thread, so schemathesis' blocking client can call it."""

    def __init__(self, home: Path, engine: str, admin_url: str | None) -> None:
        self.home = home
        self.engine = engine
        self.admin_url = admin_url
        self.url = ""
        self.token = ""
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> LiveApi:
        self._thread.start()
        assert self._ready.wait(120), "the API did not start"
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to the test thread by start()
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if self.engine == "sqlite":
            url = f"sqlite+aiosqlite:///{self.home / 'pli.db'}"
        else:
            assert self.admin_url is not None
            url = await postgres.create_database(self.admin_url)
        try:
            async for env in make_env(self.home, url):
                async with serving(env.app) as base:
                    self.url = base
                    self.token = await env.token()
                    self._ready.set()
                    await self._stop.wait()
        finally:
            if self.engine != "sqlite":
                assert self.admin_url is not None
                await postgres.drop_database(self.admin_url, url)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live_api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveApi]:
    admin = request.getfixturevalue("postgres_admin_url") if request.param != "sqlite" else None
    api = LiveApi(tmp_path_factory.mktemp(f"schema-{request.param}"), request.param, admin)
    yield api.start()
    api.stop()


def test_no_server_error_and_every_response_follows_the_schema(live_api: LiveApi) -> None:
    schema = schemathesis.openapi.from_url(f"{live_api.url}/openapi.json")
    headers = {"Authorization": f"Bearer {live_api.token}"}
    checks = [not_a_server_error, response_schema_conformance, content_type_conformance]
    tested = []
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an Err raises: the schema is ours
        if not operation.path.startswith(API_PATHS):
            continue  # the directory's and FHIR's own tests cover them

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(base_url=live_api.url, headers=headers, checks=checks)

        exercise()
        tested.append(operation.label)
    assert "POST /v1/messages/notes" in tested
    assert "POST /v1/oauth/token" in tested
    assert len(tested) >= 15

"""No input gives a 500: arbitrary query strings and paths, on every endpoint (Hypothesis);
errors are always problem+json (FHIR: OperationOutcome); the OpenAPI document is valid."""

from __future__ import annotations

import asyncio
import importlib
import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from messaging import Address, ManualClock
from messaging.errors import Unavailable
from tests.web.conftest import SOPHIE, START, World, open_backend, open_client
from tests.web.fakes import FakeDirectory
from web import WebSettings, create_app

ENDPOINTS = [
    "/v1/directory/search",
    "/v1/directory/log/consistency",
    "/fhir/Practitioner",
    "/fhir/PractitionerRole",
    "/fhir/Organization",
]
NAMES = [
    "q",
    "name",
    "given_name",
    "city",
    "postcode",
    "profession",
    "specialty",
    "organisation",
    "street",
    "kind",
    "limit",
    "cursor",
    "from",
    "to",
    "known_size",
    "family",
    "given",
    "identifier",
    "mailbox-mss",
    "mailbox-mss:contains",
    "mailbox-mss:exact",
    "mailbox-mss-type",
    "_count",
    "_offset",
    "_format",
]
JSON_TYPES = {"application/json", "application/problem+json"}
FHIR_TYPES = {"application/fhir+json"}


@pytest.fixture(scope="module", params=["fake", "memory"])
def app(request: pytest.FixtureRequest) -> FastAPI:
    async def build() -> FastAPI:
        clock = ManualClock(START)
        directory, keys, publish = await open_backend(request.param, clock)
        done = publish(Address.parse(SOPHIE), b"\x01" * 32, b"\x02" * 32)
        if request.param != "fake":
            await done
        unlimited = WebSettings(rate_burst=10**9, rate_per_minute=1e9)
        return create_app(directory=directory, key_log=keys, settings=unlimited)

    return asyncio.run(build())


def check(response, path: str) -> None:
    assert response.status_code < 500, (path, response.status_code, response.text)
    if response.is_redirect:  # a trailing slash, redirected by the router
        return
    content_type = response.headers["content-type"]
    assert content_type in (FHIR_TYPES if path.startswith("/fhir") else JSON_TYPES), path
    body = response.json()
    if response.status_code >= 400:
        if path.startswith("/fhir"):
            assert body["resourceType"] == "OperationOutcome"
        else:
            assert body["status"] == response.status_code and body["title"]


values = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["PER", "ORG", "o20", "o-1", "martin", "sophie@", "a|b", "a,b", ""]),
)
params = st.lists(
    st.tuples(st.one_of(st.sampled_from(NAMES), st.text(max_size=12)), values), max_size=6
)
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(path=st.sampled_from(ENDPOINTS), items=params)
async def test_arbitrary_parameters_never_cause_a_server_error(app, path, items):
    async with open_client(app) as client:
        check(await client.get(path, params=items), path)


@FUZZ
@given(path=st.sampled_from(ENDPOINTS), raw=st.binary(max_size=60))
async def test_arbitrary_query_bytes_never_cause_a_server_error(app, path, raw):
    query = "".join(f"%{b:02X}" if b not in b"=&" else chr(b) for b in raw)
    async with open_client(app) as client:
        check(await client.get(f"{path}?{query}"), path)


@FUZZ
@given(
    prefix=st.sampled_from(
        [
            "/v1/directory/mailboxes/",
            "/fhir/Practitioner/",
            "/fhir/Organization/",
            "/fhir/PractitionerRole/",
        ]
    ),
    segment=st.one_of(st.text(min_size=1, max_size=80), st.binary(min_size=1, max_size=40)),
)
async def test_arbitrary_paths_never_cause_a_server_error(app, prefix, segment):
    if isinstance(segment, bytes):
        encoded = "".join(f"%{b:02X}" for b in segment)
    else:
        encoded = quote(segment, safe="@")
    async with open_client(app) as client:
        check(await client.get(prefix + encoded), prefix)


words = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(list("\"'*:^()-+{}[]NEAR AND OR NOT %_\\")),
    ),
    max_size=30,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(
        [
            ("/v1/directory/search", "q"),
            ("/v1/directory/search", "city"),
            ("/fhir/Practitioner", "name"),
            ("/fhir/Organization", "name"),
            ("/fhir/PractitionerRole", "mailbox-mss:contains"),
        ]
    ),
    text=words,
)
async def test_search_words_never_cause_a_server_error_on_any_backend(world: World, path, text):
    """Full-text syntax (FTS5 quotes, operators, LIKE wildcards) reaches no engine unescaped."""
    endpoint, name = path
    app = world.app(rate_burst=10**9, rate_per_minute=1e9)
    async with open_client(app) as client:
        check(await client.get(endpoint, params={name: text}), endpoint)


async def test_unknown_routes_and_methods_are_problems_too(app):
    async with open_client(app) as client:
        missing = await client.get("/v2/nothing")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        fhir_missing = await client.get("/fhir/Patient")
        assert fhir_missing.status_code == 404
        assert fhir_missing.json()["resourceType"] == "OperationOutcome"
        method = await client.post("/v1/directory/search")
        assert method.status_code == 405
        assert method.json()["title"] == "Method not allowed"


class Broken(FakeDirectory):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    async def search(self, query):  # noqa: ARG002
        raise self.error


async def test_storage_outages_are_503_and_surprises_500_without_details():
    for error, status in ((Unavailable("database down"), 503), (RuntimeError("secret"), 500)):
        app = create_app(directory=Broken(error))
        # The server error middleware re-raises after answering, for the server to log.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.get("/v1/directory/search", params={"q": "martin"})
            assert response.status_code == status
            assert response.headers["content-type"] == "application/problem+json"
            assert "secret" not in response.text and "database" not in response.text
            fhir = await client.get("/fhir/Practitioner", params={"family": "martin"})
            assert fhir.status_code == status
            assert fhir.json()["resourceType"] == "OperationOutcome"


# --- OpenAPI -------------------------------------------------------------------------------


def spec_validator_verdict(spec: dict[str, object]) -> str | None:
    """Validate with openapi-spec-validator, here or in the base interpreter; None when
    neither has it (the structural checks then stand alone)."""
    try:
        validator = importlib.import_module("openapi_spec_validator")
    except ImportError:
        python = Path(sys.base_prefix) / "bin" / "python3"
        if not python.exists():
            return None
        script = (
            "import json, sys\n"
            "from openapi_spec_validator import validate\n"
            "validate(json.load(sys.stdin))\n"
        )
        run = subprocess.run(  # noqa: S603 - our interpreter, our script
            [str(python), "-c", script],
            input=json.dumps(spec),
            capture_output=True,
            text=True,
            check=False,
        )
        if "No module named" in run.stderr:
            return None
        return "valid" if run.returncode == 0 else run.stderr
    validator.validate(spec)
    return "valid"


async def test_the_openapi_document_is_valid_and_describes_the_api(app):
    async with open_client(app) as client:
        response = await client.get("/openapi.json")
        assert (await client.get("/docs")).status_code == 200
    spec = response.json()
    assert spec["openapi"].startswith("3.")
    assert {
        "/v1/directory/search",
        "/v1/directory/mailboxes/{address}",
        "/v1/directory/log/head",
        "/v1/directory/log/consistency",
        "/fhir/Practitioner",
        "/fhir/Practitioner/{resource_id}",
        "/fhir/PractitionerRole",
        "/fhir/Organization",
        "/fhir/metadata",
        "/healthz",
    } <= set(spec["paths"])
    assert spec["components"]["securitySchemes"]["professional"] == {
        "type": "http",
        "scheme": "basic",
        "description": spec["components"]["securitySchemes"]["professional"]["description"],
    }
    fhir_search = spec["paths"]["/fhir/Practitioner"]["get"]
    assert "mailbox-mss:contains" in {p["name"] for p in fhir_search["parameters"]}
    search = spec["paths"]["/v1/directory/search"]["get"]
    assert {"q", "city", "postcode", "kind", "limit", "cursor"} <= {
        p["name"] for p in search["parameters"]
    }
    verdict = spec_validator_verdict(spec)
    assert verdict in (None, "valid"), verdict

"""``GET /v1/directory/search``: pages, caps, anonymous limits, liste rouge, errors."""

from __future__ import annotations

from tests.web.conftest import GENERALISTS, HELENE, SECRET, SOPHIE, World, addresses, open_client

PROBLEM = "application/problem+json"


async def test_a_search_finds_practitioners_by_name_prefix_ignoring_case_and_accents(client):
    response = await client.get("/v1/directory/search", params={"q": "hele"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert addresses(body["items"]) == [HELENE]
    assert body["total"] == 1 and body["total_exact"] is True
    assert body["next"] is None and body["next_cursor"] is None
    hit = body["items"][0]
    assert hit["kind"] == "PER"
    assert hit["role"]["practitioner"]["family_name"] == "DUPONT-MARTIN"
    assert hit["role"]["organisation"]["address"]["city"] == "LYON"


async def test_field_parameters_restrict_their_words_to_one_field(client):
    response = await client.get("/v1/directory/search", params={"name": "sophie"})
    assert addresses(response.json()["items"]) == []
    response = await client.get("/v1/directory/search", params={"given_name": "sophie"})
    assert addresses(response.json()["items"]) == [SOPHIE, SOPHIE]
    response = await client.get("/v1/directory/search", params={"q": "martin", "city": "lyon"})
    assert addresses(response.json()["items"]) == [HELENE]
    response = await client.get(
        "/v1/directory/search", params={"organisation": "parc", "postcode": "75015"}
    )
    assert addresses(response.json()["items"]) == [SOPHIE]


async def test_the_kind_parameter_keeps_one_mailbox_type(client):
    response = await client.get("/v1/directory/search", params={"q": "exemple", "kind": "ORG"})
    body = response.json()
    assert body["total"] == 1
    assert body["items"][0]["kind"] == "ORG"
    assert body["items"][0]["role"]["practitioner"] is None


async def test_a_liste_rouge_mailbox_never_appears_in_results(client, world: World):
    for params in ({"q": "secret"}, {"q": "martin"}, {"given_name": "secret"}):
        response = await client.get("/v1/directory/search", params=params)
        assert SECRET not in addresses(response.json()["items"])
    professional = await client.get(
        "/v1/directory/search", params={"q": "secret"}, headers=world.doctor.header()
    )
    assert professional.json()["items"] == []


async def test_anonymous_pages_are_capped_and_chained_by_next_links(client):
    response = await client.get("/v1/directory/search", params={"q": "generaliste", "limit": "100"})
    body = response.json()
    assert body["limit"] == 20 and len(body["items"]) == 20
    assert body["total"] == GENERALISTS
    assert response.headers["link"] == f'<{body["next"]}>; rel="next"'
    seen = addresses(body["items"])
    while body["next"] is not None:
        response = await client.get(body["next"])
        assert response.status_code == 200
        body = response.json()
        assert len(body["items"]) <= 20
        seen += addresses(body["items"])
    assert len(seen) == len(set(seen)) == GENERALISTS


async def test_professionals_get_pages_of_up_to_one_hundred(client, world: World):
    response = await client.get(
        "/v1/directory/search",
        params={"q": "generaliste", "limit": "1000"},
        headers=world.doctor.header(),
    )
    body = response.json()
    assert body["limit"] == 100
    assert len(body["items"]) == GENERALISTS and body["next"] is None


async def test_a_smaller_limit_is_honoured(client):
    response = await client.get("/v1/directory/search", params={"q": "generaliste", "limit": 7})
    body = response.json()
    assert len(body["items"]) == 7 and body["limit"] == 7
    assert "limit=7" in body["next"]


async def test_an_empty_anonymous_query_is_refused_so_the_directory_cannot_be_dumped(client):
    for params in ({}, {"q": ""}, {"q": "   "}, {"kind": "PER"}, {"limit": "20"}):
        response = await client.get("/v1/directory/search", params=params)
        assert response.status_code == 400, params
        assert response.headers["content-type"] == PROBLEM
        problem = response.json()
        assert problem["status"] == 400
        assert problem["errors"][0]["field"] == "q"


async def test_a_query_of_punctuation_only_is_refused_naming_the_query(client, world: World):
    for headers in ({}, world.doctor.header()):
        response = await client.get("/v1/directory/search", params={"q": "-- ''"}, headers=headers)
        assert response.status_code == 400
        assert response.json()["errors"][0]["field"] == "q"


async def test_bad_parameters_are_refused_naming_the_field(client):
    cases = [
        ({"q": "martin", "limit": "0"}, "limit"),
        ({"q": "martin", "limit": "many"}, "limit"),
        ({"q": "martin", "kind": "XYZ"}, "kind"),
        ({"q": "martin", "cursor": "not-a-cursor"}, "cursor"),
        ({"q": "martin", "cursor": "o99999999999999999999999"}, "cursor"),
        ({"q": "x" * 201}, "q"),
        ({"q": "mar\x00tin"}, "q"),
        ({"city": "pa\x1bris"}, "city"),
    ]
    for params, field in cases:
        response = await client.get("/v1/directory/search", params=params)
        assert response.status_code == 400, params
        assert response.headers["content-type"] == PROBLEM
        assert [e["field"] for e in response.json()["errors"]] == [field], params


async def test_links_use_the_configured_public_base_url(world: World):
    app = world.app(public_base_url="https://annuaire.pli.example")
    async with open_client(app) as client:
        response = await client.get("/v1/directory/search", params={"q": "generaliste"})
    assert response.json()["next"].startswith("https://annuaire.pli.example/v1/directory/search?")

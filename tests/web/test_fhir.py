"""The FHIR R4 read API: national mailbox extensions, search parameters, paging, errors."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.web.conftest import (
    CARDIO,
    CH_FINESS,
    CH_ID,
    GENERALISTS,
    HELENE,
    SECRET,
    SOPHIE,
    SOPHIE_ID,
    World,
    open_client,
    per,
)

FHIR = "application/fhir+json"
EMAIL_TYPE = "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-contact-point-email-type"
METADATA = "https://interop.esante.gouv.fr/ig/fhir/annuaire/StructureDefinition/as-ext-mailbox-mss-metadata"
TYPE_MESSAGERIE = (
    "https://mos.esante.gouv.fr/NOS/TRE_R256-TypeMessagerie/FHIR/TRE-R256-TypeMessagerie"
)
TYPE_BAL = "https://mos.esante.gouv.fr/NOS/TRE_R257-TypeBAL/FHIR/TRE-R257-TypeBAL"


def mailbox(address: str, kind: str, rank: int | None = None, **strings: str) -> Any:
    """The ContactPoint DOMAIN.md and the Annuaire Santé guide describe, field for field."""
    metadata: list[Any] = [
        {"url": "type", "valueCodeableConcept": {"coding": [{"system": TYPE_BAL, "code": kind}]}}
    ]
    for name in ("description", "responsible", "service"):
        if name in strings:
            metadata.append({"url": name, "valueString": strings[name]})
    metadata.append({"url": "listeRouge", "valueBoolean": False})
    contact: dict[str, Any] = {
        "extension": [
            {"url": EMAIL_TYPE, "valueCoding": {"system": TYPE_MESSAGERIE, "code": "MSSANTE"}},
            {"url": METADATA, "extension": metadata},
        ],
        "system": "email",
        "value": address,
    }
    if rank is not None:
        contact["rank"] = rank
    return contact


def resources(bundle: Any) -> list[Any]:
    return [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "match"]


def telecom_values(resource: Any) -> list[str]:
    return [t["value"] for t in resource.get("telecom", [])]


async def search(client, path: str, params: Any, headers: Any = None) -> Any:
    response = await client.get(path, params=params, headers=headers or {})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == FHIR
    bundle = response.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    return bundle


# --- Acceptance 6: PER and ORG mailboxes carry the national extensions exactly -----------


async def test_a_per_mailbox_carries_the_national_extensions_exactly(client):
    bundle = await search(client, "/fhir/Practitioner", {"mailbox-mss:exact": SOPHIE})
    assert bundle["total"] == 1
    (practitioner,) = resources(bundle)
    assert practitioner["resourceType"] == "Practitioner"
    assert practitioner["id"] == SOPHIE_ID
    assert practitioner["telecom"] == [
        mailbox(SOPHIE, "PER", rank=1, description="BAL personnelle", service="Cardiologie")
    ]
    assert practitioner["identifier"][0] == {
        "use": "official",
        "type": {
            "coding": [
                {
                    "system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203",
                    "code": "IDNPS",
                }
            ]
        },
        "system": "urn:oid:1.2.250.1.71.4.2.1",
        "value": SOPHIE_ID,
    }
    assert practitioner["identifier"][1]["system"] == "https://rpps.esante.gouv.fr"
    assert practitioner["identifier"][1]["value"] == SOPHIE_ID[1:]
    assert practitioner["name"] == [{"family": "MARTIN", "given": ["Sophie"], "prefix": ["DR"]}]


async def test_an_org_mailbox_carries_the_national_extensions_exactly(client, world: World):
    anonymous = await search(
        client, "/fhir/Organization", {"mailbox-mss": CARDIO, "mailbox-mss-type": "ORG"}
    )
    (organization,) = resources(anonymous)
    assert organization["id"] == CH_ID
    assert organization["telecom"] == [
        mailbox(CARDIO, "ORG", description="Secrétariat de cardiologie", service="Cardiologie")
    ]
    assert {(i["system"], i["value"]) for i in organization["identifier"]} == {
        ("urn:oid:1.2.250.1.71.4.2.2", CH_ID),
        ("https://finess.esante.gouv.fr", CH_FINESS),
    }
    assert organization["name"] == "CENTRE HOSPITALIER EXEMPLE"
    assert organization["address"] == [
        {
            "line": ["12 R DE LA SANTE"],
            "city": "PARIS",
            "district": "75",
            "postalCode": "75014",
            "country": "FRANCE",
        }
    ]
    professional = await search(
        client,
        "/fhir/Organization",
        {"mailbox-mss": CARDIO, "mailbox-mss-type": "ORG"},
        world.doctor.header(),
    )
    assert resources(professional)[0]["telecom"] == [
        mailbox(
            CARDIO,
            "ORG",
            description="Secrétariat de cardiologie",
            responsible="Mme Durand, cadre de santé, 01 02 03 04 05",
            service="Cardiologie",
        )
    ]


async def test_responsible_is_never_shown_to_anonymous_callers(client, world: World):
    for path in (f"/fhir/Organization/{CH_ID}", "/fhir/Organization?name=exemple"):
        anonymous = await client.get(path)
        assert "Mme Durand" not in anonymous.text
        professional = await client.get(path, headers=world.doctor.header())
        assert "Mme Durand" in professional.text


# --- mailbox-mss and its modifiers, mailbox-mss-type ------------------------------------


async def test_mailbox_mss_contains_finds_addresses_containing_the_text(client):
    bundle = await search(
        client, "/fhir/PractitionerRole", {"mailbox-mss:contains": "martin@", "_count": 50}
    )
    assert sorted({telecom_values(r)[0] for r in resources(bundle)}) == [SOPHIE]
    assert bundle["total"] == 2  # Sophie's two lines


async def test_plain_mailbox_mss_matches_the_start_of_the_address(client):
    starts = await search(client, "/fhir/Practitioner", {"mailbox-mss": "sophie.mar"})
    assert [telecom_values(r) for r in resources(starts)] == [[SOPHIE]]
    inside = await search(client, "/fhir/Practitioner", {"mailbox-mss": "martin@"})
    assert inside["total"] == 0 and resources(inside) == []


async def test_mailbox_mss_exact_matches_the_whole_address_only(client):
    exact = await search(client, "/fhir/PractitionerRole", {"mailbox-mss:exact": HELENE})
    assert [telecom_values(r) for r in resources(exact)] == [[HELENE]]
    partial = await search(
        client, "/fhir/PractitionerRole", {"mailbox-mss:exact": "helene.dupont@medecin"}
    )
    assert partial["total"] == 0
    upper = await search(client, "/fhir/PractitionerRole", {"mailbox-mss:exact": HELENE.upper()})
    assert upper["total"] == 1


async def test_mailbox_mss_type_selects_the_mailbox_type(client):
    per = await search(
        client,
        "/fhir/Practitioner",
        {"mailbox-mss:contains": "pli.test", "mailbox-mss-type": "PER"},
    )
    assert per["total"] == 2 + GENERALISTS  # Sophie, Hélène and the generalists
    org = await search(
        client,
        "/fhir/Organization",
        {"mailbox-mss:contains": "pli.test", "mailbox-mss-type": "ORG"},
    )
    assert [telecom_values(r) for r in resources(org)] == [[CARDIO]]
    with_system = await search(
        client, "/fhir/Organization", {"name": "exemple", "mailbox-mss-type": f"{TYPE_BAL}|ORG"}
    )
    assert with_system["total"] == 1
    other_system = await search(
        client, "/fhir/Organization", {"name": "exemple", "mailbox-mss-type": "urn:other|ORG"}
    )
    assert other_system["total"] == 0


async def test_liste_rouge_mailboxes_never_appear_in_fhir(client, world: World):
    for params in ({"family": "martin"}, {"mailbox-mss:contains": "secret"}):
        bundle = await search(client, "/fhir/Practitioner", params, world.doctor.header())
        assert SECRET not in str(bundle)
    response = await client.get("/fhir/PractitionerRole/secret.martin-40medecin.pli.test")
    assert response.status_code == 404
    practitioner = await client.get("/fhir/Practitioner/810005555555")
    assert practitioner.status_code == 200
    assert "telecom" not in practitioner.json()


# --- Other search parameters -------------------------------------------------------------


async def test_name_family_and_given_search_practitioners(client):
    by_name = await search(client, "/fhir/Practitioner", {"name": "hélène"})
    assert [r["id"] for r in resources(by_name)] == ["810009876543"]
    by_family = await search(client, "/fhir/Practitioner", {"family": "martin"})
    assert {r["id"] for r in resources(by_family)} == {SOPHIE_ID, "810009876543"}
    both = await search(client, "/fhir/Practitioner", {"family": "martin", "given": "soph"})
    assert [r["id"] for r in resources(both)] == [SOPHIE_ID]


async def test_identifier_finds_practitioners_and_organisations(client):
    for value in (
        SOPHIE_ID,
        f"urn:oid:1.2.250.1.71.4.2.1|{SOPHIE_ID}",
        f"https://rpps.esante.gouv.fr|{SOPHIE_ID[1:]}",
    ):
        bundle = await search(client, "/fhir/Practitioner", {"identifier": value})
        (practitioner,) = resources(bundle)
        assert telecom_values(practitioner) == [SOPHIE]
    finess = await search(
        client, "/fhir/Organization", {"identifier": f"https://finess.esante.gouv.fr|{CH_FINESS}"}
    )
    assert [telecom_values(r) for r in resources(finess)] == [[CARDIO]]
    unknown = await search(client, "/fhir/Practitioner", {"identifier": "urn:other|1"})
    assert unknown["total"] == 0


async def test_practitioner_roles_link_practitioner_organisation_and_mailbox(client):
    bundle = await search(client, "/fhir/PractitionerRole", {"mailbox-mss:exact": SOPHIE})
    roles = resources(bundle)
    assert [r["id"] for r in roles] == [
        "sophie.martin-40medecin.pli.test",
        "sophie.martin-40medecin.pli.test--1",
    ]
    assert [r["organization"]["reference"] for r in roles] == [
        f"Organization/{CH_ID}",
        "Organization/3999999999",
    ]
    assert roles[0]["practitioner"] == {
        "reference": f"Practitioner/{SOPHIE_ID}",
        "display": "DR Sophie MARTIN",
    }
    assert roles[0]["code"][0]["coding"][0]["code"] == "10"
    assert roles[0]["telecom"][0]["value"] == SOPHIE
    assert roles[1]["telecom"][0] == mailbox(SOPHIE, "PER", rank=1, description="BAL personnelle")
    for role in roles:
        read = await client.get(f"/fhir/PractitionerRole/{role['id']}")
        assert read.status_code == 200
        assert read.json() == role
    full_urls = [e["fullUrl"] for e in bundle["entry"]]
    assert (
        full_urls[0] == "http://testserver/fhir/PractitionerRole/sophie.martin-40medecin.pli.test"
    )


# --- Reads ---------------------------------------------------------------------------------


async def test_reads_return_the_resource_with_all_its_mailboxes(client):
    practitioner = await client.get(f"/fhir/Practitioner/{SOPHIE_ID}")
    assert practitioner.status_code == 200
    assert practitioner.headers["content-type"] == FHIR
    assert telecom_values(practitioner.json()) == [SOPHIE]
    organization = await client.get(f"/fhir/Organization/{CH_ID}")
    assert organization.status_code == 200
    assert telecom_values(organization.json()) == [CARDIO]


async def test_unknown_resources_are_404_operation_outcomes(client):
    for path in (
        "/fhir/Practitioner/899999999999",
        "/fhir/Organization/1000000000",
        "/fhir/PractitionerRole/nobody-40nowhere.test",
        "/fhir/PractitionerRole/sophie.martin-40medecin.pli.test--7",
        "/fhir/PractitionerRole/cardiologie-40ch-2Dexemple.pli.test",  # an ORG line
        "/fhir/Practitioner/not-an-id",
        "/fhir/Practitioner/a-40b",
        "/fhir/Patient/1",
        "/fhir/Practitioner/" + "9" * 401,
    ):
        response = await client.get(path)
        assert response.status_code in (400, 404), path
        assert response.headers["content-type"] == FHIR, path
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome", path
        assert outcome["issue"][0]["severity"] == "error"


# --- Paging --------------------------------------------------------------------------------


async def test_bundles_page_with_next_links_capped_for_anonymous_callers(client):
    bundle = await search(client, "/fhir/Practitioner", {"family": "generaliste", "_count": 500})
    assert bundle["total"] == GENERALISTS
    assert len(resources(bundle)) == 20
    seen = [r["id"] for r in resources(bundle)]
    links = {link["relation"]: link["url"] for link in bundle["link"]}
    while "next" in links:
        assert parse_qs(urlsplit(links["next"]).query)["_count"] == ["20"]
        response = await client.get(links["next"])
        bundle = response.json()
        seen += [r["id"] for r in resources(bundle)]
        links = {link["relation"]: link["url"] for link in bundle["link"]}
    assert len(seen) == len(set(seen)) == GENERALISTS
    assert "previous" in links


async def test_professionals_get_up_to_one_hundred_and_count_zero_gives_the_total(
    client, world: World
):
    bundle = await search(
        client,
        "/fhir/Practitioner",
        {"family": "generaliste", "_count": 500},
        world.doctor.header(),
    )
    assert len(resources(bundle)) == GENERALISTS
    assert "next" not in {link["relation"] for link in bundle["link"]}
    counted = await search(
        client, "/fhir/Practitioner", {"family": "generaliste", "_count": 0, "_offset": 20}
    )
    assert counted["total"] == GENERALISTS and counted["entry"] == []
    assert [link["relation"] for link in counted["link"]] == ["self"]


async def test_a_search_larger_than_the_scan_limit_says_it_is_incomplete(world: World):
    await world.add_lines(
        [
            per(
                f"other{n:02d}@many.pli.test",
                national_id=f"8100030000{n:02d}",
                family="AUTRE",
                given=f"Paul{n:02d}",
            )
            for n in range(60)
        ]
    )
    async with open_client(world.app(fhir_scan_limit=100)) as client:
        bundle = await search(client, "/fhir/Practitioner", {"mailbox-mss:contains": "pli.test"})
    assert "total" not in bundle
    assert len(resources(bundle)) == 20
    outcome = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome[0]["resource"]["resourceType"] == "OperationOutcome"
    assert outcome[0]["resource"]["issue"][0]["severity"] == "warning"


# --- Errors --------------------------------------------------------------------------------


async def test_invalid_searches_are_400_operation_outcomes_naming_the_parameter(client):
    cases = [
        ("/fhir/Practitioner", {}, "name"),
        ("/fhir/Practitioner", {"_count": "10"}, "name"),
        ("/fhir/Practitioner", {"birthdate": "1970"}, "birthdate"),
        ("/fhir/Practitioner", {"family:exact": "martin"}, "family:exact"),
        ("/fhir/Practitioner", {"family": "a,b"}, "family"),
        ("/fhir/Practitioner", {"family": "x" * 300}, "family"),
        ("/fhir/Practitioner", {"family": "mar\x00tin"}, "family"),
        ("/fhir/Practitioner", {"family": "martin", "_count": "-1"}, "_count"),
        ("/fhir/Practitioner", {"family": "martin", "_count": "ten"}, "_count"),
        ("/fhir/Practitioner", {"family": "martin", "_offset": "99999"}, "_offset"),
        ("/fhir/Practitioner", {"family": "martin", "_format": "xml"}, "_format"),
        ("/fhir/Practitioner", {"mailbox-mss-type": "XYZ", "family": "martin"}, "mailbox-mss-type"),
        ("/fhir/Practitioner", {"identifier": SOPHIE_ID, "family": "martin"}, "identifier"),
        ("/fhir/Practitioner", {"identifier": "urn:x|"}, "identifier"),
        ("/fhir/Practitioner", {"mailbox-mss": ""}, "mailbox-mss"),
        ("/fhir/PractitionerRole", {"identifier": "1"}, "identifier"),
        ("/fhir/Organization", {"family": "martin"}, "family"),
    ]
    for path, params, name in cases:
        response = await client.get(path, params=params)
        assert response.status_code == 400, (path, params)
        assert response.headers["content-type"] == FHIR
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["code"] == "invalid"
        assert outcome["issue"][0]["expression"] == [name], (path, params)


async def test_a_repeated_parameter_is_refused(client):
    response = await client.get("/fhir/Practitioner?family=martin&family=dupont")
    assert response.status_code == 400
    response = await client.get("/fhir/Practitioner?mailbox-mss=sophie&mailbox-mss:contains=sophie")
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["mailbox-mss:contains"]


async def test_the_capability_statement_lists_the_resources_and_parameters(client):
    response = await client.get("/fhir/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"] == FHIR
    statement = response.json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"
    kinds = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert set(kinds) == {"Practitioner", "PractitionerRole", "Organization"}
    assert {"mailbox-mss", "mailbox-mss-type"} <= {
        p["name"] for p in kinds["Organization"]["searchParam"]
    }

"""``GET /v1/directory/mailboxes/{address}``: the entry, its keys, and a proof that verifies."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from crypto.encoding import b64url_decode
from messaging import Address
from messaging.transparency import Failure, KeyProof, KeyVerificationError, KeyVerifier
from tests.web.conftest import (
    CARDIO,
    LOG_ID,
    LOG_KEY,
    PATIENT_INS,
    SECRET,
    SOPHIE,
    World,
    open_client,
)
from tests.web.fakes import FakeKeys
from web import create_app

PROBLEM = "application/problem+json"


def verifier(state: bytes | None = None) -> KeyVerifier:
    return KeyVerifier(LOG_KEY.public, LOG_ID, state=state)


def handed_keys(address: str, body: Any) -> FakeKeys:
    return FakeKeys(
        Address.parse(address),
        b64url_decode(body["keys"]["encryption_key"]),
        b64url_decode(body["keys"]["signing_key"]),
    )


async def test_a_mailbox_comes_with_its_roles_and_its_keys(client, world: World):
    response = await client.get(f"/v1/directory/mailboxes/{SOPHIE}")
    assert response.status_code == 200
    body = response.json()
    assert body["address"] == SOPHIE and body["kind"] == "PER"
    assert body["description"] == "BAL personnelle" and body["preferred_rank"] == 1
    assert [r["organisation"]["name"] for r in body["roles"]] == [
        "CENTRE HOSPITALIER EXEMPLE",
        "CABINET DU PARC",
    ]
    keys = handed_keys(SOPHIE, body)
    assert (keys.encryption_key, keys.signing_key) == world.published[SOPHIE]


async def test_the_key_proof_verifies_on_the_client_side(client):
    body = (await client.get(f"/v1/directory/mailboxes/{SOPHIE}")).json()
    proof = KeyProof.from_json(body["proof"])
    client_verifier = verifier()
    client_verifier.verify(Address.parse(SOPHIE), handed_keys(SOPHIE, body), proof)
    assert client_verifier.trusted_head == proof.head


async def test_a_later_lookup_with_known_size_carries_a_consistency_proof(client, world: World):
    first = (await client.get(f"/v1/directory/mailboxes/{SOPHIE}")).json()
    client_verifier = verifier()
    client_verifier.verify(
        Address.parse(SOPHIE), handed_keys(SOPHIE, first), KeyProof.from_json(first["proof"])
    )
    state = client_verifier.state()
    trusted_size = first["proof"]["tree_size"]
    # The log grows: a rotation of the cardiology mailbox's keys.
    world.clock.advance(timedelta(days=1))
    await world.publish(CARDIO, b"\x01" * 32, b"\x02" * 32)

    without = (await client.get(f"/v1/directory/mailboxes/{CARDIO}")).json()
    assert without["proof"]["consistency"] is None
    with pytest.raises(KeyVerificationError) as refused:
        verifier(state).verify(
            Address.parse(CARDIO),
            handed_keys(CARDIO, without),
            KeyProof.from_json(without["proof"]),
        )
    assert refused.value.reason is Failure.INCONSISTENT

    response = await client.get(
        f"/v1/directory/mailboxes/{CARDIO}", params={"known_size": trusted_size}
    )
    body = response.json()
    assert body["proof"]["consistency"]["old_size"] == trusted_size
    later = verifier(state)
    later.verify(
        Address.parse(CARDIO), handed_keys(CARDIO, body), KeyProof.from_json(body["proof"])
    )
    assert later.trusted_head is not None
    assert later.trusted_head.tree_size == trusted_size + 1


async def test_a_tampered_key_is_refused_by_the_client(client):
    body = (await client.get(f"/v1/directory/mailboxes/{SOPHIE}")).json()
    forged = FakeKeys(
        Address.parse(SOPHIE), b"\x05" * 32, b64url_decode(body["keys"]["signing_key"])
    )
    with pytest.raises(KeyVerificationError) as refused:
        verifier().verify(Address.parse(SOPHIE), forged, KeyProof.from_json(body["proof"]))
    assert refused.value.reason is Failure.KEY_MISMATCH


async def test_revoked_keys_are_not_handed_over_but_their_revocation_is_proven(
    client, world: World
):
    await world.revoke(SOPHIE)
    body = (await client.get(f"/v1/directory/mailboxes/{SOPHIE}")).json()
    assert body["keys"] is None
    proof = KeyProof.from_json(body["proof"])
    assert proof.leaf.status.value == "revoked"


async def test_a_mailbox_without_published_keys_has_neither_keys_nor_proof(client, world: World):
    body = (await client.get("/v1/directory/mailboxes/medecin00@generaliste.pli.test")).json()
    assert body["keys"] is None and body["proof"] is None


async def test_without_a_key_log_mailboxes_have_no_keys(world: World):
    async with open_client(create_app(directory=world.directory)) as client:
        body = (await client.get(f"/v1/directory/mailboxes/{SOPHIE}")).json()
        assert body["keys"] is None and body["proof"] is None
        assert (await client.get("/v1/directory/log/head")).status_code == 404


async def test_liste_rouge_answers_exactly_as_an_unknown_mailbox(client, world: World):
    hidden = await client.get(f"/v1/directory/mailboxes/{SECRET}")
    unknown = await client.get("/v1/directory/mailboxes/nobody@medecin.pli.test")
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.headers["content-type"] == PROBLEM
    assert hidden.json() == unknown.json()
    assert hidden.content == unknown.content
    professional = await client.get(
        f"/v1/directory/mailboxes/{SECRET}", headers=world.doctor.header()
    )
    assert professional.status_code == 404


async def test_responsible_is_shown_to_authenticated_professionals_only(client, world: World):
    anonymous = (await client.get(f"/v1/directory/mailboxes/{CARDIO}")).json()
    assert anonymous["responsible"] is None
    assert anonymous["description"] == "Secrétariat de cardiologie"
    professional = (
        await client.get(f"/v1/directory/mailboxes/{CARDIO}", headers=world.doctor.header())
    ).json()
    assert professional["responsible"] == "Mme Durand, cadre de santé, 01 02 03 04 05"


async def test_a_patients_mailbox_is_visible_to_professionals_only(client, world: World):
    address = f"{PATIENT_INS}@patient.pli.test"
    anonymous = await client.get(f"/v1/directory/mailboxes/{address}")
    assert anonymous.status_code == 404
    professional = await client.get(
        f"/v1/directory/mailboxes/{address}", headers=world.doctor.header()
    )
    assert professional.status_code == 200
    assert professional.json()["kind"] == "PAT"


async def test_addresses_are_compared_in_lower_case(client):
    response = await client.get("/v1/directory/mailboxes/Sophie.Martin@MEDECIN.pli.test")
    assert response.status_code == 200
    assert response.json()["address"] == SOPHIE


async def test_an_invalid_address_or_size_is_refused_naming_it(client):
    for path, field in [
        ("/v1/directory/mailboxes/not-an-address", "address"),
        ("/v1/directory/mailboxes/a@b", "address"),
        (f"/v1/directory/mailboxes/{SOPHIE}?known_size=-1", "known_size"),
        (f"/v1/directory/mailboxes/{SOPHIE}?known_size=x", "known_size"),
        (f"/v1/directory/mailboxes/{SOPHIE}?known_size={2**64}", "known_size"),
    ]:
        response = await client.get(path)
        assert response.status_code == 400, path
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["errors"][0]["field"] == field, path


async def test_a_known_size_beyond_the_log_gets_no_consistency_proof(client):
    response = await client.get(f"/v1/directory/mailboxes/{SOPHIE}", params={"known_size": 10**9})
    assert response.status_code == 200
    assert response.json()["proof"]["consistency"] is None

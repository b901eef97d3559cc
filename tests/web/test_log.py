"""``GET /v1/directory/log/head`` and ``/consistency``: heads a client can check and follow."""

from __future__ import annotations

from datetime import timedelta

from crypto.encoding import b64url_decode
from crypto.merkle import SignedTreeHead, verify_tree_head
from messaging.transparency import ConsistencyProof, KeyVerifier
from tests.web.conftest import LOG_ID, LOG_KEY, World

PROBLEM = "application/problem+json"


async def test_the_head_is_signed_by_the_log_and_its_fields_match_its_bytes(client):
    response = await client.get("/v1/directory/log/head")
    assert response.status_code == 200
    body = response.json()
    head = SignedTreeHead.from_bytes(b64url_decode(body["head"]))
    assert verify_tree_head(head, LOG_KEY.public)
    assert (body["log_id"], body["tree_size"], body["timestamp_ms"]) == (
        LOG_ID,
        head.tree_size,
        head.timestamp_ms,
    )
    assert b64url_decode(body["root_hash"]) == head.root_hash
    assert b64url_decode(body["signature"]) == head.signature
    assert head.tree_size == 4


async def test_a_client_moves_its_trusted_head_forward_with_a_consistency_proof(
    client, world: World
):
    verifier = KeyVerifier(LOG_KEY.public, LOG_ID)
    first = SignedTreeHead.from_bytes(
        b64url_decode((await client.get("/v1/directory/log/head")).json()["head"])
    )
    verifier.update(first, None)
    world.clock.advance(timedelta(hours=1))
    for n in range(3):
        await world.publish(f"new{n}@medecin.pli.test", b"\x03" * 32, b"\x04" * 32)
    second = SignedTreeHead.from_bytes(
        b64url_decode((await client.get("/v1/directory/log/head")).json()["head"])
    )
    response = await client.get(
        "/v1/directory/log/consistency",
        params={"from": first.tree_size, "to": second.tree_size},
    )
    assert response.status_code == 200
    body = response.json()
    proof = ConsistencyProof(
        body["old_size"], body["new_size"], tuple(b64url_decode(p) for p in body["path"])
    )
    verifier.update(second, proof)
    assert verifier.trusted_head == second


async def test_equal_and_empty_sizes_give_empty_proofs(client):
    for old, new in ((4, 4), (0, 4), (0, 0)):
        response = await client.get(
            "/v1/directory/log/consistency", params={"from": old, "to": new}
        )
        assert response.status_code == 200
        assert response.json()["path"] == []


async def test_bad_sizes_are_refused_with_400_naming_the_parameter(client):
    cases = [
        ({"from": 3, "to": 2}, "from"),
        ({"from": 1, "to": 5}, "to"),
        ({"from": -1, "to": 2}, "from"),
        ({"from": 1, "to": "x"}, "to"),
        ({"from": 1}, "to"),
        ({"to": 1}, "from"),
        ({"from": 1, "to": 2**64}, "to"),
    ]
    for params, field in cases:
        response = await client.get("/v1/directory/log/consistency", params=params)
        assert response.status_code == 400, params
        assert response.headers["content-type"] == PROBLEM
        assert [e["field"] for e in response.json()["errors"]] == [field], params

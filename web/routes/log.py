"""``/v1/directory/log``: the key transparency log's signed tree heads and consistency proofs.

A client that keeps a trusted head (``KeyVerifier.state()``) moves it forward with
``GET /v1/directory/log/head`` then ``GET /v1/directory/log/consistency?from=OLD&to=NEW``
and ``KeyVerifier.update`` (RFC 9162 §2.1.4 proofs, signed heads after §4.10).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Query

from messaging.errors import NotFound
from web.deps import KeyLogDep, get_caller
from web.problems import ApiError
from web.schemas import ConsistencyProofOut, TreeHeadOut, b64url

if TYPE_CHECKING:
    from crypto.merkle import SignedTreeHead

__all__ = ["router"]

router = APIRouter(
    prefix="/v1/directory/log",
    tags=["key transparency"],
    dependencies=[Depends(get_caller)],
    responses={429: {"description": "Too many anonymous requests; see Retry-After"}},
)


def tree_head_out(head: SignedTreeHead) -> TreeHeadOut:
    return TreeHeadOut(
        log_id=head.log_id,
        tree_size=head.tree_size,
        root_hash=b64url(head.root_hash),
        timestamp_ms=head.timestamp_ms,
        signature=b64url(head.signature),
        head=b64url(head.to_bytes()),
    )


@router.get("/head", summary="The latest signed tree head", response_model=TreeHeadOut)
async def head(key_log: KeyLogDep) -> TreeHeadOut:
    return tree_head_out(await key_log.latest_head())


@router.get(
    "/consistency",
    summary="Proof that the tree of `from` leaves is a prefix of the tree of `to` leaves",
    response_model=ConsistencyProofOut,
    responses={400: {"description": "Sizes out of order or beyond the log"}},
)
async def consistency(
    key_log: KeyLogDep,
    old_size: Annotated[int, Query(alias="from", ge=0, le=2**63 - 1)],
    new_size: Annotated[int, Query(alias="to", ge=0, le=2**63 - 1)],
) -> ConsistencyProofOut:
    if old_size > new_size:
        raise ApiError.bad_parameter("from", f"from ({old_size}) is larger than to ({new_size})")
    latest = await key_log.latest_head()
    if new_size > latest.tree_size:
        raise ApiError.bad_parameter(
            "to", f"the log has {latest.tree_size} leaves, fewer than {new_size}"
        )
    try:
        proof = await key_log.consistency_proof(old_size, new_size)
    except NotFound as exc:
        raise ApiError.bad_parameter("to", str(exc)) from None
    return ConsistencyProofOut(
        old_size=proof.old_size,
        new_size=proof.new_size,
        path=[b64url(node) for node in proof.path],
    )

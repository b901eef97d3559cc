"""``/v1/directory``: search the directory and read a mailbox with its keys and their proof.

- ``GET /v1/directory/search``: ranked prefix search, one page at a time. Anonymous
  callers must give at least one term and get at most ``anonymous_page_size`` hits a
  page; authenticated professionals up to ``professional_page_size``.
- ``GET /v1/directory/mailboxes/{address}``: one mailbox. Liste rouge and retired
  mailboxes answer 404 exactly as unknown ones do, and so do patients' mailboxes for
  anyone but an authenticated professional. With a key log configured, the answer carries
  the address's current keys and the :class:`~messaging.transparency.KeyProof` of its
  latest leaf (``?known_size=N`` adds the consistency proof from the client's trusted
  head), which the client checks with :class:`~messaging.transparency.KeyVerifier`.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from messaging.directory import InvalidQuery, SearchQuery
from messaging.errors import InvalidAddress
from messaging.types import Address, MailboxKind
from web.deps import ContextDep, CurrentCaller, DirectoryDep, SettingsDep, get_caller
from web.params import check_cursor, clean_text, public_url
from web.problems import ApiError
from web.schemas import KeyProofOut, KeysOut, MailboxOut, SearchHitOut, SearchPageOut, b64url
from web.visibility import visible

__all__ = ["router"]

router = APIRouter(
    prefix="/v1/directory",
    tags=["directory"],
    dependencies=[Depends(get_caller)],
    responses={
        400: {"description": "A parameter is invalid (problem+json naming it)"},
        401: {"description": "Wrong credentials"},
        429: {"description": "Too many anonymous requests; see Retry-After"},
    },
)

_MAX_TEXT = 200
_TEXT_FIELDS = (
    "q",
    "name",
    "given_name",
    "profession",
    "specialty",
    "organisation",
    "city",
    "postcode",
    "street",
)

TextParam = Annotated[str | None, Query(max_length=_MAX_TEXT)]


@router.get(
    "/search",
    summary="Search the directory",
    response_model=SearchPageOut,
    description="Every word is matched as the prefix of a word, ignoring case and accents; "
    "all words must match. `q` matches any field, the others one field each. Results are "
    "ranked and paginated: follow `next` (or pass `next_cursor` as `cursor`).",
)
async def search(
    request: Request,
    response: Response,
    directory: DirectoryDep,
    settings: SettingsDep,
    caller: CurrentCaller,
    q: TextParam = None,
    name: TextParam = None,
    given_name: TextParam = None,
    profession: TextParam = None,
    specialty: TextParam = None,
    organisation: TextParam = None,
    city: TextParam = None,
    postcode: TextParam = None,
    street: TextParam = None,
    kind: Annotated[MailboxKind | None, Query()] = None,
    limit: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> SearchPageOut:
    values = dict(
        zip(
            _TEXT_FIELDS,
            (q, name, given_name, profession, specialty, organisation, city, postcode, street),
            strict=True,
        )
    )
    terms = {field: clean_text(field, value) for field, value in values.items()}
    if not caller.is_professional and not any(terms.values()):
        raise ApiError.bad_parameter(
            "q", "a search needs at least one word: the directory is not listed in full"
        )
    cap = caller.page_cap(settings)
    size = min(limit or cap, cap)
    checked_cursor = check_cursor("cursor", cursor)
    try:
        query = SearchQuery(
            text=terms["q"],
            name=terms["name"],
            given_name=terms["given_name"],
            profession=terms["profession"],
            specialty=terms["specialty"],
            organisation=terms["organisation"],
            city=terms["city"],
            postcode=terms["postcode"],
            street=terms["street"],
            kind=kind,
            limit=size,
            cursor=checked_cursor,
        )
        page = await directory.search(query)
    except InvalidQuery as exc:
        raise ApiError.bad_parameter("q", str(exc)) from None
    next_url = None
    if page.next_cursor is not None:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
        params = [(k, v) for k, v in params if k != "limit"]
        params += [("limit", str(size)), ("cursor", page.next_cursor)]
        next_url = public_url(request, settings, request.url.path, urlencode(params))
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return SearchPageOut(
        items=[SearchHitOut.from_hit(hit) for hit in page.items],
        total=page.total,
        total_exact=page.total_exact,
        limit=size,
        next_cursor=page.next_cursor,
        next=next_url,
    )


@router.get(
    "/mailboxes/{address:path}",
    summary="One mailbox, with its current keys and their transparency proof",
    response_model=MailboxOut,
    responses={404: {"description": "No such mailbox (liste rouge ones included)"}},
)
async def mailbox(
    directory: DirectoryDep,
    context: ContextDep,
    caller: CurrentCaller,
    address: Annotated[str, Path(max_length=320, description="The mailbox address")],
    known_size: Annotated[
        int | None,
        Query(
            ge=0,
            le=2**63 - 1,
            description="The tree size of the head the client trusts: the proof then "
            "carries a consistency proof from it",
        ),
    ] = None,
) -> MailboxOut:
    text = clean_text("address", address, location="path")
    try:
        parsed = Address.parse(text)
    except InvalidAddress as exc:
        raise ApiError.bad_parameter("address", str(exc), "path") from None
    entry = await directory.get_mailbox(parsed)
    if entry is None or not visible(entry, professional=caller.is_professional):
        raise ApiError(404, "Not found", "no such mailbox in the directory")
    keys = proof = None
    if context.key_log is not None:
        key_proof = await context.key_log.lookup_with_proof(parsed, known_size=known_size)
        if key_proof is not None:
            proof = KeyProofOut.from_json(key_proof.to_json())
            leaf = key_proof.leaf
            if leaf.status.value == "published":
                keys = KeysOut(
                    encryption_key=b64url(leaf.encryption_key.raw),
                    signing_key=b64url(leaf.signing_key.raw),
                )
    return MailboxOut.from_entry(
        entry, show_responsible=caller.is_professional, keys=keys, proof=proof
    )

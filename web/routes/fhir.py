"""``/fhir``: a FHIR R4 read API over the directory (Annuaire Santé conventions).

Interactions (FHIR R4 RESTful API §3.1.0): ``read`` and ``search-type`` (GET) on
``Practitioner``, ``PractitionerRole`` and ``Organization``, and ``capabilities``
(``GET /fhir/metadata``). Responses are ``application/fhir+json``; errors are
``OperationOutcome`` resources.

Search parameters (FHIR R4 §3.1.1): ``name``, ``family``, ``given``, ``identifier``
(``[system|]value``), ``mailbox-mss`` (string: starts with; ``:contains``; ``:exact``),
``mailbox-mss-type`` (token ``[system|]ORG|APP|PER|CAB``), ``_count`` and the server's own
paging parameter ``_offset`` (follow the Bundle's ``next`` link). Unknown parameters,
repeated parameters and comma-separated (OR) values are refused with 400: the server says
what it does not do rather than silently ignore it.

Implementation notes:

- The directory answers searches over *lines* (roles) of the extraction; a search here
  reads up to ``fhir_scan_limit`` matching lines, filters them (``:exact``, starts-with),
  groups them into resources (a practitioner or an organisation named by several lines is
  one resource) and pages over the groups, so ``total`` counts resources. When more lines
  match, the Bundle has no ``total`` and carries a warning ``OperationOutcome`` (search
  mode ``outcome``) asking for a narrower search.
- A ``Practitioner`` lists its PER mailboxes, an ``Organization`` its ORG mailboxes, a
  ``PractitionerRole`` the mailbox of its line. In search results a resource lists the
  mailboxes among the matching lines; a read lists all of them (the directory is asked
  for the lines naming that practitioner or organisation).
- ``responsible`` is shown to authenticated professionals only; liste rouge mailboxes
  never appear, and a role of a liste rouge mailbox is 404 as an unknown one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse

from messaging.directory import (
    MAX_PAGE_SIZE,
    Directory,
    InvalidQuery,
    MailboxEntry,
    Organisation,
    Practitioner,
    Role,
    SearchQuery,
)
from messaging.errors import InvalidAddress
from messaging.types import Address, MailboxKind
from web import fhir
from web.deps import CurrentCaller, DirectoryDep, SettingsDep, get_caller
from web.params import clean_text, public_url
from web.problems import FHIR_JSON, ApiError, FieldError, outcome_resource
from web.settings import WebSettings
from web.visibility import visible

__all__ = ["router", "FhirResponse"]


class FhirResponse(JSONResponse):
    media_type = FHIR_JSON


ResourceType = Literal["Practitioner", "PractitionerRole", "Organization"]

_MAX_VALUE = 200
_COMMON = frozenset(
    {
        "mailbox-mss",
        "mailbox-mss:contains",
        "mailbox-mss:exact",
        "mailbox-mss-type",
        "_count",
        "_offset",
        "_format",
    }
)
_ALLOWED: Mapping[str, frozenset[str]] = {
    "Practitioner": _COMMON | {"name", "family", "given", "identifier"},
    "PractitionerRole": _COMMON | {"name", "family", "given"},
    "Organization": _COMMON | {"name", "identifier"},
}
_FORMATS = frozenset({"json", "application/json", "application/fhir+json"})
_MAILBOX_MODES: Mapping[str, Literal["prefix", "contains", "exact"]] = {
    "mailbox-mss": "prefix",
    "mailbox-mss:contains": "contains",
    "mailbox-mss:exact": "exact",
}
_ORGANISATION_KINDS = frozenset({MailboxKind.ORG, MailboxKind.CAB})


def _openapi_parameters(resource: str) -> dict[str, object]:
    docs = {name: (kind, doc) for name, kind, doc in fhir.SEARCH_PARAMETERS[resource]}
    docs.update({name: (kind, doc) for name, kind, doc in fhir.MAILBOX_PARAMETERS})
    docs["mailbox-mss:contains"] = ("string", "MSSanté address contains this text")
    docs["mailbox-mss:exact"] = ("string", "MSSanté address is exactly this one")
    docs["_offset"] = ("number", "Where the page starts (from the Bundle's next link)")
    parameters = [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": doc,
            "schema": {"type": "integer" if kind == "number" else "string"},
        }
        for name, (kind, doc) in docs.items()
    ]
    return {"parameters": parameters}


_FHIR_CONTENT = {FHIR_JSON: {"schema": {"type": "object"}}}
router = APIRouter(
    prefix="/fhir",
    tags=["FHIR R4"],
    dependencies=[Depends(get_caller)],
    default_response_class=FhirResponse,
    responses={
        400: {"description": "Invalid search (OperationOutcome)", "content": _FHIR_CONTENT},
        401: {"description": "Wrong credentials (OperationOutcome)", "content": _FHIR_CONTENT},
        429: {"description": "Too many anonymous requests", "content": _FHIR_CONTENT},
    },
)


# --- Parameters ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FhirSearch:
    """A parsed search: what to ask the directory, and how to filter its lines."""

    name: str = ""
    family: str = ""
    given: str = ""
    identifier: tuple[str | None, str] | None = None
    mailbox: str = ""
    mailbox_mode: Literal["prefix", "contains", "exact"] = "prefix"
    mailbox_type: MailboxKind | None = None
    matches_nothing: bool = False
    count: int | None = None
    offset: int = 0
    params: tuple[tuple[str, str], ...] = field(default=())

    @property
    def has_mailbox_terms(self) -> bool:
        return bool(self.mailbox) or self.mailbox_type is not None

    @property
    def has_terms(self) -> bool:
        return bool(self.name or self.family or self.given or self.identifier or self.mailbox)


def _bad(name: str, message: str) -> ApiError:
    return ApiError(400, "Invalid search", message, [FieldError(name, message)])


def _string(name: str, value: str) -> str:
    text = clean_text(name, value)
    if len(text) > _MAX_VALUE:
        raise _bad(name, f"{name} is longer than {_MAX_VALUE} characters")
    if "," in text:
        raise _bad(name, f"{name}: lists of values (OR) are not supported")
    return text


def _integer(name: str, value: str, maximum: int) -> int:
    text = value.strip()
    if not (text.isascii() and text.isdecimal()) or len(text) > 12 or int(text) > maximum:
        raise _bad(name, f"{name} must be an integer from 0 to {maximum}")
    return int(text)


def _token(name: str, value: str) -> tuple[str | None, str]:
    text = _string(name, value)
    system, bar, code = text.rpartition("|")
    if not bar:
        return None, text
    return system, code


def parse_search(
    resource: ResourceType, items: Sequence[tuple[str, str]], settings: WebSettings
) -> FhirSearch:
    """Check a search's query parameters (FHIR R4 §3.1.1); 400 naming the first at fault."""
    values: dict[str, str] = {}
    families: set[str] = set()
    allowed = _ALLOWED[resource]
    for name, value in items:
        clean_text("parameter name", name)
        if name not in allowed:
            raise _bad(name, f"{resource} has no search parameter {name!r}")
        family = "mailbox-mss" if name.startswith("mailbox-mss:") else name
        if family in families:
            raise _bad(name, f"{family} is given more than once")
        families.add(family)
        values[name] = value
    texts = {key: _string(key, values[key]) for key in ("name", "family", "given") if key in values}
    identifier = None
    if "identifier" in values:
        system, value = _token("identifier", values["identifier"])
        if not value:
            raise _bad("identifier", "identifier needs a value")
        identifier = (system or None, value)
        if any(n not in ("identifier", "_count", "_offset", "_format") for n in values):
            raise _bad("identifier", "identifier cannot be combined with other search parameters")
    mailbox = ""
    mode: Literal["prefix", "contains", "exact"] = "prefix"
    for key, key_mode in _MAILBOX_MODES.items():
        if key in values:
            mailbox = _string(key, values[key]).lower()
            mode = key_mode
            if not mailbox:
                raise _bad(key, f"{key} needs a value")
    mailbox_type = None
    matches_nothing = False
    if "mailbox-mss-type" in values:
        system, code = _token("mailbox-mss-type", values["mailbox-mss-type"])
        kinds = {kind.value: kind for kind in fhir.MAILBOX_TYPES}
        if code not in kinds:
            raise _bad("mailbox-mss-type", "mailbox-mss-type is one of ORG, APP, PER, CAB")
        mailbox_type = kinds[code]
        # A token with another system names another code: it matches nothing here.
        matches_nothing = system not in (None, "", fhir.TYPE_BAL_SYSTEM)
    count = _integer("_count", values["_count"], 10_000) if "_count" in values else None
    offset = (
        _integer("_offset", values["_offset"], settings.fhir_scan_limit)
        if "_offset" in values
        else 0
    )
    if "_format" in values and clean_text("_format", values["_format"]) not in _FORMATS:
        raise _bad("_format", "only JSON is served (_format=json)")
    search = FhirSearch(
        name=texts.get("name", ""),
        family=texts.get("family", ""),
        given=texts.get("given", ""),
        identifier=identifier,
        mailbox=mailbox,
        mailbox_mode=mode,
        mailbox_type=mailbox_type,
        matches_nothing=matches_nothing,
        count=count,
        offset=offset,
        params=tuple(items),
    )
    if not search.has_terms:
        raise _bad(
            "name",
            "a search needs a name, family, given, identifier or mailbox-mss: "
            "the directory is not listed in full",
        )
    return search


def _culprit(search: FhirSearch) -> str:
    """The parameter to name when the directory refuses the search's words."""
    for name, value in (("name", search.name), ("family", search.family)):
        if value:
            return name
    return "given" if search.given else "mailbox-mss"


# --- Reading the directory ----------------------------------------------------------------


class _Mailboxes:
    """``get_mailbox`` with a per-request memo, keeping only what the caller may see."""

    def __init__(self, directory: Directory, *, professional: bool) -> None:
        self._directory = directory
        self._professional = professional
        self._seen: dict[Address, MailboxEntry | None] = {}

    async def get(self, address: Address) -> MailboxEntry | None:
        if address not in self._seen:
            entry = await self._directory.get_mailbox(address)
            self._seen[address] = entry if visible(entry, professional=self._professional) else None
        return self._seen[address]

    async def many(self, addresses: Sequence[Address]) -> list[MailboxEntry]:
        entries = []
        for address in dict.fromkeys(addresses):
            entry = await self.get(address)
            if entry is not None:
                entries.append(entry)
        return entries


async def _scan(directory: Directory, query: SearchQuery, limit: int) -> tuple[list[Role], bool]:
    """The lines matching ``query``, best first, at most ``limit``; and whether more match."""
    roles: list[Role] = []
    cursor: str | None = None
    while True:
        page = await directory.search(dataclasses.replace(query, cursor=cursor))
        roles.extend(hit.role for hit in page.items)
        if page.next_cursor is None:
            return roles, not page.total_exact
        if len(roles) >= limit:
            return roles[:limit], True
        cursor = page.next_cursor


def _directory_query(resource: ResourceType, search: FhirSearch) -> SearchQuery:
    if resource == "Organization":
        return SearchQuery(
            organisation=search.name,
            mailbox=search.mailbox,
            kind=search.mailbox_type,
            limit=MAX_PAGE_SIZE,
        )
    return SearchQuery(
        text=search.name,
        name=search.family,
        given_name=search.given,
        mailbox=search.mailbox,
        kind=search.mailbox_type,
        limit=MAX_PAGE_SIZE,
    )


def _mailbox_matches(role: Role, search: FhirSearch) -> bool:
    address = str(role.mailbox)
    if search.mailbox_mode == "exact":
        return address == search.mailbox
    if search.mailbox_mode == "prefix":
        return address.startswith(search.mailbox)
    return search.mailbox in address


@dataclass
class _Group:
    """The matching lines of one resource, in rank order, and the entity when known."""

    key: str
    roles: list[Role] = field(default_factory=list)
    practitioner: Practitioner | None = None
    organisation: Organisation | None = None


def _group(resource: ResourceType, roles: Sequence[Role], search: FhirSearch) -> list[_Group]:
    groups: dict[str, _Group] = {}
    for role in roles:
        if search.mailbox and not _mailbox_matches(role, search):
            continue
        key: str | None
        if resource == "Organization":
            if search.has_mailbox_terms and role.kind not in _ORGANISATION_KINDS:
                continue
            key = None if role.organisation is None else role.organisation.national_id
        elif role.practitioner is None:
            continue
        elif resource == "Practitioner":
            key = role.practitioner.national_id
        else:
            key = f"{role.mailbox}\x00{role.line}"
        if key:
            groups.setdefault(key, _Group(key)).roles.append(role)
    return list(groups.values())


async def _practitioner_roles(
    directory: Directory, practitioner: Practitioner, limit: int
) -> list[Role]:
    """The live, visible lines naming ``practitioner`` (asked by name, then filtered)."""
    if not (practitioner.family_name or practitioner.given_name):
        return []
    query = SearchQuery(
        name=practitioner.family_name, given_name=practitioner.given_name, limit=MAX_PAGE_SIZE
    )
    try:
        roles, _ = await _scan(directory, query, limit)
    except InvalidQuery:
        return []
    return [
        r
        for r in roles
        if r.practitioner is not None and r.practitioner.national_id == practitioner.national_id
    ]


async def _organisation_roles(
    directory: Directory, organisation: Organisation, limit: int
) -> list[Role]:
    """The live, visible ORG lines of ``organisation`` (asked by name, then filtered)."""
    words = (organisation.name or organisation.trade_name).split()
    for count in (6, 2):
        if not words:
            return []
        query = SearchQuery(
            organisation=" ".join(w[:64] for w in words[:count]),
            kind=MailboxKind.ORG,
            limit=MAX_PAGE_SIZE,
        )
        try:
            roles, _ = await _scan(directory, query, limit)
        except InvalidQuery:
            continue
        return [
            r
            for r in roles
            if r.organisation is not None and r.organisation.national_id == organisation.national_id
        ]
    return []


def _kind_mailboxes(roles: Sequence[Role], kinds: frozenset[MailboxKind]) -> list[Address]:
    return [r.mailbox for r in roles if r.kind in kinds]


_PERSONAL = frozenset({MailboxKind.PER, MailboxKind.CAB})


async def _resource(
    resource: ResourceType,
    group: _Group,
    directory: Directory,
    mailboxes: _Mailboxes,
    *,
    professional: bool,
) -> dict[str, object] | None:
    if resource == "PractitionerRole":
        first = group.roles[0]
        entry = await mailboxes.get(first.mailbox)
        if entry is None:
            return None
        position = next((i for i, r in enumerate(entry.roles) if r == first), None)
        if position is None:
            return None
        return fhir.practitioner_role_resource(
            first, position, entry, show_responsible=professional
        )
    if resource == "Practitioner":
        practitioner = group.practitioner or await directory.get_practitioner(group.key)
        if practitioner is None:
            practitioner = next(r.practitioner for r in group.roles if r.practitioner)
        entries = await mailboxes.many(_kind_mailboxes(group.roles, _PERSONAL))
        return fhir.practitioner_resource(practitioner, entries, show_responsible=professional)
    organisation = group.organisation or await directory.get_organisation(group.key)
    if organisation is None:
        organisation = next(r.organisation for r in group.roles if r.organisation)
    entries = await mailboxes.many(_kind_mailboxes(group.roles, _ORGANISATION_KINDS))
    return fhir.organization_resource(organisation, entries, show_responsible=professional)


async def _identified(
    resource: ResourceType, search: FhirSearch, directory: Directory, limit: int
) -> list[_Group]:
    """The group of the resource ``identifier`` names (FHIR token semantics), if any."""
    assert search.identifier is not None  # noqa: S101 - only called with one
    system, value = search.identifier
    if resource == "Practitioner":
        prefixes = {None: "", fhir.IDNPS_SYSTEM: "", fhir.RPPS_SYSTEM: "8"}
        if system not in prefixes:
            return []
        practitioner = await directory.get_practitioner(prefixes[system] + value)
        if practitioner is None:
            return []
        roles = await _practitioner_roles(directory, practitioner, limit)
        return [_Group(practitioner.national_id, roles, practitioner=practitioner)]
    prefixes = {None: "", fhir.IDNST_SYSTEM: "", fhir.FINESS_SYSTEM: "1"}
    if system not in prefixes:
        return []
    organisation = await directory.get_organisation(prefixes[system] + value)
    if organisation is None:
        return []
    roles = await _organisation_roles(directory, organisation, limit)
    return [_Group(organisation.national_id, roles, organisation=organisation)]


# --- Routes -------------------------------------------------------------------------------


def _page_links(
    request: Request,
    settings: WebSettings,
    search: FhirSearch,
    count: int,
    more: bool,
) -> dict[str, str]:
    path = request.url.path
    base = [(k, v) for k, v in search.params if k not in ("_offset", "_count")]
    self_params = [*base, ("_count", str(count)), ("_offset", str(search.offset))]
    links = {"self": public_url(request, settings, path, urlencode(self_params))}
    if more:
        next_params = [*base, ("_count", str(count)), ("_offset", str(search.offset + count))]
        links["next"] = public_url(request, settings, path, urlencode(next_params))
    if search.offset > 0 and count > 0:
        previous = max(0, search.offset - count)
        previous_params = [*base, ("_count", str(count)), ("_offset", str(previous))]
        links["previous"] = public_url(request, settings, path, urlencode(previous_params))
    return links


async def _search(
    resource: ResourceType,
    request: Request,
    directory: Directory,
    settings: WebSettings,
    caller: CurrentCaller,
) -> FhirResponse:
    search = parse_search(resource, request.query_params.multi_items(), settings)
    cap = caller.page_cap(settings)
    count = cap if search.count is None else min(search.count, cap)
    limit = settings.fhir_scan_limit
    truncated = False
    groups: list[_Group] = []
    if search.matches_nothing:
        pass
    elif search.identifier is not None:
        groups = await _identified(resource, search, directory, limit)
    else:
        try:
            roles, truncated = await _scan(directory, _directory_query(resource, search), limit)
        except InvalidQuery as exc:
            raise _bad(_culprit(search), str(exc)) from None
        groups = _group(resource, roles, search)
    page = groups[search.offset : search.offset + count]
    mailboxes = _Mailboxes(directory, professional=caller.is_professional)
    entries: list[tuple[str, Mapping[str, object]]] = []
    for group in page:
        built = await _resource(
            resource, group, directory, mailboxes, professional=caller.is_professional
        )
        if built is not None:
            url = public_url(request, settings, f"/fhir/{resource}/{built['id']}")
            entries.append((url, built))
    more = count > 0 and search.offset + count < len(groups)
    outcome = None
    if truncated:
        outcome = outcome_resource(
            200,
            code="too-costly",
            detail=f"more than {limit} directory lines match: only the resources they name are "
            "listed, and total is omitted; narrow the search",
            severity="warning",
        )
    bundle = fhir.searchset(
        entries,
        total=None if truncated else len(groups),
        links=_page_links(request, settings, search, count, more),
        outcome=outcome,
    )
    return FhirResponse(bundle)


_ID = Annotated[str, Path(max_length=400, description="The resource id")]


def _not_found(resource: str, resource_id: str) -> ApiError:
    return ApiError(404, "Not found", f"{resource}/{resource_id} is not known")


@router.get("/metadata", summary="The CapabilityStatement", response_class=FhirResponse)
async def metadata(request: Request, settings: SettingsDep) -> FhirResponse:
    base = public_url(request, settings, "/fhir")
    return FhirResponse(fhir.capability_statement(base, request.app.version))


def _search_route(resource: ResourceType) -> Callable[..., Awaitable[FhirResponse]]:
    async def search_type(
        request: Request, directory: DirectoryDep, settings: SettingsDep, caller: CurrentCaller
    ) -> FhirResponse:
        return await _search(resource, request, directory, settings, caller)

    search_type.__name__ = f"search_{resource.lower()}"
    return search_type


_RESOURCE_TYPES: tuple[ResourceType, ...] = ("Practitioner", "PractitionerRole", "Organization")
for _resource_type in _RESOURCE_TYPES:
    router.add_api_route(
        f"/{_resource_type}",
        _search_route(_resource_type),
        methods=["GET"],
        summary=f"Search {_resource_type} (a searchset Bundle)",
        response_class=FhirResponse,
        responses={200: {"content": _FHIR_CONTENT}},
        openapi_extra=_openapi_parameters(_resource_type),
    )


@router.get(
    "/Practitioner/{resource_id}",
    summary="Read a Practitioner (id: the idNatPS)",
    responses={200: {"content": _FHIR_CONTENT}, 404: {"content": _FHIR_CONTENT}},
)
async def read_practitioner(
    resource_id: _ID, directory: DirectoryDep, settings: SettingsDep, caller: CurrentCaller
) -> FhirResponse:
    national_id = fhir.decode_id(resource_id)
    practitioner = None if national_id is None else await directory.get_practitioner(national_id)
    if practitioner is None:
        raise _not_found("Practitioner", resource_id)
    roles = await _practitioner_roles(directory, practitioner, settings.fhir_scan_limit)
    mailboxes = _Mailboxes(directory, professional=caller.is_professional)
    entries = await mailboxes.many(_kind_mailboxes(roles, _PERSONAL))
    return FhirResponse(
        fhir.practitioner_resource(practitioner, entries, show_responsible=caller.is_professional)
    )


@router.get(
    "/Organization/{resource_id}",
    summary="Read an Organization (id: the national structure id)",
    responses={200: {"content": _FHIR_CONTENT}, 404: {"content": _FHIR_CONTENT}},
)
async def read_organization(
    resource_id: _ID, directory: DirectoryDep, settings: SettingsDep, caller: CurrentCaller
) -> FhirResponse:
    national_id = fhir.decode_id(resource_id)
    organisation = None if national_id is None else await directory.get_organisation(national_id)
    if organisation is None:
        raise _not_found("Organization", resource_id)
    roles = await _organisation_roles(directory, organisation, settings.fhir_scan_limit)
    mailboxes = _Mailboxes(directory, professional=caller.is_professional)
    entries = await mailboxes.many(_kind_mailboxes(roles, _ORGANISATION_KINDS))
    return FhirResponse(
        fhir.organization_resource(organisation, entries, show_responsible=caller.is_professional)
    )


@router.get(
    "/PractitionerRole/{resource_id}",
    summary="Read a PractitionerRole (id: the mailbox address, escaped)",
    responses={200: {"content": _FHIR_CONTENT}, 404: {"content": _FHIR_CONTENT}},
)
async def read_practitioner_role(
    resource_id: _ID, directory: DirectoryDep, caller: CurrentCaller
) -> FhirResponse:
    parsed = fhir.parse_role_id(resource_id)
    entry = None
    if parsed is not None:
        try:
            address = Address.parse(parsed[0])
        except InvalidAddress:
            address = None
        if address is not None and str(address) == parsed[0]:
            mailboxes = _Mailboxes(directory, professional=caller.is_professional)
            entry = await mailboxes.get(address)
    if entry is None or parsed is None or parsed[1] >= len(entry.roles):
        raise _not_found("PractitionerRole", resource_id)
    role = entry.roles[parsed[1]]
    if role.practitioner is None:
        raise _not_found("PractitionerRole", resource_id)
    return FhirResponse(
        fhir.practitioner_role_resource(
            role, parsed[1], entry, show_responsible=caller.is_professional
        )
    )

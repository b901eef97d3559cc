"""``InMemoryDirectory``: the reference implementation of the directory port, in dicts.

It follows the same rules as the SQL directory — the same reader, the same line identity
(address, occurrence), the same retirement, consolidation, search documents and ranking
rules — and passes the same contract tests; other packages use it in their own tests. An
import builds the new state aside and swaps it in at the end, so a bad line changes
nothing. It holds everything in memory, so it is no place for the 535,000-line file.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from directory.extraction import HEADER, ExtractionRow, format_row, read_extraction
from directory.model import (
    ORGANISATION_FIELDS,
    ORGANISATION_ID,
    PRACTITIONER_FIELDS,
    PRACTITIONER_ID,
    fingerprint,
    organisation_from,
    pick,
    practitioner_from,
    role_from,
)
from directory.search import compile_query, document, tier
from messaging.clock import SystemClock
from messaging.directory import (
    Application,
    ExtractionError,
    ImportProgress,
    ImportReport,
    MailboxEntry,
    MailboxTypeChanged,
    Organisation,
    Patient,
    Practitioner,
    Role,
    SearchHit,
    SearchPage,
    SearchQuery,
)
from messaging.errors import AccountExists, UnknownMailbox
from messaging.ins import Ins
from messaging.ports import Clock
from messaging.types import Address, MailboxKind

__all__ = ["InMemoryDirectory"]


@dataclass
class _Mailbox:
    entry: MailboxEntry  # without roles
    origin: str


@dataclass
class _Role:
    id: int
    address: Address
    kind: MailboxKind
    values: tuple[str, ...]
    ordinal: int
    row_hash: int
    retired_at: datetime | None = None


@dataclass
class _State:
    mailboxes: dict[Address, _Mailbox] = field(default_factory=dict)
    roles: dict[tuple[Address, int], _Role] = field(default_factory=dict)
    practitioners: dict[str, Practitioner] = field(default_factory=dict)
    organisations: dict[str, Organisation] = field(default_factory=dict)
    patients: dict[Address, Patient] = field(default_factory=dict)
    applications: dict[Address, Application] = field(default_factory=dict)
    next_role_id: int = 1


class InMemoryDirectory:
    """The :class:`~messaging.directory.Directory` in memory."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()
        self._state = _State()

    async def close(self) -> None:
        return None

    # -- extraction ----------------------------------------------------------------------

    async def import_extraction(
        self,
        lines: Iterable[bytes],
        *,
        progress: Callable[[ImportProgress], None] | None = None,
    ) -> ImportReport:
        now = self._clock.now()
        rows: list[ExtractionRow] = []
        bytes_read = 0
        for row in read_extraction(lines):
            rows.append(row)
            bytes_read += len(row.raw) + 1
            if progress and len(rows) % 5000 == 0:
                progress(ImportProgress("reading", len(rows), bytes_read))
        if progress:
            progress(ImportProgress("merging", len(rows), bytes_read))
        state = copy.deepcopy(self._state)
        occurrences = self._number(rows)
        self._check_kinds(state, rows, occurrences)
        added = updated = 0
        seen: set[tuple[Address, int]] = set()
        for row, occurrence in zip(rows, occurrences, strict=True):
            key = (row.address, occurrence)
            seen.add(key)
            mailbox = state.mailboxes.get(row.address)
            if mailbox is None:
                state.mailboxes[row.address] = _Mailbox(
                    MailboxEntry(row.address, row.kind, service=row.values[7]), "extraction"
                )
            elif mailbox.origin == "extraction" and occurrence == 0:
                mailbox.entry = replace(mailbox.entry, service=row.values[7], retired_at=None)
            role = state.roles.get(key)
            row_hash = fingerprint(row.raw)
            if role is None:
                state.roles[key] = _Role(
                    state.next_role_id, row.address, row.kind, row.values, row.line, row_hash
                )
                state.next_role_id += 1
                added += 1
            else:
                if role.row_hash != row_hash or role.retired_at is not None:
                    updated += 1
                role.values, role.ordinal, role.row_hash = row.values, row.line, row_hash
                role.retired_at = None
            if row.values[PRACTITIONER_ID]:
                practitioner = practitioner_from(pick(row.values, PRACTITIONER_FIELDS))
                state.practitioners[practitioner.national_id] = practitioner
            if row.values[ORGANISATION_ID]:
                organisation = organisation_from(pick(row.values, ORGANISATION_FIELDS))
                state.organisations[organisation.national_id] = organisation
        retired = 0
        for key, role in state.roles.items():
            if key not in seen and role.retired_at is None:
                role.retired_at = now
                retired += 1
        named = {row.address for row in rows}
        for address, mailbox in state.mailboxes.items():
            if (
                mailbox.origin == "extraction"
                and address not in named
                and mailbox.entry.retired_at is None
            ):
                mailbox.entry = replace(mailbox.entry, retired_at=now)
        self._state = state
        if progress:
            progress(ImportProgress("done", len(rows), bytes_read))
        return ImportReport(
            rows=len(rows),
            added=added,
            updated=updated,
            unchanged=len(rows) - added - updated,
            retired=retired,
            duplicates=sum(1 for n in occurrences if n == 1),
        )

    @staticmethod
    def _number(rows: list[ExtractionRow]) -> list[int]:
        counts: dict[Address, int] = {}
        numbers = []
        for row in rows:
            numbers.append(counts.get(row.address, 0))
            counts[row.address] = numbers[-1] + 1
        return numbers

    @staticmethod
    def _check_kinds(state: _State, rows: list[ExtractionRow], occurrences: list[int]) -> None:
        first: dict[Address, ExtractionRow] = {}
        for row, occurrence in zip(rows, occurrences, strict=True):
            known = state.mailboxes.get(row.address)
            if known is not None and known.entry.kind is not row.kind:
                raise ExtractionError(
                    row.line,
                    1,
                    "Type de BAL",
                    f"{row.address} is a {known.entry.kind} mailbox and cannot become "
                    f"{row.kind}: a mailbox's type never changes",
                )
            if occurrence == 0:
                first[row.address] = row
            elif first[row.address].kind is not row.kind:
                earlier = first[row.address]
                raise ExtractionError(
                    row.line,
                    1,
                    "Type de BAL",
                    f"{row.address} is {earlier.kind} on line {earlier.line} and cannot be "
                    f"{row.kind} here: a mailbox's type never changes",
                )

    def _visible_roles(self) -> list[_Role]:
        state = self._state
        return sorted(
            (
                role
                for role in state.roles.values()
                if role.retired_at is None and not state.mailboxes[role.address].entry.liste_rouge
            ),
            key=lambda role: role.id,
        )

    async def export_extraction(self) -> AsyncIterator[bytes]:
        yield HEADER
        for role in sorted(self._visible_roles(), key=lambda r: (r.ordinal, r.id)):
            yield format_row(role.values)

    # -- mailboxes -----------------------------------------------------------------------

    @staticmethod
    def _role(role: _Role) -> Role:
        return role_from(role.values, role.address, role.kind, role.ordinal)

    async def get_mailbox(self, address: Address) -> MailboxEntry | None:
        mailbox = self._state.mailboxes.get(address)
        if mailbox is None:
            return None
        roles = sorted(
            (
                r
                for r in self._state.roles.values()
                if r.address == address and r.retired_at is None
            ),
            key=lambda r: r.ordinal,
        )
        return replace(mailbox.entry, roles=tuple(self._role(r) for r in roles))

    def _create(self, entry: MailboxEntry) -> None:
        if entry.address in self._state.mailboxes:
            raise AccountExists(f"{entry.address} is already in the directory")
        self._state.mailboxes[entry.address] = _Mailbox(
            replace(entry, roles=(), retired_at=None), "local"
        )

    async def add_mailbox(self, entry: MailboxEntry) -> None:
        if entry.kind not in (MailboxKind.PER, MailboxKind.ORG, MailboxKind.CAB):
            raise ValueError(f"{entry.kind} mailboxes are added with add_patient/add_application")
        self._create(entry)

    async def update_mailbox(self, entry: MailboxEntry) -> MailboxEntry:
        mailbox = self._state.mailboxes.get(entry.address)
        if mailbox is None:
            raise UnknownMailbox(f"{entry.address} is not in the directory")
        if mailbox.entry.kind is not entry.kind:
            raise MailboxTypeChanged(
                f"{entry.address} is a {mailbox.entry.kind} mailbox; its type never changes"
            )
        mailbox.entry = replace(
            mailbox.entry,
            liste_rouge=entry.liste_rouge,
            service=entry.service,
            description=entry.description,
            responsible=entry.responsible,
            preferred_rank=entry.preferred_rank,
        )
        stored = await self.get_mailbox(entry.address)
        assert stored is not None  # noqa: S101 - just written
        return stored

    async def get_practitioner(self, national_id: str) -> Practitioner | None:
        return self._state.practitioners.get(national_id)

    async def get_organisation(self, national_id: str) -> Organisation | None:
        return self._state.organisations.get(national_id)

    # -- search --------------------------------------------------------------------------

    async def search(self, query: SearchQuery) -> SearchPage:
        compiled = compile_query(query)
        hits: list[tuple[int, int, _Role]] = []
        for role in self._visible_roles():
            if compiled.mailbox and compiled.mailbox not in str(role.address):
                continue
            level = tier(document(role.values, role.kind), compiled)
            if level is not None:
                hits.append((level, role.id, role))
        hits.sort(key=lambda hit: hit[:2])
        page = hits[compiled.offset : compiled.window]
        items = tuple(SearchHit(self._role(role), level) for level, _, role in page)
        return SearchPage.cut(items, len(hits), compiled.offset)

    # -- patients ------------------------------------------------------------------------

    async def add_patient(self, patient: Patient) -> None:
        if any(p.identity.ins == patient.identity.ins for p in self._state.patients.values()):
            raise AccountExists(f"INS {patient.identity.ins} already has a patient mailbox")
        self._create(MailboxEntry(patient.address, MailboxKind.PAT))
        self._state.patients[patient.address] = patient

    async def get_patient(self, address: Address) -> Patient | None:
        return self._state.patients.get(address)

    async def find_patient(self, ins: Ins) -> Patient | None:
        return next((p for p in self._state.patients.values() if p.identity.ins == ins), None)

    async def update_patient(self, patient: Patient) -> None:
        stored = await self.find_patient(patient.identity.ins)
        if stored is None:
            raise UnknownMailbox(f"{patient.address} is not a patient of the directory")
        self._state.patients[stored.address] = replace(
            stored, minor=patient.minor, treating_doctor=patient.treating_doctor
        )

    # -- applications --------------------------------------------------------------------

    async def add_application(self, application: Application) -> None:
        self._create(
            MailboxEntry(application.address, MailboxKind.APP, description=application.description)
        )
        self._state.applications[application.address] = application

    async def get_application(self, address: Address) -> Application | None:
        return self._state.applications.get(address)

    async def update_application(self, application: Application) -> None:
        if application.address not in self._state.applications:
            raise UnknownMailbox(f"{application.address} is not an application")
        self._state.applications[application.address] = application
        mailbox = self._state.mailboxes[application.address]
        mailbox.entry = replace(mailbox.entry, description=application.description)

    async def list_applications(self, *, referenced_only: bool = True) -> list[Application]:
        return sorted(
            (a for a in self._state.applications.values() if a.referenced or not referenced_only),
            key=lambda a: (a.name, str(a.address)),
        )

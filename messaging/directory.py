"""The directory port: professionals, organisations, patients, applications and their mailboxes.

Adapters (the ``pli directory`` commands, the web and FHIR faces, the delivery rules) talk to
:class:`Directory` only; ``directory/`` implements it over SQL (``SqlDirectory``) and in
memory (``InMemoryDirectory``), and both pass the same contract tests.

The model, as the national "Extraction Correspondance MSSanté" file draws it (DOMAIN.md,
"Directory exchange formats"):

- a **mailbox** (:class:`MailboxEntry`) has an address and a type that never change, a
  *liste rouge* flag that keeps it out of every directory output (search, export), and a few
  descriptive fields;
- each line of the extraction is a **role** (:class:`Role`, FHIR's ``PractitionerRole``): a
  mailbox held by a practitioner at an organisation, with the profession and specialty
  *as that line states them*. A mailbox usually has one role; the few addresses that repeat
  in the national file are one mailbox with several roles;
- a **practitioner** (:class:`Practitioner`) and an **organisation** (:class:`Organisation`)
  are consolidated from the roles that name them, the last line of the file winning.

Patients (:class:`Patient`, PAT mailboxes built from a qualified INS identity) and
applications (:class:`Application`, APP mailboxes of software with a *référencé* status) are
added through the API, never through the extraction.

Errors: :class:`ExtractionError` (a bad import file, with its line and column),
:class:`InvalidQuery`, :class:`MailboxTypeChanged`; ``AccountExists`` and ``UnknownMailbox``
from :mod:`messaging.errors` for taken and unknown addresses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from messaging.errors import PliError
from messaging.ins import Ins, InvalidINS, QualifiedIdentity, ins_of, patient_address
from messaging.types import Address, MailboxKind

__all__ = [
    "COUNT_LIMIT",
    "MAX_PAGE_SIZE",
    "Application",
    "Code",
    "cursor_at",
    "Directory",
    "ExtractionError",
    "ImportProgress",
    "ImportReport",
    "InvalidQuery",
    "MailboxEntry",
    "MailboxTypeChanged",
    "Organisation",
    "Patient",
    "PostalAddress",
    "Practitioner",
    "Role",
    "SearchHit",
    "SearchPage",
    "SearchQuery",
]

MAX_PAGE_SIZE = 100
"""The largest page a search returns, whatever the caller asks: the directory is read a page
at a time, never scraped in one call."""
COUNT_LIMIT = 1000
"""Searches count their matches, and page through them, up to this many."""


class ExtractionError(PliError, ValueError):
    """A line of an extraction file that cannot be imported; nothing of the file was applied.

    ``line`` counts from 1 (the header); ``column`` counts the ``|``-separated fields from 1;
    ``name`` is the header's name of that column (``None`` past the 31st).
    """

    def __init__(self, line: int, column: int, name: str | None, reason: str) -> None:
        where = f"line {line}, column {column}" + (f" ({name})" if name else "")
        super().__init__(f"{where}: {reason}")
        self.line = line
        self.column = column
        self.name = name
        self.reason = reason


class InvalidQuery(PliError, ValueError):
    """A search that cannot be run: no term, a page size out of range, a foreign cursor."""


class MailboxTypeChanged(PliError, ValueError):
    """An attempt to change a mailbox's type, which never changes once created."""


@dataclass(frozen=True, slots=True)
class Code:
    """A coded value of the national nomenclatures with its label (empty when absent)."""

    code: str = ""
    label: str = ""


@dataclass(frozen=True, slots=True)
class Practitioner:
    """A health professional, identified by ``idNatPS`` (``8``+RPPS or ``0``+ADELI).

    ``id_type`` is the file's *Type Identifiant PP* (``8`` RPPS, ``0`` ADELI) and
    ``identifier`` the RPPS or ADELI number itself.
    """

    national_id: str
    id_type: str = ""
    identifier: str = ""
    civility: str = ""
    family_name: str = ""
    given_name: str = ""
    category: Code = Code()
    profession: Code = Code()
    specialty: Code = Code()

    @property
    def rpps(self) -> str | None:
        return self.identifier if self.id_type == "8" else None

    @property
    def adeli(self) -> str | None:
        return self.identifier if self.id_type == "0" else None

    @property
    def display_name(self) -> str:
        return " ".join(p for p in (self.civility, self.given_name, self.family_name) if p)


@dataclass(frozen=True, slots=True)
class PostalAddress:
    """A structure's postal address, in the AFNOR lines of the national file."""

    complement_location: str = ""
    """L2: building, floor, residence."""
    complement_distribution: str = ""
    """L3: BP, CS, TSA."""
    street_number: str = ""
    street_number_suffix: str = ""
    street_type: str = ""
    """A street type code (``R``, ``AV``, ``BD``…)."""
    street_name: str = ""
    locality: str = ""
    """L5: lieu-dit or mention."""
    routing_line: str = ""
    """L6: postcode and city, as La Poste routes (``75014 PARIS``, ``35033 RENNES CEDEX 9``)."""
    postcode: str = ""
    department: str = ""
    country: str = ""

    @property
    def city(self) -> str:
        """The routing line without its leading postcode."""
        head, _, rest = self.routing_line.partition(" ")
        return rest if rest and head.isdecimal() else self.routing_line


@dataclass(frozen=True, slots=True)
class Organisation:
    """A structure (establishment, practice, pharmacy…) by its national structure id.

    ``id_type`` is the file's *Type identifiant structure* (``1`` FINESS, ``2`` SIREN,
    ``3`` SIRET, ``4`` RPPS rang); ``national_id`` is *Identification Structure*, the type
    digit followed by the identifier.
    """

    national_id: str
    id_type: str = ""
    name: str = ""
    trade_name: str = ""
    address: PostalAddress = PostalAddress()

    @property
    def finess(self) -> str | None:
        """The FINESS number (system ``https://finess.esante.gouv.fr``), for type 1."""
        if self.id_type == "1" and self.national_id.startswith("1"):
            return self.national_id[1:]
        return None


@dataclass(frozen=True, slots=True)
class Role:
    """One line of the extraction: a mailbox held by a practitioner at an organisation.

    ``practitioner`` and ``organisation`` are as *this line* states them. ``line`` is the
    line number in the file last imported, which is also the export order.
    """

    mailbox: Address
    kind: MailboxKind
    practitioner: Practitioner | None
    organisation: Organisation | None
    service: str = ""
    dematerialised: bool = True
    line: int = 0

    @property
    def display_name(self) -> str:
        if self.practitioner is not None and self.practitioner.display_name:
            return self.practitioner.display_name
        if self.organisation is not None:
            return self.organisation.trade_name or self.organisation.name
        return str(self.mailbox)


@dataclass(frozen=True, slots=True)
class MailboxEntry:
    """A mailbox of the directory. Address and kind never change.

    ``responsible`` is not public: adapters show it to authenticated professionals only.
    ``preferred_rank`` orders a professional's mailboxes (1 is the preferred one).
    ``roles`` lists the live lines of the extraction that name this mailbox, in file order.
    """

    address: Address
    kind: MailboxKind
    liste_rouge: bool = False
    service: str = ""
    description: str = ""
    responsible: str = ""
    preferred_rank: int | None = None
    retired_at: datetime | None = None
    roles: tuple[Role, ...] = ()

    @property
    def retired(self) -> bool:
        return self.retired_at is not None


@dataclass(frozen=True, slots=True)
class Patient:
    """A patient mailbox (PAT): its qualified identity, minority and médecin traitant."""

    identity: QualifiedIdentity
    address: Address
    minor: bool = False
    treating_doctor: Address | None = None

    @classmethod
    def create(
        cls,
        identity: QualifiedIdentity,
        domain: str,
        *,
        minor: bool = False,
        treating_doctor: Address | None = None,
    ) -> Patient:
        """The patient whose address is ``<INS>@patient.<domain>``."""
        return cls(identity, patient_address(identity, domain), minor, treating_doctor)

    def __post_init__(self) -> None:
        if ins_of(self.address) != self.identity.ins:
            raise InvalidINS(f"{self.address} is not the address of INS {self.identity.ins}")


@dataclass(frozen=True, slots=True)
class Application:
    """An APP mailbox: software of an organisation, listed to patients once *référencé*."""

    address: Address
    name: str
    category: str = ""
    description: str = ""
    referenced: bool = False
    organisation_id: str = ""


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A directory search, as the user types it.

    Every word is matched as the prefix of a word, ignoring case and accents (``hel`` finds
    Hélène, ``n'dia`` and ``ndia`` find N'DIAYE); all words must match. ``text`` is matched
    against every field; the other fields restrict their words to one field (``street`` is
    the postal address). Words of one character are ignored next to longer ones and refused
    alone. ``mailbox`` is a substring of the address (a scan, not an index). ``cursor`` is
    the ``next_cursor`` of the previous page.
    """

    text: str = ""
    name: str = ""
    given_name: str = ""
    profession: str = ""
    specialty: str = ""
    organisation: str = ""
    city: str = ""
    postcode: str = ""
    street: str = ""
    mailbox: str = ""
    kind: MailboxKind | None = None
    limit: int = 20
    cursor: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_PAGE_SIZE:
            raise InvalidQuery(f"page size {self.limit} is out of range 1..{MAX_PAGE_SIZE}")

    @property
    def offset(self) -> int:
        """Where this page starts, read from the cursor."""
        if self.cursor is None:
            return 0
        if not (self.cursor.startswith("o") and self.cursor[1:].isdecimal()):
            raise InvalidQuery(f"cursor {self.cursor!r} does not come from this directory")
        offset = int(self.cursor[1:])
        if offset >= COUNT_LIMIT:
            raise InvalidQuery(f"a search shows its first {COUNT_LIMIT} matches: refine it")
        return offset


def cursor_at(offset: int) -> str:
    """The cursor of the page starting at ``offset``, for implementations (format private)."""
    return f"o{offset}"


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One matching role and how well it matched: ``tier`` 1 when a word of the free text
    starts the family name, 2 when one starts the given name or the organisation, 3 when
    the words matched elsewhere only (and 1 for searches without free text). Hits come by
    tier, then in directory order."""

    role: Role
    tier: int

    @property
    def address(self) -> Address:
        return self.role.mailbox


@dataclass(frozen=True, slots=True)
class SearchPage:
    """A page of hits, best first.

    ``total`` counts the matches up to :data:`COUNT_LIMIT`; ``total_exact`` is false when
    there are that many or more (show "1000+"). Pages reach the first :data:`COUNT_LIMIT`
    matches only: past that, a search must be refined.
    """

    items: tuple[SearchHit, ...]
    total: int
    total_exact: bool
    next_cursor: str | None

    @classmethod
    def cut(cls, items: tuple[SearchHit, ...], matches: int, offset: int) -> SearchPage:
        """The page of ``items`` starting at ``offset`` among ``matches`` (already capped or
        not: the cap is applied here)."""
        total = min(matches, COUNT_LIMIT)
        end = offset + len(items)
        return cls(items, total, matches < COUNT_LIMIT, cursor_at(end) if end < total else None)


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import changed, counted in lines of the file (roles).

    ``duplicates`` counts the addresses that appear on more than one line.
    """

    rows: int
    added: int
    updated: int
    unchanged: int
    retired: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class ImportProgress:
    """Progress of an import: ``phase`` is ``"reading"`` while lines stream in, then
    ``"merging"`` and ``"indexing"``; ``bytes_read`` lets a caller draw a bar."""

    phase: str
    lines: int
    bytes_read: int


class Directory(Protocol):
    """The directory as every adapter sees it. Every write is one transaction."""

    async def import_extraction(
        self,
        lines: Iterable[bytes],
        *,
        progress: Callable[[ImportProgress], None] | None = None,
    ) -> ImportReport:
        """Apply a whole extraction file (binary lines, e.g. a file opened ``rb``), or none.

        Lines already known and unchanged cost little; changed ones are updated; live
        lines missing from the file are retired (never deleted), and so are the mailboxes
        the extraction had created that no line names any more. Raises
        :class:`ExtractionError` at the first problem, with the directory unchanged.
        """
        ...

    def export_extraction(self) -> AsyncIterator[bytes]:
        """The live roles as an extraction file (header first), in file order, streamed;
        liste rouge mailboxes left out. Byte for byte what was imported, less those."""
        ...

    async def get_mailbox(self, address: Address) -> MailboxEntry | None:
        """Any mailbox, liste rouge and retired ones included (delivery needs to know)."""
        ...

    async def add_mailbox(self, entry: MailboxEntry) -> None:
        """Create a PER, ORG or CAB mailbox outside the extraction (imports never retire
        it). Raises ``AccountExists`` when the address is taken."""
        ...

    async def update_mailbox(self, entry: MailboxEntry) -> MailboxEntry:
        """Save the liste rouge flag, service, description, responsible and preferred rank.

        Raises ``UnknownMailbox``, or :class:`MailboxTypeChanged` when ``entry.kind``
        differs. Returns the stored entry.
        """
        ...

    async def get_practitioner(self, national_id: str) -> Practitioner | None: ...

    async def get_organisation(self, national_id: str) -> Organisation | None: ...

    async def search(self, query: SearchQuery) -> SearchPage:
        """Ranked, paginated prefix search over live roles; liste rouge never shows."""
        ...

    async def add_patient(self, patient: Patient) -> None:
        """Create the PAT mailbox and the patient. ``AccountExists`` if the address or the
        INS is taken."""
        ...

    async def get_patient(self, address: Address) -> Patient | None: ...

    async def find_patient(self, ins: Ins) -> Patient | None: ...

    async def update_patient(self, patient: Patient) -> None:
        """Save minority and médecin traitant; the identity never changes here.
        ``UnknownMailbox`` when there is no such patient."""
        ...

    async def add_application(self, application: Application) -> None:
        """Create the APP mailbox and its catalogue entry. ``AccountExists`` if taken."""
        ...

    async def get_application(self, address: Address) -> Application | None: ...

    async def update_application(self, application: Application) -> None:
        """Save name, category, description, référencé status. ``UnknownMailbox``."""
        ...

    async def list_applications(self, *, referenced_only: bool = True) -> list[Application]:
        """Applications by name; only *référencées* ones unless asked otherwise."""
        ...

    async def close(self) -> None: ...

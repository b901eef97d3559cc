"""``SqlDirectory``: the directory over SQLite (embedded default) or PostgreSQL.

``await SqlDirectory.open(url)`` migrates the schema and returns a ready directory. Imports
are delegated to :mod:`directory.importer`; search SQL follows :mod:`directory.search`.
Every write is one transaction; reads never hold one open longer than a statement, except
an export, which streams its rows from a single consistent read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Final

from sqlalchemy import ColumnElement, Row, Select, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from crypto.keys import SigningKey
from directory import importer
from directory.extraction import HEADER, format_row
from directory.keys import TransparentKeyDirectory
from directory.model import (
    ORGANISATION_COLUMNS,
    PRACTITIONER_COLUMNS,
    ROLE_COLUMNS,
    organisation_from,
    practitioner_from,
    role_from,
)
from directory.reads import SqliteReads
from directory.schema import create_engine, upgrade
from directory.search import compile_query
from directory.sql_search import ROLE_SELECT, pg_search, sqlite_search
from directory.tables import (
    ApplicationRow,
    MailboxRow,
    OrganisationRow,
    PatientRow,
    PractitionerRow,
)
from directory.transparency import SqlLogStorage, TransparencyLog
from messaging.clock import SystemClock
from messaging.directory import (
    Application,
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
from messaging.ins import Ins, QualifiedIdentity, Sex
from messaging.ports import Clock
from messaging.types import Address, MailboxKind

__all__ = ["SqlDirectory"]

_EXPORT: Final = f"""
    SELECT m.kind, {", ".join(f"r.{c}" for c in ROLE_COLUMNS)}
    FROM dir_roles r JOIN dir_mailboxes m ON m.id = r.mailbox_id
    WHERE r.retired_at IS NULL AND NOT m.liste_rouge
    ORDER BY r.ordinal, r.id
"""  # noqa: S608
_DEMATERIALISED: Final = ROLE_COLUMNS.index("dematerialised") + 1


def _address(stored: str) -> Address:
    # Stored addresses went through Address.parse already.
    local, _, domain = stored.rpartition("@")
    return Address(local, domain)


def _fields(kind: str, stored: Sequence[Any]) -> list[str]:
    """The 31 fields of a line from the kind and the stored ``ROLE_COLUMNS``."""
    values = [kind, *("" if v is None else v for v in stored)]
    values[_DEMATERIALISED] = "True" if stored[_DEMATERIALISED - 1] else "False"
    return values


def _role(row: Sequence[Any]) -> Role:
    """A role from a row of ``ROLE_SELECT``."""
    address, kind, ordinal, *stored = row
    mailbox_kind = MailboxKind(kind)
    return role_from(_fields(kind, stored), _address(address), mailbox_kind, ordinal)


class SqlDirectory:
    """The :class:`~messaging.directory.Directory` over SQLAlchemy (SQLite or PostgreSQL)."""

    def __init__(self, engine: AsyncEngine, clock: Clock | None = None) -> None:
        self._engine = engine
        self._clock = clock or SystemClock()
        self._dialect = engine.dialect.name
        self._reads: SqliteReads | None = None
        if self._dialect == "sqlite":
            database = engine.url.database
            if not database or database == ":memory:":
                raise ValueError("the SQLite directory lives in a file: sqlite+aiosqlite:///PATH")
            # Searches read through connections of their own (see reads.py).
            self._reads = SqliteReads(Path(database))

    @classmethod
    async def open(cls, url: str, *, clock: Clock | None = None) -> SqlDirectory:
        """Connect to ``url`` (``sqlite+aiosqlite:///…``, ``postgresql+asyncpg://…`` or
        their plain forms), migrate the schema, and return the directory."""
        engine = create_engine(url)
        try:
            directory = cls(engine, clock)
            await upgrade(engine)
        except BaseException:
            await engine.dispose()
            raise
        return directory

    async def close(self) -> None:
        if self._reads is not None:
            self._reads.close()
        await self._engine.dispose()

    def key_log(self, key: SigningKey, *, log_id: str) -> TransparentKeyDirectory:
        """The key-transparency log kept in this directory's database, signed with ``key``."""
        log = TransparencyLog(SqlLogStorage(self._engine), key, log_id=log_id, clock=self._clock)
        return TransparentKeyDirectory(log, clock=self._clock)

    # -- extraction ----------------------------------------------------------------------

    async def import_extraction(
        self,
        lines: Iterable[bytes],
        *,
        progress: Callable[[ImportProgress], None] | None = None,
    ) -> ImportReport:
        return await importer.import_extraction(self._engine, lines, self._clock.now(), progress)

    async def export_extraction(self) -> AsyncIterator[bytes]:
        async with self._engine.connect() as conn:
            result = await conn.stream(text(_EXPORT))
            yield HEADER
            async for partition in result.partitions(2000):
                yield b"".join(format_row(_fields(row[0], row[1:])) for row in partition)

    # -- mailboxes -----------------------------------------------------------------------

    async def get_mailbox(self, address: Address) -> MailboxEntry | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(MailboxRow).where(MailboxRow.address == str(address)))
            ).first()
            if row is None:
                return None
            roles = (
                await conn.execute(
                    text(
                        f"SELECT {ROLE_SELECT} FROM dir_roles r "  # noqa: S608
                        "JOIN dir_mailboxes m ON m.id = r.mailbox_id "
                        "WHERE r.mailbox_id = :id AND r.retired_at IS NULL ORDER BY r.ordinal"
                    ),
                    {"id": row.id},
                )
            ).all()
        return MailboxEntry(
            address=address,
            kind=MailboxKind(row.kind),
            liste_rouge=bool(row.liste_rouge),
            service=row.service,
            description=row.description,
            responsible=row.responsible,
            preferred_rank=row.preferred_rank,
            retired_at=row.retired_at,
            roles=tuple(_role(r) for r in roles),
        )

    async def _create_mailbox(self, conn: AsyncConnection, entry: MailboxEntry) -> int:
        """Insert a local mailbox; its id. ``AccountExists`` when the address is taken."""
        try:
            async with conn.begin_nested():
                result = await conn.execute(
                    insert(MailboxRow)
                    .values(
                        address=str(entry.address),
                        kind=entry.kind.value,
                        origin="local",
                        liste_rouge=entry.liste_rouge,
                        service=entry.service,
                        description=entry.description,
                        responsible=entry.responsible,
                        preferred_rank=entry.preferred_rank,
                        created_at=self._clock.now(),
                    )
                    .returning(MailboxRow.id)
                )
        except IntegrityError:
            raise AccountExists(f"{entry.address} is already in the directory") from None
        return int(result.scalar_one())

    async def add_mailbox(self, entry: MailboxEntry) -> None:
        if entry.kind not in (MailboxKind.PER, MailboxKind.ORG, MailboxKind.CAB):
            raise ValueError(f"{entry.kind} mailboxes are added with add_patient/add_application")
        async with self._engine.begin() as conn:
            await self._create_mailbox(conn, entry)

    async def update_mailbox(self, entry: MailboxEntry) -> MailboxEntry:
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    select(MailboxRow.id, MailboxRow.kind, MailboxRow.liste_rouge).where(
                        MailboxRow.address == str(entry.address)
                    )
                )
            ).first()
            if row is None:
                raise UnknownMailbox(f"{entry.address} is not in the directory")
            if row.kind != entry.kind.value:
                raise MailboxTypeChanged(
                    f"{entry.address} is a {row.kind} mailbox; its type never changes"
                )
            await conn.execute(
                update(MailboxRow)
                .where(MailboxRow.id == row.id)
                .values(
                    liste_rouge=entry.liste_rouge,
                    service=entry.service,
                    description=entry.description,
                    responsible=entry.responsible,
                    preferred_rank=entry.preferred_rank,
                )
            )
            if bool(row.liste_rouge) != entry.liste_rouge:
                await importer.sync_mailbox_search(conn, self._dialect, row.id)
        stored = await self.get_mailbox(entry.address)
        assert stored is not None  # noqa: S101 - written just above
        return stored

    async def get_practitioner(self, national_id: str) -> Practitioner | None:
        columns = [getattr(PractitionerRow, c) for c in PRACTITIONER_COLUMNS]
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(*columns).where(PractitionerRow.national_id == national_id)
                )
            ).first()
        return None if row is None else practitioner_from(tuple(row))

    async def get_organisation(self, national_id: str) -> Organisation | None:
        columns = [getattr(OrganisationRow, c) for c in ORGANISATION_COLUMNS]
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(*columns).where(OrganisationRow.national_id == national_id)
                )
            ).first()
        return None if row is None else organisation_from(tuple(row))

    # -- search --------------------------------------------------------------------------

    async def search(self, query: SearchQuery) -> SearchPage:
        compiled = compile_query(query)
        if self._reads is not None:
            rows, matches = await sqlite_search(self._reads, compiled)
        else:
            rows, matches = await pg_search(self._engine, compiled)
        items = tuple(SearchHit(_role(row[1:]), int(row[0])) for row in rows)
        return SearchPage.cut(items, matches, compiled.offset)

    # -- patients ------------------------------------------------------------------------

    async def add_patient(self, patient: Patient) -> None:
        identity = patient.identity
        async with self._engine.begin() as conn:
            mailbox_id = await self._create_mailbox(
                conn, MailboxEntry(patient.address, MailboxKind.PAT)
            )
            try:
                async with conn.begin_nested():
                    await conn.execute(
                        insert(PatientRow).values(
                            mailbox_id=mailbox_id,
                            ins=str(identity.ins),
                            birth_name=identity.birth_name,
                            first_given_name=identity.first_given_name,
                            birth_date=identity.birth_date,
                            sex=identity.sex.value,
                            minor=patient.minor,
                            treating_doctor=_text_or_none(patient.treating_doctor),
                        )
                    )
            except IntegrityError:
                raise AccountExists(f"INS {identity.ins} already has a patient mailbox") from None

    async def _patient_where(self, condition: ColumnElement[bool]) -> Patient | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(PatientRow.__table__, MailboxRow.address)
                    .join(MailboxRow, MailboxRow.id == PatientRow.mailbox_id)
                    .where(condition)
                )
            ).first()
        if row is None:
            return None
        identity = QualifiedIdentity(
            ins=Ins.parse(row.ins),
            birth_name=row.birth_name,
            first_given_name=row.first_given_name,
            birth_date=row.birth_date,
            sex=Sex(row.sex),
        )
        doctor = None if row.treating_doctor is None else _address(row.treating_doctor)
        return Patient(identity, _address(row.address), bool(row.minor), doctor)

    async def get_patient(self, address: Address) -> Patient | None:
        return await self._patient_where(MailboxRow.address == str(address))

    async def find_patient(self, ins: Ins) -> Patient | None:
        return await self._patient_where(PatientRow.ins == str(ins))

    async def update_patient(self, patient: Patient) -> None:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(PatientRow)
                .where(PatientRow.ins == str(patient.identity.ins))
                .values(
                    minor=patient.minor,
                    treating_doctor=_text_or_none(patient.treating_doctor),
                )
            )
            if result.rowcount == 0:
                raise UnknownMailbox(f"{patient.address} is not a patient of the directory")

    # -- applications --------------------------------------------------------------------

    async def add_application(self, application: Application) -> None:
        async with self._engine.begin() as conn:
            mailbox_id = await self._create_mailbox(
                conn,
                MailboxEntry(
                    application.address, MailboxKind.APP, description=application.description
                ),
            )
            await conn.execute(
                insert(ApplicationRow).values(
                    mailbox_id=mailbox_id,
                    name=application.name,
                    category=application.category,
                    referenced=application.referenced,
                    organisation_id=application.organisation_id,
                )
            )

    def _applications(self) -> Select[Any]:
        return select(ApplicationRow.__table__, MailboxRow.address, MailboxRow.description).join(
            MailboxRow, MailboxRow.id == ApplicationRow.mailbox_id
        )

    @staticmethod
    def _application(row: Row[Any]) -> Application:
        return Application(
            address=_address(row.address),
            name=row.name,
            category=row.category,
            description=row.description,
            referenced=bool(row.referenced),
            organisation_id=row.organisation_id,
        )

    async def get_application(self, address: Address) -> Application | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(self._applications().where(MailboxRow.address == str(address)))
            ).first()
        return None if row is None else self._application(row)

    async def update_application(self, application: Application) -> None:
        async with self._engine.begin() as conn:
            mailbox_id = (
                await conn.execute(
                    select(MailboxRow.id)
                    .join(ApplicationRow, ApplicationRow.mailbox_id == MailboxRow.id)
                    .where(MailboxRow.address == str(application.address))
                )
            ).scalar()
            if mailbox_id is None:
                raise UnknownMailbox(f"{application.address} is not an application")
            await conn.execute(
                update(MailboxRow)
                .where(MailboxRow.id == mailbox_id)
                .values(description=application.description)
            )
            await conn.execute(
                update(ApplicationRow)
                .where(ApplicationRow.mailbox_id == mailbox_id)
                .values(
                    name=application.name,
                    category=application.category,
                    referenced=application.referenced,
                    organisation_id=application.organisation_id,
                )
            )

    async def list_applications(self, *, referenced_only: bool = True) -> list[Application]:
        statement = self._applications().order_by(ApplicationRow.name, MailboxRow.address)
        if referenced_only:
            statement = statement.where(ApplicationRow.referenced.is_(True))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        return [self._application(row) for row in rows]


def _text_or_none(address: Address | None) -> str | None:
    return None if address is None else str(address)

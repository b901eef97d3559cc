"""Import of an extraction into the SQL directory: streamed, idempotent, all or nothing.

Implementation notes (the invariants):

- **One transaction** holds the whole import (``BEGIN IMMEDIATE`` on SQLite): any error,
  on line 2 or on line 400,000, rolls everything back and the directory is unchanged.
- **Constant memory**: lines are read, checked (:mod:`directory.extraction`) and turned into
  staging records a batch at a time, and written to a temporary table ``dir_import`` —
  ``executemany`` on SQLite, ``COPY`` on PostgreSQL — while the next batch is parsed.
  Everything after that is set-based SQL that the database runs on its own data.
- **Identity of a line**: (address, occurrence), the occurrence being the n-th time the
  address appears in the file. A file where an address repeats thus gives one mailbox with
  several roles, and the same file imported again maps line for line onto the same roles.
- **Only changes cost**: each line is fingerprinted (64-bit BLAKE2b of its bytes). One join
  classifies the lines into ``dir_import_changes`` — added, updated (other fingerprint, or
  retired and back), moved (same line, new position) — and every later step works from
  that table. Re-importing the same file reads it, classifies it, and writes nothing.
- **Retirement**: live roles whose (address, occurrence) is not in the file get
  ``retired_at``; so do mailboxes created by an import when none of their roles is left.
  Nothing is deleted; a later file naming them again brings them back. The retiring scan
  runs only when the counts say some live role was not matched.
- **Consolidation**: practitioners and organisations named by a changed or retired line are
  upserted from *all* the lines naming them, the last line winning (rows in line order on
  SQLite, where an upsert may hit the same row twice; ``DISTINCT ON`` on PostgreSQL, where it
  may not).
- **Types never change**: a line giving an address another type than the one it has (in
  the directory, or on an earlier line) is an error on its ``Type de BAL`` column.
- **Search index**: the normalised search fields are computed while reading. A role's
  ``indexed_hash`` is the fingerprint the search table holds for it (NULL: not in it).
  Updated roles lose their entry before the upsert, changed visible roles get one after it,
  retired roles lose theirs. On PostgreSQL, when most of the table changes, the GIN index is
  dropped and built again after the bulk insert, which is much faster than entry by entry.

The SQL below is assembled from constant identifiers only; every value is a bound parameter
(hence the ``S608`` waivers).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any, Final

from sqlalchemy import CursorResult, DateTime, bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.util.typing import TupleAny

from directory.extraction import ExtractionRow, read_extraction
from directory.model import (
    ORGANISATION_COLUMNS,
    ORGANISATION_FIELDS,
    ORGANISATION_ID,
    PRACTITIONER_COLUMNS,
    PRACTITIONER_FIELDS,
    PRACTITIONER_ID,
    ROLE_COLUMNS,
    fingerprint,
)
from directory.schema import IMMEDIATE
from directory.search import document, fts_terms, lexemes, name_city_pairs
from messaging.directory import ExtractionError, ImportProgress, ImportReport
from messaging.types import MailboxKind

__all__ = ["import_extraction", "sync_mailbox_search", "search_key", "BATCH_SIZE"]

BATCH_SIZE: Final = 5000
# Past this many entries to insert, PostgreSQL builds the GIN index anew.
_PG_REBUILD_THRESHOLD: Final = 50_000
_PG_ANALYZE_THRESHOLD: Final = 10_000
_SQLITE_IMPORT_CACHE_KIB: Final = 64 * 1024

_STAGE_COLUMNS: Final = (
    "line",
    "address",
    "kind",
    "occurrence",
    "row_hash",
    *ROLE_COLUMNS,
    "terms",  # the line's field-tagged words (directory.search.fts_terms)
)

_TYPES: Final = {
    "line": ("integer PRIMARY KEY", "INTEGER PRIMARY KEY"),
    "occurrence": ("integer NOT NULL", "INTEGER NOT NULL"),
    "row_hash": ("bigint NOT NULL", "INTEGER NOT NULL"),
    "dematerialised": ("boolean NOT NULL", "INTEGER NOT NULL"),
    "practitioner_id": ("text", "TEXT"),
    "organisation_id": ("text", "TEXT"),
}
_PG_GIN_INDEX: Final = (
    "CREATE INDEX dir_role_search_document ON dir_role_search USING gin (document)"
)
# The B-trees of dir_role_pairs (migration dir_0003), dropped and built again like the GIN.
_PG_PAIRS_INDEXES: Final = {
    "dir_role_pairs_key": "CREATE INDEX dir_role_pairs_key ON dir_role_pairs "
    "(key, name_word, city_word, role_id)",
    "dir_role_pairs_role": "CREATE INDEX dir_role_pairs_role ON dir_role_pairs (role_id)",
}
_PAIRS_COLUMNS: Final = ("key", "name_word", "city_word", "role_id")
# Classification of the lines against the roles (see _Steps.classify).
_ADDED, _UPDATED, _MOVED = 0, 1, 2


def search_key(dialect: str) -> str:
    """The column of ``dir_role_search`` that holds the role id."""
    return "role_id" if dialect == "postgresql" else "rowid"


async def _unindex(
    conn: AsyncConnection, dialect: str, roles: str, params: dict[str, Any] | None = None
) -> None:
    """Remove the roles whose ids ``roles`` selects from the search table (and, on
    PostgreSQL, from ``dir_role_pairs``)."""
    key = search_key(dialect)
    statement = text(f"DELETE FROM dir_role_search WHERE {key} IN ({roles})")  # noqa: S608
    if params is not None and "now" in params:
        statement = statement.bindparams(bindparam("now", type_=DateTime(timezone=True)))
    await conn.execute(statement, params or {})
    if dialect == "postgresql":
        pairs = text(f"DELETE FROM dir_role_pairs WHERE role_id IN ({roles})")  # noqa: S608
        if params is not None and "now" in params:
            pairs = pairs.bindparams(bindparam("now", type_=DateTime(timezone=True)))
        await conn.execute(pairs, params or {})


# PostgreSQL's vector from the text of its lexemes (they need no parsing).
_PG_VECTOR: Final = "array_to_tsvector(string_to_array({}, ' '))"


def _staging_ddl(dialect: str) -> str:
    pg = dialect == "postgresql"
    default = ("text NOT NULL", "TEXT NOT NULL")
    columns = ", ".join(
        f"{name} {_TYPES.get(name, default)[0 if pg else 1]}" for name in _STAGE_COLUMNS
    )
    return f"CREATE TEMPORARY TABLE dir_import ({columns})" + (" ON COMMIT DROP" if pg else "")


def _record(row: ExtractionRow) -> tuple[Any, ...]:
    """The staging record of a checked line (see ``_STAGE_COLUMNS``)."""
    values = row.values
    return (
        row.line,
        str(row.address),
        row.kind.value,
        0,
        fingerprint(row.raw),
        *values[1:PRACTITIONER_ID],
        values[PRACTITIONER_ID] or None,
        values[5],
        values[ORGANISATION_ID] or None,
        *values[7:17],
        row.dematerialised,
        *values[18:31],
        fts_terms(document(values, row.kind)),
    )


def _batches(rows: Iterator[ExtractionRow]) -> Iterator[list[tuple[Any, ...]]]:
    while batch := [_record(row) for row in islice(rows, BATCH_SIZE)]:
        yield batch


class _CountingLines:
    """Counts the bytes read, for the progress bar."""

    def __init__(self, lines: Iterable[bytes]) -> None:
        self._lines = lines
        self.bytes_read = 0

    def __iter__(self) -> Iterator[bytes]:
        for line in self._lines:
            self.bytes_read += len(line)
            yield line


@dataclass(frozen=True, slots=True)
class _Classes:
    rows: int
    added: int
    updated: int
    revived: int
    changed: int  # added + updated + moved

    @property
    def matched_live(self) -> int:
        """Lines that found a live role: if fewer than the live roles, some must retire."""
        return self.rows - self.added - self.revived


async def import_extraction(
    engine: AsyncEngine,
    lines: Iterable[bytes],
    now: datetime,
    progress: Callable[[ImportProgress], None] | None = None,
) -> ImportReport:
    """Apply an extraction file to the directory at ``engine``; see the module notes."""
    step = _Steps(engine.dialect.name, now, progress)
    async with engine.connect() as conn:
        conn = await conn.execution_options(**{IMMEDIATE: True})
        try:
            async with conn.begin():
                if step.sqlite:
                    # A bigger page cache for the merge; bounded, so memory stays flat.
                    await conn.exec_driver_sql(f"PRAGMA cache_size=-{_SQLITE_IMPORT_CACHE_KIB}")
                result = await step.run(conn, lines)
        finally:
            if step.sqlite:
                await conn.exec_driver_sql("PRAGMA cache_size=-2000")
                await conn.commit()
    step.report("done", result.rows)
    return result


class _Steps:
    """The steps of one import, in the order :meth:`run` takes them."""

    def __init__(
        self, dialect: str, now: datetime, progress: Callable[[ImportProgress], None] | None
    ) -> None:
        self.dialect = dialect
        self.sqlite = dialect == "sqlite"
        self.now = now
        self.progress = progress
        self.bytes_read = 0

    def report(self, phase: str, lines: int) -> None:
        if self.progress is not None:
            self.progress(ImportProgress(phase, lines, self.bytes_read))

    async def _sql(self, conn: AsyncConnection, sql: str) -> CursorResult[*TupleAny]:
        """Run ``sql`` with ``:now`` bound to the import's time."""
        statement = text(sql)
        if ":now" in sql:
            statement = statement.bindparams(bindparam("now", type_=DateTime(timezone=True)))
            return await conn.execute(statement, {"now": self.now})
        return await conn.execute(statement)

    async def _scalar(self, conn: AsyncConnection, sql: str) -> int:
        return int((await self._sql(conn, sql)).scalar() or 0)

    async def run(self, conn: AsyncConnection, lines: Iterable[bytes]) -> ImportReport:
        await conn.exec_driver_sql(_staging_ddl(self.dialect))
        rows = await self.load(conn, lines)
        self.report("merging", rows)
        duplicates = await self.number_occurrences(conn)
        classes = await self.classify(conn, rows)
        await self.check_kinds(conn)
        live_before = await self._scalar(
            conn, "SELECT count(*) FROM dir_roles WHERE retired_at IS NULL"
        )
        if classes.changed:
            await self.unindex_updated(conn)
            await self.merge_mailboxes(conn)
            await self.merge_roles(conn)
        retired = 0
        if live_before > classes.matched_live:
            retired = await self.retire(conn)
        if classes.changed or retired:
            await self.consolidate(conn)
            self.report("indexing", rows)
            await self.index_changed(conn, classes.added + classes.updated)
            if not self.sqlite and classes.changed + retired > _PG_ANALYZE_THRESHOLD:
                # Plans need statistics now, not when autovacuum gets round to it.
                await conn.exec_driver_sql(
                    "ANALYZE dir_role_search, dir_role_pairs, dir_roles, dir_mailboxes"
                )
        summary = ImportReport(
            rows=rows,
            added=classes.added,
            updated=classes.updated,
            unchanged=rows - classes.added - classes.updated,
            retired=retired,
            duplicates=duplicates,
        )
        await self.record(conn, summary)
        for table in ("dir_import_changes", "dir_import_dups", "dir_import"):
            await conn.exec_driver_sql(f"DROP TABLE {table}")
        return summary

    # -- reading -------------------------------------------------------------------------

    async def load(self, conn: AsyncConnection, lines: Iterable[bytes]) -> int:
        """Write the checked lines to ``dir_import``, one batch in flight while the next one
        is parsed (the driver works in its own thread, or the server does, meanwhile)."""
        if self.sqlite:
            marks = ", ".join("?" for _ in _STAGE_COLUMNS)
            insert = f"INSERT INTO dir_import ({', '.join(_STAGE_COLUMNS)}) VALUES ({marks})"  # noqa: S608

            async def write(batch: list[tuple[Any, ...]]) -> None:
                await conn.exec_driver_sql(insert, batch)

        else:
            driver: Any = (await conn.get_raw_connection()).driver_connection

            async def write(batch: list[tuple[Any, ...]]) -> None:
                await driver.copy_records_to_table(
                    "dir_import", records=batch, columns=_STAGE_COLUMNS
                )

        counted = _CountingLines(lines)
        total = 0
        pending: asyncio.Future[None] | None = None
        try:
            for batch in _batches(read_extraction(counted)):
                if pending is not None:
                    await pending
                pending = asyncio.ensure_future(write(batch))
                await asyncio.sleep(0)  # let the write start before parsing the next batch
                total += len(batch)
                self.bytes_read = counted.bytes_read
                self.report("reading", total)
            if pending is not None:
                await pending
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)
        self.bytes_read = counted.bytes_read
        return total

    # -- checking and classifying --------------------------------------------------------

    async def number_occurrences(self, conn: AsyncConnection) -> int:
        """Number the lines of repeated addresses (0 for the first); count those addresses."""
        index = "temp.dir_import_address" if self.sqlite else "dir_import_address"
        await conn.exec_driver_sql(f"CREATE INDEX {index} ON dir_import (address, occurrence)")
        if not self.sqlite:
            # Temporary tables have no statistics until asked; the plans below need them.
            await conn.exec_driver_sql("ANALYZE dir_import")
        await conn.exec_driver_sql(
            self._temp_table(
                "dir_import_dups",
                "SELECT address, min(line) AS first_line FROM dir_import "
                "GROUP BY address HAVING count(*) > 1",
            )
        )
        await conn.exec_driver_sql(
            """
            UPDATE dir_import SET occurrence = (
                SELECT count(*) FROM dir_import AS earlier
                WHERE earlier.address = dir_import.address AND earlier.line < dir_import.line)
            WHERE address IN (SELECT address FROM dir_import_dups)
            """
        )
        return await self._scalar(conn, "SELECT count(*) FROM dir_import_dups")

    def _temp_table(self, name: str, select: str) -> str:
        if self.sqlite:
            return f"CREATE TEMPORARY TABLE {name} AS {select}"
        return f"CREATE TEMPORARY TABLE {name} ON COMMIT DROP AS {select}"

    async def classify(self, conn: AsyncConnection, rows: int) -> _Classes:
        """Keep in ``dir_import_changes`` the lines that are not a live, unchanged role at
        the same position, with what changed and the role they hit."""
        await conn.exec_driver_sql(
            self._temp_table(
                "dir_import_changes",
                f"""
                SELECT s.line AS line, r.id AS role_id,
                       CASE WHEN r.id IS NULL THEN {_ADDED}
                            WHEN r.row_hash <> s.row_hash OR r.retired_at IS NOT NULL
                            THEN {_UPDATED} ELSE {_MOVED} END AS change,
                       CASE WHEN r.retired_at IS NOT NULL THEN 1 ELSE 0 END AS revived
                FROM dir_import s
                LEFT JOIN dir_mailboxes m ON m.address = s.address
                LEFT JOIN dir_roles r ON r.mailbox_id = m.id AND r.occurrence = s.occurrence
                WHERE r.id IS NULL OR r.row_hash <> s.row_hash OR r.retired_at IS NOT NULL
                   OR r.ordinal <> s.line
                """,  # noqa: S608
            )
        )
        if not self.sqlite:
            await conn.exec_driver_sql("ANALYZE dir_import_changes")
        counts = (
            await self._sql(
                conn,
                f"""
                SELECT coalesce(sum(CASE WHEN change = {_ADDED} THEN 1 ELSE 0 END), 0),
                       coalesce(sum(CASE WHEN change = {_UPDATED} THEN 1 ELSE 0 END), 0),
                       coalesce(sum(revived), 0), count(*)
                FROM dir_import_changes
                """,  # noqa: S608
            )
        ).one()
        return _Classes(rows, int(counts[0]), int(counts[1]), int(counts[2]), int(counts[3]))

    async def check_kinds(self, conn: AsyncConnection) -> None:
        """A mailbox's type never changes: refuse the first line that would change one.

        Only changed lines can: an unchanged line has the type its mailbox was made with.
        """
        known = (
            await self._sql(
                conn,
                """
                SELECT s.line, s.address, s.kind, m.kind FROM dir_import_changes c
                JOIN dir_import s ON s.line = c.line
                JOIN dir_mailboxes m ON m.address = s.address
                WHERE m.kind <> s.kind ORDER BY s.line LIMIT 1
                """,
            )
        ).first()
        earlier = (
            await self._sql(
                conn,
                """
                SELECT s.line, s.address, s.kind, f.kind, f.line FROM dir_import_dups d
                JOIN dir_import s ON s.address = d.address
                JOIN dir_import f ON f.line = d.first_line
                WHERE s.kind <> f.kind ORDER BY s.line LIMIT 1
                """,
            )
        ).first()
        if known is not None and (earlier is None or known[0] < earlier[0]):
            line, address, kind, existing = known
            raise ExtractionError(
                line,
                1,
                "Type de BAL",
                f"{address} is a {existing} mailbox and cannot become {kind}: "
                "a mailbox's type never changes",
            )
        if earlier is not None:
            line, address, kind, first_kind, first_line = earlier
            raise ExtractionError(
                line,
                1,
                "Type de BAL",
                f"{address} is {first_kind} on line {first_line} and cannot be {kind} here: "
                "a mailbox's type never changes",
            )

    # -- merging -------------------------------------------------------------------------

    async def unindex_updated(self, conn: AsyncConnection) -> None:
        """Updated roles leave the search table now; their new version comes back later."""
        updated = (
            f"SELECT c.role_id FROM dir_import_changes c JOIN dir_roles r ON r.id = c.role_id "  # noqa: S608
            f"WHERE c.change = {_UPDATED} AND r.indexed_hash IS NOT NULL"
        )
        await _unindex(conn, self.dialect, updated)

    async def merge_mailboxes(self, conn: AsyncConnection) -> None:
        # A mailbox's service is that of its first line. Local mailboxes named by the file
        # keep their own fields.
        await self._sql(
            conn,
            """
            INSERT INTO dir_mailboxes (address, kind, origin, liste_rouge, service, description,
                                       responsible, preferred_rank, created_at, retired_at)
            SELECT s.address, s.kind, 'extraction', FALSE, s.service, '', '', NULL, :now, NULL
            FROM dir_import_changes c JOIN dir_import s ON s.line = c.line
            WHERE s.occurrence = 0 ORDER BY s.line
            ON CONFLICT (address) DO UPDATE SET service = excluded.service, retired_at = NULL
            WHERE dir_mailboxes.origin = 'extraction'
            """,
        )

    async def merge_roles(self, conn: AsyncConnection) -> None:
        columns = ", ".join(ROLE_COLUMNS)
        sources = ", ".join(f"s.{c}" for c in ROLE_COLUMNS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in ROLE_COLUMNS)
        await self._sql(
            conn,
            f"""
            INSERT INTO dir_roles (mailbox_id, occurrence, ordinal, row_hash, indexed_hash,
                                   retired_at, {columns})
            SELECT m.id, s.occurrence, s.line, s.row_hash,
                   CASE WHEN m.liste_rouge THEN NULL ELSE s.row_hash END, NULL, {sources}
            FROM dir_import_changes c
            JOIN dir_import s ON s.line = c.line
            JOIN dir_mailboxes m ON m.address = s.address
            WHERE TRUE ORDER BY s.line
            ON CONFLICT (mailbox_id, occurrence) DO UPDATE SET
                ordinal = excluded.ordinal, row_hash = excluded.row_hash,
                indexed_hash = excluded.indexed_hash, retired_at = NULL, {updates}
            """,  # noqa: S608
        )

    async def retire(self, conn: AsyncConnection) -> int:
        """Retire the live roles the file lacks, then the mailboxes left without one."""
        retired = await self._sql(
            conn,
            """
            UPDATE dir_roles SET retired_at = :now
            WHERE retired_at IS NULL AND NOT EXISTS (
                SELECT 1 FROM dir_mailboxes m
                JOIN dir_import s ON s.address = m.address AND s.occurrence = dir_roles.occurrence
                WHERE m.id = dir_roles.mailbox_id)
            """,
        )
        gone = "SELECT id FROM dir_roles WHERE retired_at = :now AND indexed_hash IS NOT NULL"
        await _unindex(conn, self.dialect, gone, {"now": self.now})
        await self._sql(
            conn,
            "UPDATE dir_roles SET indexed_hash = NULL "
            "WHERE retired_at = :now AND indexed_hash IS NOT NULL",
        )
        await self._sql(
            conn,
            """
            UPDATE dir_mailboxes SET retired_at = :now
            WHERE origin = 'extraction' AND retired_at IS NULL
              AND id IN (SELECT mailbox_id FROM dir_roles WHERE retired_at = :now)
              AND NOT EXISTS (SELECT 1 FROM dir_roles r
                              WHERE r.mailbox_id = dir_mailboxes.id AND r.retired_at IS NULL)
            """,
        )
        return int(retired.rowcount)

    async def consolidate(self, conn: AsyncConnection) -> None:
        """Upsert the practitioners and organisations that changed or retired lines name."""
        of_field = dict(zip(range(1, 31), ROLE_COLUMNS, strict=True))
        for table, key, columns, fields in (
            ("dir_practitioners", "practitioner_id", PRACTITIONER_COLUMNS, PRACTITIONER_FIELDS),
            ("dir_organisations", "organisation_id", ORGANISATION_COLUMNS, ORGANISATION_FIELDS),
        ):
            named = f"""
                SELECT s.{key} FROM dir_import_changes c JOIN dir_import s ON s.line = c.line
                WHERE s.{key} IS NOT NULL
                UNION SELECT {key} FROM dir_roles WHERE retired_at = :now AND {key} IS NOT NULL
            """  # noqa: S608
            await self._sql(conn, self._upsert_latest(table, key, columns, fields, of_field, named))

    def _upsert_latest(
        self,
        table: str,
        key: str,
        columns: Sequence[str],
        fields: Sequence[int],
        of_field: dict[int, str],
        named: str,
    ) -> str:
        sources = ", ".join(f"s.{of_field[i]}" for i in fields)
        if self.sqlite:
            # Rows in line order: a later line naming the same key updates the row again.
            select = (
                f"SELECT {sources} FROM dir_import s WHERE s.{key} IN ({named}) ORDER BY s.line"  # noqa: S608
            )
        else:
            select = (
                f"SELECT DISTINCT ON (s.{key}) {sources} FROM dir_import s "  # noqa: S608
                f"WHERE s.{key} IN ({named}) ORDER BY s.{key}, s.line DESC"
            )
        rest = columns[1:]
        return f"""
            INSERT INTO {table} ({", ".join(columns)}) {select}
            ON CONFLICT (national_id) DO UPDATE SET
                {", ".join(f"{c} = excluded.{c}" for c in rest)}
            WHERE ({", ".join(f"{table}.{c}" for c in rest)})
               <> ({", ".join(f"excluded.{c}" for c in rest)})
        """

    async def index_changed(self, conn: AsyncConnection, count: int) -> None:
        """Give the added and updated roles of visible mailboxes their search entry."""
        changed = f"""
            FROM dir_import_changes c
            JOIN dir_import s ON s.line = c.line
            JOIN dir_mailboxes m ON m.address = s.address
            JOIN dir_roles r ON r.mailbox_id = m.id AND r.occurrence = s.occurrence
            WHERE c.change IN ({_ADDED}, {_UPDATED}) AND r.indexed_hash IS NOT NULL
        """
        if self.sqlite:
            await conn.exec_driver_sql(
                f"INSERT INTO dir_role_search (rowid, terms) SELECT r.id, s.terms {changed}"
            )
            return
        # PostgreSQL's lexemes are computed here, for the entries to write only, a batch at a
        # time: staging them for every line would make a re-import carry ~1 kB per line.
        await conn.exec_driver_sql(
            "CREATE TEMPORARY TABLE dir_index ON COMMIT DROP AS "
            f"SELECT r.id AS role_id, s.terms {changed}"
        )
        await conn.exec_driver_sql("CREATE INDEX dir_index_role ON dir_index (role_id)")
        await conn.exec_driver_sql(
            "CREATE TEMPORARY TABLE dir_index_ready "
            "(role_id integer, terms text, lexemes text) ON COMMIT DROP"
        )
        driver: Any = (await conn.get_raw_connection()).driver_connection
        rebuild = count > _PG_REBUILD_THRESHOLD
        if rebuild:
            await conn.exec_driver_sql(f"DROP INDEX {', '.join(_PG_PAIRS_INDEXES)}")
        last = 0
        while batch := (
            await conn.execute(
                text(
                    "SELECT role_id, terms FROM dir_index WHERE role_id > :last "
                    "ORDER BY role_id LIMIT :size"
                ),
                {"last": last, "size": BATCH_SIZE},
            )
        ).all():
            records = [(role_id, terms, lexemes(terms)) for role_id, terms in batch]
            await driver.copy_records_to_table("dir_index_ready", records=records)
            pairs = [(*p, role_id) for role_id, terms in batch for p in name_city_pairs(terms)]
            await driver.copy_records_to_table(
                "dir_role_pairs", records=pairs, columns=_PAIRS_COLUMNS
            )
            last = batch[-1][0]
        if rebuild:
            for ddl in _PG_PAIRS_INDEXES.values():
                await conn.exec_driver_sql(ddl)
            await conn.exec_driver_sql("DROP INDEX dir_role_search_document")
        await conn.exec_driver_sql(
            "INSERT INTO dir_role_search (role_id, terms, document) "  # noqa: S608
            f"SELECT role_id, terms, {_PG_VECTOR.format('lexemes')} FROM dir_index_ready"
        )
        if rebuild:
            await conn.exec_driver_sql(_PG_GIN_INDEX)
        await conn.exec_driver_sql("DROP TABLE dir_index, dir_index_ready")

    async def record(self, conn: AsyncConnection, summary: ImportReport) -> None:
        await conn.execute(
            text(
                "INSERT INTO dir_imports (finished_at, rows, added, updated, unchanged, "
                "retired, duplicates) VALUES (:now, :rows, :added, :updated, :unchanged, "
                ":retired, :duplicates)"
            ).bindparams(bindparam("now", type_=DateTime(timezone=True))),
            {"now": self.now, **dataclasses.asdict(summary)},
        )


async def sync_mailbox_search(conn: AsyncConnection, dialect: str, mailbox_id: int) -> None:
    """Make the search table hold exactly the live roles of one mailbox if it is visible
    (after its liste rouge flag changed); the fields are normalised here from the stored
    ones."""
    params = {"id": mailbox_id}
    await _unindex(conn, dialect, "SELECT id FROM dir_roles WHERE mailbox_id = :id", params)
    await conn.execute(
        text("UPDATE dir_roles SET indexed_hash = NULL WHERE mailbox_id = :id"), params
    )
    stored = ", ".join(f"r.{c}" for c in ROLE_COLUMNS)
    rows = (
        await conn.execute(
            text(
                f"SELECT r.id, m.kind, {stored} FROM dir_roles r "  # noqa: S608
                "JOIN dir_mailboxes m ON m.id = r.mailbox_id "
                "WHERE r.mailbox_id = :id AND r.retired_at IS NULL AND NOT m.liste_rouge"
            ),
            params,
        )
    ).all()
    if not rows:
        return
    entries = []
    for role_id, kind_code, *fields in rows:
        kind = MailboxKind(kind_code)
        doc = document([kind.value, *("" if v is None else str(v) for v in fields)], kind)
        entries.append({"id": role_id, "terms": fts_terms(doc)})
    if dialect == "sqlite":
        insert = "INSERT INTO dir_role_search (rowid, terms) VALUES (:id, :terms)"
    else:
        pairs = []
        for entry in entries:
            entry["lexemes"] = lexemes(entry["terms"])
            pairs += [
                dict(zip(_PAIRS_COLUMNS, (*p, entry["id"]), strict=True))
                for p in name_city_pairs(str(entry["terms"]))
            ]
        if pairs:
            await conn.execute(
                text(
                    "INSERT INTO dir_role_pairs (key, name_word, city_word, role_id) "
                    "VALUES (:key, :name_word, :city_word, :role_id)"
                ),
                pairs,
            )
        insert = (
            "INSERT INTO dir_role_search (role_id, terms, document) "  # noqa: S608
            f"VALUES (:id, :terms, {_PG_VECTOR.format(':lexemes')})"
        )
    await conn.execute(text(insert), entries)
    await conn.execute(
        text(
            "UPDATE dir_roles SET indexed_hash = row_hash "
            "WHERE mailbox_id = :id AND retired_at IS NULL"
        ),
        params,
    )

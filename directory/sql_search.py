"""How each engine runs a compiled search (the rules are in :mod:`directory.search`).

- SQLite, in one worker thread (:class:`~directory.reads.SqliteReads`): the tiers one after
  the other, each read in rowid order and cut at the page's end, so FTS5 stops early and
  later tiers are not even read once the page is full; the matches are counted (up to
  ``COUNT_LIMIT``) only when the tiers did not see them all; then the page's roles.
- PostgreSQL, one statement: the matches found through the GIN index (up to
  ``COUNT_LIMIT``), their tier computed, counted, sorted by tier and id, cut to the page,
  joined to their roles.

Both return rows of ``(tier, *role columns)`` in page order and the number of matches.
The SQL is assembled from constant identifiers; every value, the FTS5 and tsquery
expressions included, is a bound parameter (hence the ``S608`` waivers).
"""

from __future__ import annotations

import sqlite3
from typing import Any, Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from directory.model import ROLE_COLUMNS
from directory.reads import SqliteReads
from directory.search import CompiledQuery, fts5_base, fts5_tiers, pg_query
from messaging.directory import COUNT_LIMIT

__all__ = ["ROLE_SELECT", "sqlite_search", "pg_search"]

ROLE_SELECT: Final = "m.address, m.kind, r.ordinal, " + ", ".join(f"r.{c}" for c in ROLE_COLUMNS)
"""The columns :func:`directory.sql._role` reads a role from."""

Rows = list[tuple[Any, ...]]


def _like_escape(part: str) -> str:
    return part.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _mailbox_filter(query: CompiledQuery, key: str, params: dict[str, Any]) -> str:
    """A condition on the search table's id: the address contains ``query.mailbox``."""
    params["mailbox"] = f"%{_like_escape(query.mailbox)}%"
    return (
        f"{key} IN (SELECT r.id FROM dir_roles r JOIN dir_mailboxes m ON m.id = r.mailbox_id "  # noqa: S608
        "WHERE m.address LIKE :mailbox ESCAPE '\\')"
    )


# -- SQLite ----------------------------------------------------------------------------


def _sqlite_conditions(query: CompiledQuery) -> tuple[list[str], str, dict[str, Any]]:
    """The WHERE clause of each tier, the one every match meets, and their parameters."""
    params: dict[str, Any] = {}
    extra = []
    if query.mailbox:
        extra.append(_mailbox_filter(query, "rowid", params))
    base = fts5_base(query)
    if base is None:  # part of an address only
        where = " AND ".join(extra)
        return [where], where, params
    params["base"] = base
    tiers = []
    for level, expression in enumerate(fts5_tiers(query), start=1):
        params[f"tier{level}"] = expression
        tiers.append(" AND ".join([f"dir_role_search MATCH :tier{level}", *extra]))
    return tiers, " AND ".join(["dir_role_search MATCH :base", *extra]), params


async def sqlite_search(reads: SqliteReads, query: CompiledQuery) -> tuple[Rows, int]:
    tiers, every, params = _sqlite_conditions(query)

    def read(connection: sqlite3.Connection) -> tuple[Rows, int]:
        found: list[tuple[int, int]] = []
        complete = True
        for level, where in enumerate(tiers, start=1):
            wanted = query.window - len(found)
            ids = connection.execute(
                f"SELECT rowid FROM dir_role_search WHERE {where} ORDER BY rowid LIMIT {wanted}",  # noqa: S608
                params,
            ).fetchall()
            found += [(level, role_id) for (role_id,) in ids]
            if len(ids) == wanted:
                complete = False  # the page is full; there may be more
                break
        page = found[query.offset : query.window]
        matches = len(found)
        if not complete:
            matches = connection.execute(
                "SELECT count(*) FROM (SELECT 1 FROM dir_role_search "  # noqa: S608
                f"WHERE {every} LIMIT {COUNT_LIMIT})",
                params,
            ).fetchone()[0]
        if not page:
            return [], matches
        marks = ", ".join("?" for _ in page)
        roles = {
            row[0]: row[1:]
            for row in connection.execute(
                f"SELECT r.id, {ROLE_SELECT} FROM dir_roles r "  # noqa: S608
                f"JOIN dir_mailboxes m ON m.id = r.mailbox_id WHERE r.id IN ({marks})",
                [role_id for _, role_id in page],
            )
        }
        return [(level, *roles[role_id]) for level, role_id in page], matches

    return await reads.run(read)


# -- PostgreSQL ------------------------------------------------------------------------


async def pg_search(engine: AsyncEngine, query: CompiledQuery) -> tuple[Rows, int]:
    params: dict[str, Any] = {"limit": query.limit, "offset": query.offset, "cap": COUNT_LIMIT}
    conditions = []
    level = "1"
    compiled = pg_query(query)
    if compiled is not None:
        params["every"] = compiled.every
        conditions.append("document @@ CAST(:every AS tsquery)")
        if compiled.first:

            def any_like(prefix: str, patterns: tuple[str, ...]) -> str:
                params.update({f"{prefix}{n}": p for n, p in enumerate(patterns)})
                tests = (f"(' ' || terms) LIKE :{prefix}{n}" for n in range(len(patterns)))
                return " OR ".join(tests)

            first = any_like("first", compiled.first)
            second = any_like("second", compiled.second)
            level = f"CASE WHEN {first} THEN 1 WHEN {second} THEN 2 ELSE 3 END"
    if query.mailbox:
        conditions.append(_mailbox_filter(query, "role_id", params))
    # MATERIALIZED: read the matches once, without ORDER BY, so the planner never walks the
    # primary key hoping to stop early; LIMIT caps the reading at COUNT_LIMIT matches.
    sql = f"""
        WITH hits AS MATERIALIZED (
            SELECT role_id AS id, {level} AS tier FROM dir_role_search
            WHERE {" AND ".join(conditions)} LIMIT :cap),
        page AS (SELECT id, tier FROM hits ORDER BY tier, id LIMIT :limit OFFSET :offset)
        SELECT (SELECT count(*) FROM hits), page.tier, {ROLE_SELECT}
        FROM page JOIN dir_roles r ON r.id = page.id
        JOIN dir_mailboxes m ON m.id = r.mailbox_id
        ORDER BY page.tier, page.id
    """  # noqa: S608
    async with engine.connect() as conn:
        rows = (await conn.execute(text(sql), params)).all()
        if rows:
            return [tuple(row[1:]) for row in rows], int(rows[0][0])
        # An empty page (past the end, or no match): count all the same.
        count = (
            "SELECT count(*) FROM (SELECT 1 FROM dir_role_search "  # noqa: S608
            f"WHERE {' AND '.join(conditions)} LIMIT :cap) c"
        )
        matches = (await conn.execute(text(count), params)).scalar_one()
    return [], int(matches)

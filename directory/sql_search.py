"""How each engine runs a compiled search (the rules are in :mod:`directory.search`).

- SQLite, in one worker thread (:class:`~directory.reads.SqliteReads`): the tiers one after
  the other, each read in rowid order and cut at the page's end, so FTS5 stops early and
  later tiers are not even read once the page is full; the matches are counted (up to
  ``COUNT_LIMIT``) only when the tiers did not see them all; then the page's roles.
- PostgreSQL, one statement on the asyncpg connection itself (no transaction opened and
  rolled back around it; asyncpg keeps it prepared):
  - a family name and a city of at least 3 letters, no free text
    (:func:`~directory.search.pair_query`): one range of ``dir_role_pairs``'s B-tree holds
    exactly the matches; all are read (a few thousand at most), the other words and the
    kind checked on the role's terms, sorted by id, counted, cut to the page;
  - any other search: the matches found through the GIN index (up to ``COUNT_LIMIT``),
    their tier computed, counted, sorted by tier and id, cut to the page, joined to their
    roles.

Both return rows of ``(tier, *role columns)`` in page order and the number of matches.
The SQL is assembled from constant identifiers; every value, the FTS5 and tsquery
expressions included, is a bound parameter (hence the ``S608`` waivers).
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncEngine

from directory.model import ROLE_COLUMNS
from directory.reads import SqliteReads
from directory.search import CompiledQuery, PairQuery, fts5_base, fts5_tiers, pair_query, pg_query
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


_PG_PAGE: Final = f"""
    SELECT (SELECT count(*) FROM (SELECT 1 FROM hits LIMIT :cap) c), page.tier, {ROLE_SELECT}
    FROM page JOIN dir_roles r ON r.id = page.id
    JOIN dir_mailboxes m ON m.id = r.mailbox_id
    ORDER BY page.tier, page.id
"""  # noqa: S608
"""The page of ``hits`` (``id``, ``tier``) with its roles, each row led by the count."""


_NAMED: Final = re.compile(r"(?<![:\w]):(\w+)")


def _positional(sql: str, params: dict[str, Any]) -> tuple[str, list[Any]]:
    """``sql`` with its ``:name`` parameters as asyncpg's ``$1``…, and their values."""
    numbers: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in numbers:
            numbers[name] = len(numbers) + 1
        return f"${numbers[name]}"

    positional = _NAMED.sub(number, sql)
    return positional, [params[name] for name in numbers]


async def _pg_page(
    engine: AsyncEngine, sql: str, count: str, params: dict[str, Any]
) -> tuple[Rows, int]:
    """Run a search on the asyncpg connection itself: no transaction to open and roll back
    (three round trips become one), and asyncpg keeps the statements prepared."""
    async with engine.connect() as conn:
        driver: Any = (await conn.get_raw_connection()).driver_connection
        statement, args = _positional(sql, params)
        rows = await driver.fetch(statement, *args)
        if rows:
            return [tuple(row)[1:] for row in rows], int(rows[0][0])
        # An empty page (past the end, or no match): count all the same.
        statement, args = _positional(count, params)
        return [], int(await driver.fetchval(statement, *args))


async def _pg_pairs(
    engine: AsyncEngine, query: CompiledQuery, pairs: PairQuery
) -> tuple[Rows, int]:
    """Family name and city prefixes: a range of ``dir_role_pairs``'s index holds exactly
    the matches, so they are all read (a few thousand at most), sorted and counted."""
    params: dict[str, Any] = {
        "limit": query.limit,
        "offset": query.offset,
        "cap": COUNT_LIMIT,
        "key": pairs.key,
        "name_lo": pairs.name_range[0],
        "name_hi": pairs.name_range[1],
        "city_lo": pairs.city_range[0],
        "city_hi": pairs.city_range[1],
    }
    join = ""
    if pairs.others:
        params.update({f"other{n}": p for n, p in enumerate(pairs.others)})
        tests = " AND ".join(
            f"(' ' || s.terms || ' ') LIKE :other{n}" for n in range(len(pairs.others))
        )
        join = f"JOIN dir_role_search s ON s.role_id = p.role_id AND {tests}"
    hits = f"""
        SELECT DISTINCT p.role_id AS id, 1 AS tier FROM dir_role_pairs p {join}
        WHERE p.key = :key AND p.name_word >= :name_lo AND p.name_word < :name_hi
          AND p.city_word >= :city_lo AND p.city_word < :city_hi
    """  # noqa: S608
    sql = f"""
        WITH hits AS MATERIALIZED ({hits}),
        page AS (SELECT id, tier FROM hits ORDER BY id LIMIT :limit OFFSET :offset)
        {_PG_PAGE}
    """  # noqa: S608
    count = f"SELECT count(*) FROM (SELECT 1 FROM ({hits}) h LIMIT :cap) c"  # noqa: S608
    return await _pg_page(engine, sql, count, params)


async def pg_search(engine: AsyncEngine, query: CompiledQuery) -> tuple[Rows, int]:
    pairs = pair_query(query)
    if pairs is not None:
        return await _pg_pairs(engine, query, pairs)
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
        {_PG_PAGE}
    """  # noqa: S608
    count = (
        "SELECT count(*) FROM (SELECT 1 FROM dir_role_search "  # noqa: S608
        f"WHERE {' AND '.join(conditions)} LIMIT :cap) c"
    )
    return await _pg_page(engine, sql, count, params)

"""IMAP mailbox state on a 10,000-message folder: the store's calls beside a bare-SQL floor.

For each engine (SQLite, PostgreSQL), with one folder of ``--messages`` messages (each its
own envelope and key slot, as deliveries make them), it times:

- **select**: ``folder_status`` + ``fetch_records`` of every UID (what SELECT and a UID
  FETCH of FLAGS/ENVELOPE metadata need) — floor: one ``SELECT uid, modseq, flags`` of the
  folder;
- **resync**: ``changes_since(HIGHESTMODSEQ)`` when nothing changed (a CONDSTORE/QRESYNC
  client's no-change resync) — floor: one ``SELECT highestmodseq``;
- **store**: ``update_flags`` adding ``\\Seen`` to every message — floor: one ``UPDATE`` of
  the folder's rows;
- **expunge**: ``expunge`` of every other message (flagged ``\\Deleted`` beforehand,
  outside the timing) — floor: one ``DELETE`` of the same rows.

Prints a Markdown table (milliseconds, median of ``--repeat`` runs; ratio store/floor).

    python -m bench.bench_imap_state [--messages 10000] [--repeat 5] [--engines sqlite,postgresql]

PostgreSQL: ``PLI_BENCH_DATABASE_URL`` (an admin URL; default the local server) — a
throwaway database is created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import text

from mailbox_store import SqlMailboxStore
from messaging.types import AccountRecord, Address, FlagMode, MailboxKind

ALICE = Address.parse("alice@medecin.pli.test")
WHEN = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


async def populate(store: SqlMailboxStore, count: int) -> int:
    """Alice's INBOX with ``count`` messages; returns the folder id. Rows are written in
    bulk (the delivery path has its own benchmark)."""
    await store.create_account(
        AccountRecord(ALICE, MailboxKind.PER, "Alice", b"e" * 32, b"s" * 32, WHEN), []
    )
    engine = store._writer  # the bench writes rows directly: no public bulk-load API
    async with engine.begin() as connection:
        row = await connection.execute(
            text(
                "SELECT folders.id, accounts.id FROM folders JOIN accounts"
                " ON accounts.id = folders.account_id WHERE folders.name = 'INBOX'"
            )
        )
        folder_id, account_id = row.one()
        envelopes = [uuid.uuid4().hex for _ in range(count)]
        naive = WHEN.replace(tzinfo=None) if connection.dialect.name == "sqlite" else WHEN
        await connection.execute(
            text(
                "INSERT INTO envelopes (envelope_id, thread_id, kind, sender, provenance, date,"
                " plaintext_size, blob_digest, blob_size, created_at) VALUES (:e, :e, 'note',"
                " 'bob@medecin.pli.test', 'e2e', :d, 5000, :h, 5800, :d)"
            ),
            [{"e": e, "d": naive, "h": hashlib.sha256(e.encode()).hexdigest()} for e in envelopes],
        )
        await connection.execute(
            text(
                "INSERT INTO messages (folder_id, uid, modseq, flags, seen, internal_date,"
                " envelope_id) VALUES (:f, :u, :u, '', false, :d, :e)"
            ),
            [
                {"f": folder_id, "u": uid, "d": naive, "e": e}
                for uid, e in enumerate(envelopes, start=1)
            ],
        )
        await connection.execute(
            text("INSERT INTO key_slots (envelope_id, account_id, slot) VALUES (:e, :a, :s)"),
            [{"e": e, "a": account_id, "s": b"slot" * 20} for e in envelopes],
        )
        await connection.execute(
            text("UPDATE folders SET uidnext = :n, highestmodseq = :n WHERE id = :f"),
            {"n": count + 1, "f": folder_id},
        )
    return int(folder_id)


async def timed(action: Callable[[], Awaitable[Any]]) -> float:
    start = time.perf_counter()
    await action()
    return (time.perf_counter() - start) * 1000


async def run_engine(url: str, count: int, repeat: int) -> list[tuple[str, float, float]]:
    rows: list[tuple[str, float, float]] = []
    store = await SqlMailboxStore.open(url)
    try:
        folder_id = await populate(store, count)
        every = list(range(1, count + 1))
        reader, writer = store._engine, store._writer

        async def floor_select() -> None:
            async with reader.connect() as connection:
                result = await connection.execute(
                    text(
                        "SELECT uid, modseq, flags FROM messages WHERE folder_id = :f ORDER BY uid"
                    ),
                    {"f": folder_id},
                )
                assert len(result.all()) == count

        async def store_select() -> None:
            await store.folder_status(ALICE, "INBOX")
            assert len(await store.fetch_records(ALICE, "INBOX", every)) == count

        async def floor_resync() -> None:
            async with reader.connect() as connection:
                await connection.execute(
                    text("SELECT highestmodseq FROM folders WHERE id = :f"), {"f": folder_id}
                )

        async def store_resync() -> None:
            status = await store.folder_status(ALICE, "INBOX")
            changes = await store.changes_since(ALICE, "INBOX", status.highestmodseq)
            assert not changes.records

        rows.append(await compare("select", store_select, floor_select, repeat))
        rows.append(await compare("resync", store_resync, floor_resync, repeat))

        flip = iter(range(10**9))

        async def store_flags() -> None:
            flag = f"$k{next(flip)}"  # a new keyword each run: every message changes
            update = await store.update_flags(
                ALICE, "INBOX", every, FlagMode.ADD, frozenset({flag})
            )
            assert len(update.updated) == count

        async def floor_flags() -> None:
            async with writer.begin() as connection:
                await connection.execute(
                    text("UPDATE messages SET flags = flags || ' x', modseq = modseq + 1"
                         " WHERE folder_id = :f"),
                    {"f": folder_id},
                )  # fmt: skip

        rows.append(await compare("store", store_flags, floor_flags, repeat))

        half = every[::2]
        store_ms, floor_ms = [], []
        for _ in range(repeat):
            await store.update_flags(ALICE, "INBOX", half, FlagMode.ADD, frozenset({"\\Deleted"}))
            store_ms.append(await timed(lambda: store.expunge(ALICE, "INBOX")))
            # Put the rows back under new UIDs for the next run, outside the timing.
            await store.copy_messages(ALICE, "INBOX", every[1::2][: len(half)], "INBOX")
            every = [r.uid for r in await store.list_messages(ALICE, "INBOX")]
            half = every[::2]

            async def floor_expunge(targets: list[int] = half) -> None:
                async with writer.begin() as connection:
                    await connection.execute(
                        text("DELETE FROM messages WHERE folder_id = :f AND uid = :u"),
                        [{"f": folder_id, "u": uid} for uid in targets],
                    )

            floor_ms.append(await timed(floor_expunge))
            await store.copy_messages(ALICE, "INBOX", every[1::2][: len(half)], "INBOX")
            every = [r.uid for r in await store.list_messages(ALICE, "INBOX")]
            half = every[::2]
        rows.append(("expunge", statistics.median(store_ms), statistics.median(floor_ms)))
    finally:
        await store.close()
    return rows


async def compare(
    name: str,
    ours: Callable[[], Awaitable[None]],
    floor: Callable[[], Awaitable[None]],
    repeat: int,
) -> tuple[str, float, float]:
    await ours()  # warm caches and statement compilation once
    await floor()
    store_ms = [await timed(ours) for _ in range(repeat)]
    floor_ms = [await timed(floor) for _ in range(repeat)]
    return name, statistics.median(store_ms), statistics.median(floor_ms)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--engines", default="sqlite,postgresql")
    args = parser.parse_args()

    print(f"| engine | operation ({args.messages:,} messages) | store ms | floor ms | ratio |")
    print("|---|---|---:|---:|---:|")
    for engine in args.engines.split(","):
        if engine == "sqlite":
            with tempfile.TemporaryDirectory() as scratch:
                url = f"sqlite+aiosqlite:///{Path(scratch) / 'bench.db'}"
                rows = await run_engine(url, args.messages, args.repeat)
        else:
            admin = os.environ.get(
                "PLI_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
            )
            name = f"pli_bench_{uuid.uuid4().hex[:8]}"
            connection = await asyncpg.connect(admin)
            try:
                await connection.execute(f'CREATE DATABASE "{name}"')
                base = admin.rsplit("/", 1)[0]
                try:
                    rows = await run_engine(f"{base}/{name}", args.messages, args.repeat)
                finally:
                    await connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            finally:
                await connection.close()
        for operation, ours, floor in rows:
            print(f"| {engine} | {operation} | {ours:.1f} | {floor:.1f} | {ours / floor:.1f}× |")


if __name__ == "__main__":
    asyncio.run(main())

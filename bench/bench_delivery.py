"""Delivery throughput: the sealed, durable path beside the bare-insert floor.

For each engine (SQLite, PostgreSQL), message size (5 KB, 1 MB) and number of concurrent
senders (1, 32), it measures:

- **pli**: ``DeliveryService.send`` end to end: seal (XChaCha20-Poly1305 secretstream,
  Ed25519), write and fsync the blob, commit the rows (group commit), notify;
- **floor**: the same engine inserting a row of the same size per message, one transaction
  (so one fsync) per message, with the same durability settings: what "durable" costs
  without Pli.

Prints a Markdown table (messages/s, CPU ms per message, ratio pli/floor).

    python -m bench.bench_delivery [--quick] [--engines sqlite,postgresql]

PostgreSQL: ``PLI_BENCH_DATABASE_URL`` (an admin URL; default the local server) — a
throwaway database is created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from sqlalchemy import LargeBinary, bindparam, event, text
from sqlalchemy.ext.asyncio import create_async_engine

from messaging import Address, Draft, MailboxKind, build_message
from pli.settings import load_settings
from pli.wiring import initialise, open_pli

FAST_KDF = {
    "passphrase_opslimit": 1,
    "passphrase_memlimit": 8192,
    "app_password_opslimit": 1,
    "app_password_memlimit": 8192,
}


@dataclass
class Result:
    engine: str
    size: str
    concurrency: int
    pli_rate: float
    pli_cpu_ms: float
    floor_rate: float
    floor_cpu_ms: float


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def make_message(sender: Address, recipient: Address, size: int) -> bytes:
    draft = Draft(sender=sender, recipients=(recipient,), subject="bench", body="x" * size)
    return build_message(draft, message_id="<b@pli.test>", date=datetime(2026, 1, 1, tzinfo=UTC))


async def run_tasks(
    count: int, concurrency: int, job: Callable[[], Awaitable[None]]
) -> tuple[float, float]:
    queue = list(range(count))

    async def worker() -> None:
        while queue:
            queue.pop()
            await job()

    cpu0, t0 = cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - t0, cpu_seconds() - cpu0


async def bench_pli(
    url: str, home: Path, size: int, concurrency: int, count: int
) -> tuple[float, float]:
    settings = load_settings(home, database_url=url, demo=True, **FAST_KDF)
    initialise(settings)
    pli = await open_pli(settings)
    try:
        sender = Address.parse(f"s{uuid.uuid4().hex[:8]}@medecin.pli.test")
        recipient = Address.parse(f"r{uuid.uuid4().hex[:8]}@medecin.pli.test")
        for address in (sender, recipient):
            await pli.accounts.create(address, MailboxKind.PER, "bench", "bench passphrase")
        keys = (await pli.accounts.unlock(sender, "bench passphrase")).keys
        raw = make_message(sender, recipient, size)

        async def job() -> None:
            await pli.delivery.send(sender, keys, [recipient], raw)

        await run_tasks(min(20, count), concurrency, job)  # warm up
        elapsed, cpu = await run_tasks(count, concurrency, job)
    finally:
        await pli.close()
    return count / elapsed, cpu / count * 1000


async def bench_floor(url: str, size: int, concurrency: int, count: int) -> tuple[float, float]:
    is_sqlite = url.startswith("sqlite")
    engine = (
        create_async_engine(url, pool_size=concurrency + 1)
        if not is_sqlite
        else (create_async_engine(url))
    )
    if is_sqlite:

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(conn, _record) -> None:
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

    blob = os.urandom(size)
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS bare"))
        await conn.execute(
            text(
                "CREATE TABLE bare (id INTEGER PRIMARY KEY, data BYTEA)"
                if not is_sqlite
                else "CREATE TABLE bare (id INTEGER PRIMARY KEY, data BLOB)"
            )
        )
    counter = iter(range(10**9))
    lock = asyncio.Lock() if is_sqlite else None

    insert_row = text("INSERT INTO bare (id, data) VALUES (:id, :data)").bindparams(
        bindparam("data", type_=LargeBinary)
    )

    async def job() -> None:
        ident = next(counter)

        async def insert() -> None:
            async with engine.begin() as conn:  # one transaction, one fsync, per message
                await conn.execute(insert_row, {"id": ident, "data": blob})

        if lock is not None:
            async with lock:  # SQLite has one writer; queue in Python, not in busy loops
                await insert()
        else:
            await insert()

    await run_tasks(min(20, count), concurrency, job)
    elapsed, cpu = await run_tasks(count, concurrency, job)
    await engine.dispose()
    return count / elapsed, cpu / count * 1000


async def fresh_pg_database(admin: str) -> str:
    name = f"pli_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name


async def drop_pg_database(admin: str, url: str) -> None:
    conn = await asyncpg.connect(admin)
    await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer messages")
    parser.add_argument("--engines", default="sqlite,postgresql")
    args = parser.parse_args()
    admin = os.environ.get("PLI_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    plans = [(5 * 1024, "5 KB"), (1024 * 1024, "1 MB")]
    results: list[Result] = []
    for engine in args.engines.split(","):
        for size, label in plans:
            for concurrency in (1, 32):
                count = (300 if size < 100_000 else 60) * (1 if concurrency == 1 else 4)
                if args.quick:
                    count //= 4
                with tempfile.TemporaryDirectory(dir=os.environ.get("PLI_BENCH_DIR")) as tmp:
                    home = Path(tmp)
                    if engine == "sqlite":
                        url = f"sqlite+aiosqlite:///{home / 'pli.db'}"
                        floor_url = f"sqlite+aiosqlite:///{home / 'floor.db'}"
                    else:
                        url = await fresh_pg_database(admin)
                        floor_url = await fresh_pg_database(admin)
                    try:
                        rate, cpu = await bench_pli(url, home / "home", size, concurrency, count)
                        frate, fcpu = await bench_floor(floor_url, size, concurrency, count)
                    finally:
                        if engine != "sqlite":
                            await drop_pg_database(admin, url)
                            await drop_pg_database(admin, floor_url)
                results.append(Result(engine, label, concurrency, rate, cpu, frate, fcpu))
                r = results[-1]
                print(
                    f"| {r.engine} | {r.size} | {r.concurrency} | {r.pli_rate:.0f} | "
                    f"{r.pli_cpu_ms:.2f} | {r.floor_rate:.0f} | {r.floor_cpu_ms:.2f} | "
                    f"{r.pli_rate / r.floor_rate:.2f}× |",
                    flush=True,
                )
    print()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}, "
        f"{platform.platform()}"
    )


HEADER = (
    "| engine | size | senders | pli msg/s | pli CPU ms/msg | floor msg/s | "
    "floor CPU ms/msg | pli / floor |\n|---|---|---|---|---|---|---|---|"
)

if __name__ == "__main__":
    print(HEADER)
    asyncio.run(main())

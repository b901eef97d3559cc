"""Benchmark of the directory: import, re-import and search, on SQLite and PostgreSQL.

    python -m bench.bench_directory [--rows 535000] [--file extraction.csv]
        [--engines sqlite,postgresql] [--pg-url postgresql://postgres@127.0.0.1/postgres]
        [--queries 2000] [--workdir /tmp/pli-bench]

Each import runs in a child process of its own, so its peak resident memory
(``ru_maxrss``) is the import's alone. Searches run in this process against the imported
directory, after a warm-up: prefix searches on name and city as a user types them, the
family name cut to 3-7 characters and the city to 3-6, both as fields
(``name=…, city=…``) and as free text (``"dup lyo"``). Prints one table; the goals of
issue 3 are import < 60 s and < 300 MB, re-import < 30 s (SQLite), search p50 < 2 ms and
p99 < 10 ms (both engines).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.gen_extraction import generate
from directory import SqlDirectory
from directory.extraction import read_extraction
from messaging.directory import SearchQuery
from messaging.types import MailboxKind


@dataclass
class Measure:
    engine: str
    rows: int
    import_s: float
    import_mb: float
    reimport_s: float
    reimport_mb: float
    searches: dict[str, tuple[float, float, float]]  # mode -> p50, p99, max (ms)


def _child_import(url: str, path: str) -> None:
    """Run in a child: one import, then report time and peak memory as JSON."""

    async def run() -> dict[str, object]:
        directory = await SqlDirectory.open(url)
        try:
            start = time.perf_counter()
            with open(path, "rb") as lines:
                report = await directory.import_extraction(lines)
            seconds = time.perf_counter() - start
        finally:
            await directory.close()
        return {"seconds": seconds, "report": report.__repr__()}

    result = asyncio.run(run())
    result["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def _import(url: str, path: Path) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_directory", "_import", url, str(path)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"    {result['report']}", file=sys.stderr)
    return float(result["seconds"]), float(result["maxrss_mb"])


def _queries(path: Path, count: int, seed: int) -> dict[str, list[SearchQuery]]:
    """Name and city prefixes of practitioners picked from the file (about 1 line in 100)."""
    rng = random.Random(seed)
    picked: list[tuple[str, str]] = []
    with path.open("rb") as lines:
        for row in read_extraction(lines):
            city = row.values[27].partition(" ")[2]
            if row.kind is MailboxKind.PER and city and rng.random() < 0.01:
                picked.append((row.values[9].lower(), city.lower()))
    rng.shuffle(picked)
    fielded, free = [], []
    for family, city in picked[:count]:
        name = family[: rng.randint(3, max(3, min(7, len(family))))]
        town = city[: rng.randint(3, max(3, min(6, len(city))))]
        fielded.append(SearchQuery(name=name, city=town))
        free.append(SearchQuery(text=f"{name} {town}"))
    return {"name=, city=": fielded, "free text": free}


async def _search(url: str, queries: dict[str, list[SearchQuery]]) -> dict[str, tuple[float, ...]]:
    directory = await SqlDirectory.open(url)
    results: dict[str, tuple[float, ...]] = {}
    try:
        for mode, batch in queries.items():
            for query in batch[:100]:
                await directory.search(query)  # warm-up: caches, prepared plans
            timings = []
            for query in batch:
                start = time.perf_counter()
                await directory.search(query)
                timings.append((time.perf_counter() - start) * 1000)
            timings.sort()
            results[mode] = (
                statistics.median(timings),
                timings[min(len(timings) - 1, int(len(timings) * 0.99))],
                timings[-1],
            )
    finally:
        await directory.close()
    return results


async def _create_pg_database(admin: str) -> str:
    import asyncpg

    name = f"pli_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return admin.rsplit("/", 1)[0] + "/" + name


async def _drop_pg_database(admin: str, url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await conn.close()


def _measure(
    engine: str, url: str, path: Path, rows: int, queries: dict[str, list[SearchQuery]]
) -> Measure:
    print(f"{engine}: import", file=sys.stderr)
    first = _import(url, path)
    print(f"{engine}: re-import", file=sys.stderr)
    again = _import(url, path)
    print(f"{engine}: search", file=sys.stderr)
    searches = asyncio.run(_search(url, queries))
    return Measure(engine, rows, *first, *again, searches)  # type: ignore[arg-type]


def _table(measures: list[Measure], queries: int) -> str:
    lines = [
        f"{'engine':<11}{'rows':>9}{'import':>10}{'peak':>9}{'re-import':>11}{'peak':>9}"
        f"  search ({queries} queries)       p50      p99      max",
    ]
    for m in measures:
        head = (
            f"{m.engine:<11}{m.rows:>9}{m.import_s:>9.1f}s{m.import_mb:>6.0f} MB"
            f"{m.reimport_s:>10.1f}s{m.reimport_mb:>6.0f} MB"
        )
        for number, (mode, (p50, p99, worst)) in enumerate(m.searches.items()):
            prefix = head if number == 0 else " " * len(head)
            lines.append(f"{prefix}  {mode:<28}{p50:>6.2f}ms{p99:>7.2f}ms{worst:>7.1f}ms")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["_import"]:
        _child_import(args_in[1], args_in[2])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=535_000)
    parser.add_argument("--file", type=Path, help="an extraction to use instead of generating")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "PLI_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="an admin URL: a database is created for the run and dropped after",
    )
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "pli-bench")
    args = parser.parse_args(args_in)
    args.workdir.mkdir(parents=True, exist_ok=True)
    path = args.file or args.workdir / f"extraction-{args.rows}-{args.seed}.csv"
    if not path.exists():
        print(f"generating {path}", file=sys.stderr)
        with path.open("wb") as out:
            out.writelines(generate(args.rows, args.seed))
    rows = sum(1 for _ in path.open("rb")) - 1
    queries = _queries(path, args.queries, args.seed)
    measures = []
    for engine in args.engines.split(","):
        if engine == "sqlite":
            db = args.workdir / "bench.db"
            for leftover in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
                leftover.unlink(missing_ok=True)
            measures.append(_measure(engine, f"sqlite+aiosqlite:///{db}", path, rows, queries))
        elif engine == "postgresql":
            admin = args.pg_url.replace("postgresql+asyncpg://", "postgresql://")
            url = asyncio.run(_create_pg_database(admin))
            try:
                measures.append(_measure(engine, url, path, rows, queries))
            finally:
                asyncio.run(_drop_pg_database(admin, url))
        else:
            parser.error(f"unknown engine {engine!r}")
    print(_table(measures, len(queries["free text"])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

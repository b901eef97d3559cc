"""The application API under load: sends per second and latency, 50 concurrent clients.

For each engine (SQLite, PostgreSQL) it starts a real ``pli serve`` (its own process, port
0, demo mode), creates an API client with ``pli api-client create``, and drives it over
HTTP from this process with 50 concurrent connections:

- **note 5 KB, closed loop**: 50 senders back to back (``POST /v1/messages/notes``): the
  throughput ceiling, with p50/p99 latency;
- **note 5 KB at 200 req/s, open loop**: requests started on a fixed schedule whatever the
  answers (so queueing shows in the latency, no coordinated omission): the goal is
  p99 < 50 ms;
- **document 1 MB, closed loop**: ``POST /v1/messages/documents`` with a 1 MB PDF
  (multipart, streamed to disk, XDM archive built, sealed);
- **floor**: ``GET /healthz`` in the same closed loop: what the HTTP stack alone costs;
  the table gives sends/s as a ratio of it.

Every send is acknowledged only after its commit (201), as in production.

    python -m bench.bench_api [--quick] [--engines sqlite,postgresql]

PostgreSQL: ``PLI_BENCH_DATABASE_URL`` (an admin URL; default the local server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

from tests.messaging.kinds.samples import JEANNE, pdf

FAST = {
    "PLI_PASSPHRASE_OPSLIMIT": "1",
    "PLI_PASSPHRASE_MEMLIMIT": "8192",
    "PLI_APP_PASSWORD_OPSLIMIT": "1",
    "PLI_APP_PASSWORD_MEMLIMIT": "8192",
}
APP = "lis@ch-exemple.pli.test"
DOCTOR = "sophie.martin@medecin.pli.test"
CONCURRENCY = 50


@dataclass
class Row:
    engine: str
    workload: str
    requests: int
    rate: float
    p50: float
    p99: float
    errors: int


class Server:
    def __init__(self, home: Path, database_url: str) -> None:
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PLI_")}
        self.env |= FAST | {"PLI_HOME": str(home), "PLI_DATABASE_URL": database_url}
        self.proc: subprocess.Popen[str] | None = None
        self.log = (home.parent / "serve.log").open("w")
        self.url = ""

    def pli(self, *args: str, stdin: str = "") -> str:
        done = subprocess.run(
            [sys.executable, "-m", "pli", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            check=True,
            timeout=120,
        )
        return done.stdout

    def setup(self) -> tuple[str, str]:
        self.pli("init", "--demo", "--domain", "pli.test")
        self.pli("account", "create", APP, "--kind", "APP", stdin="bench passphrase\n")
        self.pli("account", "create", DOCTOR, "--kind", "PER", stdin="bench passphrase\n")
        out = self.pli(
            "api-client",
            "create",
            APP,
            "--name",
            "Bench",
            "--scope",
            "send:note",
            "--scope",
            "send:document",
            "--rate",
            "1000000",
            stdin="bench passphrase\n",
        )
        fields = dict(line.split(None, 1) for line in out.splitlines() if line.strip())
        return fields["client_id"].strip(), fields["client_secret"].strip()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pli", "serve"],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=self.env | {"PLI_HTTP_PORT": "0", "PLI_LOG_LEVEL": "WARNING"},
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line or line.startswith("ready"):
                break
            if line.startswith("http "):
                self.url = line.split()[1]
        assert self.url, "pli serve did not start"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(60)
        self.log.close()


def note_body() -> dict[str, object]:
    return {"to": [DOCTOR], "subject": "Résultats", "body": "x" * 5 * 1024}


def document_parts(blob: bytes) -> tuple[dict[str, str], dict[str, tuple[str, bytes, str]]]:
    metadata = {
        "to": [DOCTOR],
        "patient": {
            "ins": str(JEANNE.ins),
            "birth_name": JEANNE.birth_name,
            "first_given_name": JEANNE.first_given_name,
            "birth_date": JEANNE.birth_date.isoformat(),
            "sex": "F",
        },
        "documents": [
            {"title": "Imagerie", "type_code": "11488-4", "date": "2026-11-20", "pdf": "report"}
        ],
    }
    return {"metadata": json.dumps(metadata)}, {"report": ("cr.pdf", blob, "application/pdf")}


def big_pdf(size: int) -> bytes:
    base = pdf("Imagerie")
    # A comment before %%EOF keeps it a PDF for libmagic and readers.
    return base.replace(b"%%EOF", b"%" + b"0" * (size - len(base)) + b"\n%%EOF")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class Connection:
    """One keep-alive HTTP/1.1 connection sending prepared requests.

    httpx costs more CPU per request than the server does on two cores; a raw client keeps
    the load generator from being what is measured.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
        return cls(reader, writer)

    async def send(self, request: bytes) -> int:
        self.writer.write(request)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


def prepare(method: str, path: str, host: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


Request = Callable[[], bytes]


async def closed_loop(
    connections: list[Connection], make: Request, total: int
) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    errors = 0
    remaining = total

    async def worker(connection: Connection) -> None:
        nonlocal remaining, errors
        while remaining > 0:
            remaining -= 1
            request = make()
            start = time.perf_counter()
            status = await connection.send(request)
            latencies.append((time.perf_counter() - start) * 1000)
            if status >= 300:
                errors += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    return total / (time.perf_counter() - began), latencies, errors


async def open_loop(
    connections: list[Connection], make: Request, rate: float, seconds: float
) -> tuple[float, list[float], int]:
    """Requests scheduled at ``rate`` whatever the answers; latency counts from the schedule
    (time queued for a free connection included: no coordinated omission)."""
    latencies: list[float] = []
    errors = 0
    free: asyncio.Queue[Connection] = asyncio.Queue()
    for connection in connections:
        free.put_nowait(connection)

    async def one(scheduled: float) -> None:
        nonlocal errors
        connection = await free.get()
        try:
            status = await connection.send(make())
        finally:
            free.put_nowait(connection)
        latencies.append((time.perf_counter() - scheduled) * 1000)
        if status >= 300:
            errors += 1

    tasks = []
    began = time.perf_counter()
    count = int(rate * seconds)
    for i in range(count):
        scheduled = began + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    return count / (time.perf_counter() - began), latencies, errors


def multipart(
    fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]
) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    for name, (filename, data, content_type) in files.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'.encode()
            + data
            + b"\r\n"
        )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), boundary


async def run_engine(engine: str, database_url: str, quick: bool) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="pli-bench-api-") as tmp:
        server = Server(Path(tmp) / "home", database_url)
        client_id, secret = server.setup()
        server.start()
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
                token = (
                    await http.post(
                        "/v1/oauth/token",
                        data={"grant_type": "client_credentials"},
                        auth=(client_id, secret),
                    )
                ).json()["access_token"]
            host, port = server.url.removeprefix("http://").split(":")
            connections = [await Connection.open(host, int(port)) for _ in range(CONCURRENCY)]
            auth = {"Authorization": f"Bearer {token}"}
            note = json.dumps(note_body()).encode()
            data, files = document_parts(big_pdf(1024 * 1024))
            document, boundary = multipart(data, files)

            def send_note() -> bytes:
                headers = auth | {
                    "Idempotency-Key": uuid.uuid4().hex,
                    "Content-Type": "application/json",
                }
                return prepare("POST", "/v1/messages/notes", host, note, headers)

            def send_document() -> bytes:
                headers = auth | {
                    "Idempotency-Key": uuid.uuid4().hex,
                    "Content-Type": f"multipart/form-data; boundary={boundary}",
                }
                return prepare("POST", "/v1/messages/documents", host, document, headers)

            def health() -> bytes:
                return prepare("GET", "/healthz", host, b"", {})

            scale = 0.2 if quick else 1.0
            await closed_loop(connections, send_note, 100)  # warm up
            plans: list[tuple[str, Callable[[], Awaitable[tuple[float, list[float], int]]]]] = [
                (
                    "floor: GET /healthz",
                    lambda: closed_loop(connections, health, int(3000 * scale)),
                ),
                (
                    "note 5 KB, closed loop",
                    lambda: closed_loop(connections, send_note, int(2000 * scale)),
                ),
                (
                    "note 5 KB at 200 req/s",
                    lambda: open_loop(connections, send_note, 200, 15 * scale),
                ),
                (
                    "document 1 MB, closed loop",
                    lambda: closed_loop(connections, send_document, int(200 * scale)),
                ),
            ]
            for name, plan in plans:
                rate, latencies, errors = await plan()
                rows.append(
                    Row(
                        engine,
                        name,
                        len(latencies),
                        rate,
                        statistics.median(latencies),
                        percentile(latencies, 0.99),
                        errors,
                    )
                )
                print(
                    f"  {engine} {name}: {rate:.0f}/s p50 {rows[-1].p50:.1f} ms "
                    f"p99 {rows[-1].p99:.1f} ms errors {errors}",
                    file=sys.stderr,
                )
            for connection in connections:
                connection.close()
        finally:
            server.stop()
    return rows


async def postgres_database() -> tuple[str, Callable[[], Awaitable[None]]]:
    admin = os.environ.get(
        "PLI_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    name = f"pli_bench_api_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(admin)
    await connection.execute(f'CREATE DATABASE "{name}"')
    await connection.close()
    base = admin.rsplit("/", 1)[0]

    async def drop() -> None:
        conn = await asyncpg.connect(admin)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()

    return f"{base}/{name}", drop


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--engines", default="sqlite,postgresql")
    args = parser.parse_args()
    rows: list[Row] = []
    for engine in args.engines.split(","):
        if engine == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                rows += await run_engine(engine, f"sqlite+aiosqlite:///{tmp}/bench.db", args.quick)
        else:
            url, drop = await postgres_database()
            try:
                rows += await run_engine(engine, url, args.quick)
            finally:
                await drop()
    floors = {r.engine: r.rate for r in rows if r.workload.startswith("floor")}
    print(
        f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {CONCURRENCY} concurrent connections\n"
    )
    print("| engine | workload | requests | req/s | p50 ms | p99 ms | errors | vs floor |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ratio = r.rate / floors[r.engine] if r.engine in floors else float("nan")
        print(
            f"| {r.engine} | {r.workload} | {r.requests} | {r.rate:.0f} | {r.p50:.1f} | "
            f"{r.p99:.1f} | {r.errors} | {ratio:.2f}× |"
        )


if __name__ == "__main__":
    asyncio.run(main())

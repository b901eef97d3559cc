"""What the patient rules cost a delivery: to a patient beside to a professional.

Both runs are ``DeliveryService.send`` end to end through ``pli``'s wiring (seal, fsync,
group commit). To a professional no patient rule runs; to a patient the service reads the
header section, the patient's profile, blocks and threads, and commits a thread row, a
thread-message row and an access-history entry (for a ``document``) with the messages, the
history chained under a per-patient row lock. The peer is Pli's own professional path, so
the ratio is the price of the patient's rights.

Prints a Markdown table (messages/s, CPU ms per message, ratio patient/professional).

    python -m bench.bench_patient_delivery [--quick] [--engines sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import uuid
from pathlib import Path

from bench.bench_delivery import (
    FAST_KDF,
    drop_pg_database,
    fresh_pg_database,
    run_tasks,
)
from messaging import Address, Draft, MailboxKind, MessageKind, build_message
from pli.settings import load_settings
from pli.wiring import initialise, open_pli


async def bench(
    url: str, home: Path, to_patient: bool, concurrency: int, count: int
) -> tuple[float, float]:
    settings = load_settings(home, database_url=url, demo=True, **FAST_KDF)
    initialise(settings)
    pli = await open_pli(settings)
    try:
        doctor = Address.parse(f"d{uuid.uuid4().hex[:8]}@medecin.pli.test")
        kind = MailboxKind.PAT if to_patient else MailboxKind.PER
        domain = "patient.pli.test" if to_patient else "medecin.pli.test"
        recipient = Address.parse(f"{uuid.uuid4().int % 10**15:015d}@{domain}")
        await pli.accounts.create(doctor, MailboxKind.PER, "bench", "bench passphrase")
        await pli.accounts.create(recipient, kind, "bench", "bench passphrase")
        keys = (await pli.accounts.unlock(doctor, "bench passphrase")).keys
        draft = Draft(
            sender=doctor,
            recipients=(recipient,),
            subject="Compte rendu",
            body="x" * 5 * 1024,
            kind=MessageKind.DOCUMENT,
        )

        async def job() -> None:
            raw = build_message(draft, message_id=f"<{uuid.uuid4().hex}@b>", date=pli.clock.now())
            await pli.delivery.send(doctor, keys, [recipient], raw)

        await run_tasks(min(20, count), concurrency, job)  # warm up
        elapsed, cpu = await run_tasks(count, concurrency, job)
    finally:
        await pli.close()
    return count / elapsed, cpu / count * 1000


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer messages")
    parser.add_argument("--engines", default="sqlite,postgresql")
    args = parser.parse_args()
    admin = os.environ.get("PLI_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    print(
        "| engine | senders | professional msg/s | CPU ms | patient msg/s | CPU ms "
        "| patient / professional |"
    )
    print("|---|---|---|---|---|---|---|")
    for engine in args.engines.split(","):
        for concurrency in (1, 32):
            count = 300 * (1 if concurrency == 1 else 4) // (4 if args.quick else 1)
            rates = []
            for to_patient in (False, True):
                with tempfile.TemporaryDirectory(dir=os.environ.get("PLI_BENCH_DIR")) as tmp:
                    home = Path(tmp)
                    if engine == "sqlite":
                        url = f"sqlite+aiosqlite:///{home / 'pli.db'}"
                    else:
                        url = await fresh_pg_database(admin)
                    try:
                        rates.append(
                            await bench(url, home / "home", to_patient, concurrency, count)
                        )
                    finally:
                        if engine != "sqlite":
                            await drop_pg_database(admin, url)
            (pro, pro_cpu), (pat, pat_cpu) = rates
            print(
                f"| {engine} | {concurrency} | {pro:.0f} | {pro_cpu:.2f} | {pat:.0f} | "
                f"{pat_cpu:.2f} | {pat / pro:.2f}× |",
                flush=True,
            )
    print()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}, "
        f"{platform.platform()}"
    )


if __name__ == "__main__":
    asyncio.run(main())

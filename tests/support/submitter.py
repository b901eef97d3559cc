"""A load generator for crash tests: submits notes concurrently and prints ``ACK`` lines.

``python -m tests.support.submitter SENDER RECIPIENT PASSPHRASE_FILE COUNT CONCURRENCY``
(settings from ``PLI_*``). A line ``ACK <index> <envelope_id>`` is printed and flushed only
after the delivery service returned, i.e. after the commit: exactly what a client is told.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

from messaging import Address, Draft, build_message
from pli.settings import load_settings
from pli.wiring import open_pli


def message(sender: Address, recipient: Address, index: int) -> bytes:
    draft = Draft(
        sender=sender,
        recipients=(recipient,),
        subject=f"crash test {index}",
        body=f"message number {index}\n" + "x" * 2000,
    )
    return build_message(
        draft, message_id=f"<crash-{index}@pli.test>", date=datetime(2026, 1, 1, tzinfo=UTC)
    )


async def main(argv: list[str]) -> None:
    sender, recipient = Address.parse(argv[0]), Address.parse(argv[1])
    passphrase = Path(argv[2]).read_text().strip()
    count, concurrency = int(argv[3]), int(argv[4])
    pli = await open_pli(load_settings())
    unlocked = await pli.accounts.unlock(sender, passphrase)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            index = queue.get_nowait()
            sent = await pli.delivery.send(
                sender, unlocked.keys, [recipient], message(sender, recipient, index)
            )
            sys.stdout.write(f"ACK {index} {sent.envelope_id}\n")
            sys.stdout.flush()

    sys.stdout.write("READY\n")
    sys.stdout.flush()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    await pli.close()
    sys.stdout.write("DONE\n")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))

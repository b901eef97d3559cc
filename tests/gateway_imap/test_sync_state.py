"""CONDSTORE / QRESYNC resynchronisation, and changes made by another process reaching an
IDLE session within a second (two gateways sharing one database, on both engines)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from messaging.types import FlagMode
from tests.gateway_imap.conftest import Gateway, message, start_gateway
from tests.gateway_imap.rawclient import Raw
from tests.support.databases import fresh_database


async def login(gateway: Gateway, user: object, password: str) -> Raw:
    client = await Raw.connect(gateway.imaps_port, gateway.client_context())
    lines = await client.command(f'LOGIN "{user}" "{password}"')
    assert lines[-1].split()[1] == b"OK", lines
    return client


def number(pattern: bytes, lines: list[bytes]) -> int:
    match = re.search(pattern, b"".join(lines))
    assert match is not None, (pattern, lines)
    return int(match.group(1))


async def test_qresync_reports_vanished_and_changed_flags(gateway: Gateway) -> None:
    alice, password = await gateway.person("alice")
    bob, _ = await gateway.person("bob")
    for i in range(6):
        await gateway.send(bob, alice, message(f"q{i}"))
    client = await login(gateway, alice, password)
    assert b"QRESYNC" in b"".join(await client.command("ENABLE QRESYNC"))
    lines = await client.command("SELECT INBOX")
    uidvalidity = number(rb"UIDVALIDITY (\d+)", lines)
    modseq = number(rb"HIGHESTMODSEQ (\d+)", lines)
    await client.command("UNSELECT")

    # Another session changes flags and expunges while this one is away.
    records = await gateway.store.list_messages(alice, "INBOX")
    await gateway.store.update_flags(
        alice, "INBOX", [records[1].uid], FlagMode.ADD, frozenset({"\\Flagged"})
    )
    await gateway.store.update_flags(
        alice, "INBOX", [records[3].uid, records[4].uid], FlagMode.ADD, frozenset({"\\Deleted"})
    )
    await gateway.store.expunge(alice, "INBOX")

    lines = await client.command(f"SELECT INBOX (QRESYNC ({uidvalidity} {modseq}))")
    joined = b"".join(lines)
    assert f"* VANISHED (EARLIER) {records[3].uid}:{records[4].uid}".encode() in joined
    assert re.search(
        rb"\* 2 FETCH \(UID %d FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)" % records[1].uid, joined
    )
    assert lines[-1].split()[1] == b"OK"

    # UID FETCH … (CHANGEDSINCE … VANISHED) says the same to an already selected session.
    lines = await client.command(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
    joined = b"".join(lines)
    assert b"VANISHED (EARLIER)" in joined and b"\\Flagged" in joined

    # A conditional STORE refused for a message changed since.
    lines = await client.command(
        f"UID STORE {records[1].uid} (UNCHANGEDSINCE {modseq}) +FLAGS (\\Seen)"
    )
    assert f"[MODIFIED {records[1].uid}]".encode() in lines[-1]
    await client.close()


async def test_noop_reports_expunges_and_new_messages_from_another_session(
    gateway: Gateway,
) -> None:
    alice, password = await gateway.person("alice")
    bob, _ = await gateway.person("bob")
    for i in range(3):
        await gateway.send(bob, alice, message(f"e{i}"))
    watcher = await login(gateway, alice, password)
    other = await login(gateway, alice, password)
    await watcher.command("SELECT INBOX")
    await other.command("SELECT INBOX")
    await other.command("STORE 2 +FLAGS.SILENT (\\Deleted)")
    await other.command("EXPUNGE")
    await gateway.send(bob, alice, message("late"))
    deadline = time.monotonic() + 5
    seen = b""
    while time.monotonic() < deadline and not (b"EXPUNGE" in seen and b"EXISTS" in seen):
        seen += b"".join(await watcher.command("NOOP"))
    assert b"* 2 EXPUNGE" in seen and b"* 3 EXISTS" in seen, seen
    lines = await watcher.command("FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    subjects = re.findall(rb"Subject: (\w+)", b"".join(lines))
    assert subjects == [b"e0", b"e2", b"late"]
    await watcher.close()
    await other.close()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
async def test_idle_hears_another_process_within_a_second(
    request: pytest.FixtureRequest, tmp_path: Path, engine: str
) -> None:
    async with fresh_database(request, engine, tmp_path) as url:
        first = await start_gateway(tmp_path / "one", url)
        second = await start_gateway(tmp_path / "two", url)
        try:
            alice, password = await first.person("alice")
            bob, _ = await first.person("bob")
            client = await login(first, alice, password)
            await client.command("SELECT INBOX")
            await client.send(b"i1 IDLE\r\n")
            assert (await client.line()).startswith(b"+ ")
            # Delivered by the other front: another store object, another change feed.
            await second.send(bob, alice, message("from the other front"))
            started = time.monotonic()
            line = await client.line(timeout=5)
            assert line == b"* 1 EXISTS\r\n", line
            assert time.monotonic() - started < 1.0
            await client.send(b"DONE\r\n")
            assert (await client.until(b"i1"))[-1].startswith(b"i1 OK")
            await client.close()
        finally:
            for gateway in (first, second):
                await gateway.server.close(grace=2)
                await gateway.store.close()

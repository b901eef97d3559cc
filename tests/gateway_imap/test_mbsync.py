"""Debian's mbsync (isync) against the gateway: two-way sync with flags both ways, over
STARTTLS and over implicit TLS."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from messaging.types import Address, FlagMode
from tests.gateway_imap.conftest import Gateway, message


def config(gateway: Gateway, user: Address, password: str, maildir: Path, *, implicit: bool) -> str:
    port = gateway.imaps_port if implicit else gateway.port
    ssl_type = "IMAPS" if implicit else "STARTTLS"
    return f"""
IMAPAccount pli
Host 127.0.0.1
Port {port}
User {user}
Pass {password}
SSLType {ssl_type}
CertificateFile {gateway.ca_file}
AuthMechs PLAIN
Timeout 30

IMAPStore remote
Account pli

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel pli
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
Sync All
"""


async def mbsync(rc: Path) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        ["mbsync", "-c", str(rc), "-a"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def maildir_files(folder: Path) -> list[Path]:
    return sorted([*(folder / "cur").glob("*"), *(folder / "new").glob("*")])


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "imaps"])
async def test_mbsync_two_way_sync_with_flags(
    gateway: Gateway, tmp_path: Path, implicit: bool
) -> None:
    alice, password = await gateway.person("alice")
    bob, _ = await gateway.person("bob")
    for i in range(3):
        await gateway.send(bob, alice, message(f"m{i}", f"body {i}\r\n"))
    maildir = tmp_path / "Mail"
    maildir.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(config(gateway, alice, password, maildir, implicit=implicit))

    first = await mbsync(rc)
    assert first.returncode == 0, first.stderr
    inbox = maildir_files(maildir / "INBOX")
    assert len(inbox) == 3
    assert all(f.read_bytes().startswith(b"X-Pli-Provenance: e2e;") for f in inbox)
    assert (maildir / "Sent").is_dir() and (maildir / "Trash").is_dir()

    # Local → server: mark one seen and flagged in the maildir.
    target = inbox[0]
    base = target.name.split(":2,")[0]
    target.rename(maildir / "INBOX" / "cur" / f"{base}:2,FS")
    # Server → local: flag another one from another session.
    records = await gateway.store.list_messages(alice, "INBOX")
    await gateway.store.update_flags(
        alice, "INBOX", [records[2].uid], FlagMode.ADD, frozenset({"\\Answered"})
    )
    # New on both sides: a delivery, and a message written into the maildir.
    await gateway.send(bob, alice, message("m3", "body 3\r\n"))
    (maildir / "INBOX" / "new" / "1700000000.local.test").write_bytes(
        message("written locally", "from the maildir\r\n")
    )

    second = await mbsync(rc)
    assert second.returncode == 0, second.stderr
    records = await gateway.store.list_messages(alice, "INBOX")
    assert len(records) == 5
    seen_flagged = [r for r in records if {"\\Seen", "\\Flagged"} <= r.flags]
    assert len(seen_flagged) == 1
    local = maildir_files(maildir / "INBOX")
    assert len(local) == 5
    assert any(f.name.endswith(("R", "RS")) or ":2,R" in f.name for f in local)

    # A no-change sync changes nothing and succeeds.
    third = await mbsync(rc)
    assert third.returncode == 0, third.stderr
    assert len(await gateway.store.list_messages(alice, "INBOX")) == 5

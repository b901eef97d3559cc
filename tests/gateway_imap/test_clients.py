"""Real mail clients as real processes (offlineimap3, fetchmail with IDLE, neomutt in batch
mode) and Python's IMAP libraries (imaplib, imapclient, aioimaplib) against the gateway."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path

import aioimaplib
import imapclient

from tests.gateway_imap.conftest import Gateway, literals, message


async def run(
    args: list[str],
    timeout: float = 120,
    *,
    input: str | None = None,  # noqa: A002 - subprocess's name
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    def call() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, capture_output=True, text=True, timeout=timeout, check=False, input=input, env=env
        )

    return await asyncio.to_thread(call)


async def test_offlineimap3_syncs_over_starttls_and_993(gateway: Gateway, tmp_path: Path) -> None:
    alice, password = await gateway.person("alice")
    bob, _ = await gateway.person("bob")
    for i in range(3):
        await gateway.send(bob, alice, message(f"o{i}"))
    for implicit in (False, True):
        home = tmp_path / ("993" if implicit else "143")
        home.mkdir()
        transport = (
            f"ssl = yes\nremoteport = {gateway.imaps_port}\n"
            if implicit
            else f"ssl = no\nstarttls = yes\nremoteport = {gateway.port}\n"
        )
        rc = home / "offlineimaprc"
        rc.write_text(
            f"""[general]
accounts = pli
metadata = {home}/meta

[Account pli]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {home}/mail

[Repository remote]
type = IMAP
remotehost = 127.0.0.1
{transport}remoteuser = {alice}
remotepass = {password}
sslcacertfile = {gateway.ca_file}
auth_mechanisms = PLAIN
"""
        )
        result = await run(["offlineimap", "-c", str(rc), "-o", "-u", "basic"])
        assert result.returncode == 0, result.stdout + result.stderr
        inbox = home / "mail" / "INBOX"
        files = [*(inbox / "cur").iterdir(), *(inbox / "new").iterdir()]
        assert len(files) == 3
        # A flag set locally reaches the server on the next run (over STARTTLS too: the
        # stalls once seen there were TLS 1.3 session tickets racing imaplib2's two
        # threads, and the server sends none; see pli.tls.server_context).
        first = sorted(files)[0]
        first.rename(inbox / "cur" / (first.name.split(":2,")[0] + ":2,F"))
        again = await run(["offlineimap", "-c", str(rc), "-o", "-u", "basic"])
        assert again.returncode == 0, again.stdout + again.stderr
    flagged = [
        r for r in await gateway.store.list_messages(alice, "INBOX") if "\\Flagged" in r.flags
    ]
    assert len(flagged) >= 1


async def test_fetchmail_idle_gets_a_message_delivered_while_it_waits(
    gateway: Gateway, tmp_path: Path
) -> None:
    alice, password = await gateway.person("alice")
    bob, _ = await gateway.person("bob")
    await gateway.send(bob, alice, message("before"))
    out = tmp_path / "out"
    out.mkdir()
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        f"set no syslog\n"
        f"poll localhost via 127.0.0.1 service {gateway.port} protocol IMAP auth password\n"
        f'  user "{alice}" password "{password}" is "root" here\n'
        f'  sslproto "tls1.2+" sslcertck sslcertfile "{gateway.ca_file}"\n'
        f'  sslcommonname "localhost"\n'
        f"  idle keep\n"
        f"  mda \"/bin/sh -c 'cat > {out}/msg.$$'\"\n"
    )
    rc.chmod(0o600)
    env = dict(os.environ, HOME=str(tmp_path))
    proc = await asyncio.to_thread(
        subprocess.Popen,
        [
            "fetchmail",
            "-v",
            "-f",
            str(rc),
            "--nodetach",
            "-d",
            "300",
            "--pidfile",
            str(tmp_path / "pid"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while len(list(out.iterdir())) < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        if len(list(out.iterdir())) != 1:
            proc.terminate()
            output, _ = await asyncio.to_thread(proc.communicate, None, 30)
            raise AssertionError(output.decode(errors="replace"))
        await asyncio.sleep(1.0)  # fetchmail is now in IDLE
        await gateway.send(bob, alice, message("pushed"))
        deadline = time.monotonic() + 30
        while len(list(out.iterdir())) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        contents = [p.read_bytes() for p in out.iterdir()]
        assert any(b"Subject: pushed" in c for c in contents), contents
    finally:
        proc.terminate()
        output, _ = await asyncio.to_thread(proc.communicate, None, 30)
    # The poll interval is 300 s: the second message can only have come through IDLE.
    assert b"IDLE\r\n" in output or b" IDLE" in output, output[-2000:]


async def test_neomutt_reads_and_copies_the_inbox_unattended(
    gateway: Gateway, tmp_path: Path
) -> None:
    """neomutt, scripted (no one at the keyboard): open the IMAP inbox over STARTTLS, copy
    every message to a local mbox, flag them, quit. It needs a terminal even when scripted,
    so ``script`` gives it a pseudo-terminal."""
    alice, password = await gateway.person("alice")
    bob, _ = await gateway.person("bob")
    for i in range(3):
        await gateway.send(bob, alice, message(f"n{i}", f"pour neomutt {i}\r\n"))
    out = tmp_path / "copied.mbox"
    muttrc = tmp_path / "muttrc"
    muttrc.write_text(
        f'set ssl_ca_certificates_file="{gateway.ca_file}"\n'
        "set ssl_starttls=yes\nset ssl_force_tls=yes\n"
        f'set imap_user="{alice}"\nset imap_pass="{password}"\n'
        "set imap_authenticators=plain\n"
        f'set folder="{tmp_path}"\n'
        "set confirmcreate=no\nset confirmappend=no\nset quit=yes\nset mbox_type=mbox\n"
        "set move=no\nset mark_old=no\nset wait_key=no\nset beep=no\n"
    )
    keys = (
        f"push '<tag-pattern>~A<enter><tag-prefix><copy-message>{out}<enter>"
        "<tag-prefix><set-flag>!<sync-mailbox><quit>'"
    )
    command = f'neomutt -n -F {muttrc} -f imap://127.0.0.1:{gateway.port}/INBOX -e "{keys}"'
    result = await run(
        ["script", "-qec", command, "/dev/null"],
        env=dict(os.environ, HOME=str(tmp_path), TERM="xterm"),
        timeout=60,
    )
    assert result.returncode == 0, result.stdout[-2000:]
    copied = out.read_bytes()
    assert copied.count(b"X-Pli-Provenance: e2e; signature=valid") == 3, result.stdout[-3000:]
    for i in range(3):
        assert f"pour neomutt {i}".encode() in copied
    flagged = [
        r for r in await gateway.store.list_messages(alice, "INBOX") if "\\Flagged" in r.flags
    ]
    assert len(flagged) == 3


async def test_imapclient_flags_search_copy_move_expunge(gateway: Gateway) -> None:
    alice, password = await gateway.person("alice")
    bob, _ = await gateway.person("bob")
    for i in range(5):
        await gateway.send(bob, alice, message(f"s{i}", f"corps numéro {i}\r\n"))

    def talk() -> None:
        client = imapclient.IMAPClient(
            "127.0.0.1",
            port=gateway.imaps_port,
            ssl=True,
            ssl_context=gateway.client_context(),
            timeout=30,
        )
        client.login(str(alice), password)
        caps = client.capabilities()
        for cap in (b"IDLE", b"UIDPLUS", b"MOVE", b"CONDSTORE", b"QRESYNC", b"SPECIAL-USE"):
            assert cap in caps
        client.enable("CONDSTORE")
        info = client.select_folder("INBOX")
        assert info[b"EXISTS"] == 5 and b"HIGHESTMODSEQ" in info
        uids = client.search(["ALL"])
        assert len(uids) == 5
        assert client.search(["SUBJECT", "s3"]) == [uids[3]]
        assert client.search(["TEXT", "numéro 2"], charset="UTF-8") == [uids[2]]
        assert client.search(["NOT", "SEEN"]) == uids
        client.add_flags(uids[:2], [imapclient.SEEN, b"$Label1"])
        assert client.search(["SEEN"]) == uids[:2]
        assert client.search(["OR", "KEYWORD", "$Label1", "SUBJECT", "s4"]) == [*uids[:2], uids[4]]
        modseq = client.folder_status("INBOX", ["HIGHESTMODSEQ"])[b"HIGHESTMODSEQ"]
        changed = client.fetch(uids, ["FLAGS"], modifiers=[f"CHANGEDSINCE {modseq - 1}"])
        assert set(changed) == set(uids[:2])
        client.create_folder("Dossiers/Cardiologie")
        client.copy(uids[0], "Dossiers/Cardiologie")
        client.move([uids[1]], "Dossiers/Cardiologie")
        assert len(client.search(["ALL"])) == 4
        client.set_flags(uids[2], [imapclient.DELETED])
        client.expunge()
        assert client.search(["ALL"]) == [uids[0], uids[3], uids[4]]
        status = client.folder_status("Dossiers/Cardiologie", ["MESSAGES", "UIDNEXT"])
        assert status[b"MESSAGES"] == 2
        folders = {f[2]: f[0] for f in client.list_folders()}
        assert b"\\Sent" in folders["Sent"]
        assert b"\\HasChildren" in folders["Dossiers"] or b"\\Noselect" in folders["Dossiers"]
        client.logout()

    await asyncio.to_thread(talk)


async def test_aioimaplib_idle_push_of_a_message_delivered_by_another_session(
    gateway: Gateway,
) -> None:
    alice, password = await gateway.person("alice")
    bob, _ = await gateway.person("bob")
    client = aioimaplib.IMAP4_SSL(
        host="127.0.0.1", port=gateway.imaps_port, ssl_context=gateway.client_context(), timeout=30
    )
    await client.wait_hello_from_server()
    assert (await client.login(str(alice), password)).result == "OK"
    assert (await client.select("INBOX")).result == "OK"
    idle = await client.idle_start(timeout=20)
    await gateway.send(bob, alice, message("pushed"))
    started = time.monotonic()
    pushed = await client.wait_server_push(timeout=10)
    assert time.monotonic() - started < 2.0
    assert any(b"EXISTS" in (line if isinstance(line, bytes) else line.encode()) for line in pushed)
    client.idle_done()
    assert (await asyncio.wait_for(idle, 10)).result == "OK"
    await client.logout()


async def test_imaplib_append_then_fetch_the_same_bytes(gateway: Gateway) -> None:
    alice, password = await gateway.person("alice")
    raw = message("appended", "kept byte for byte\r\n")

    def talk() -> None:
        client = gateway.imap(alice, password)
        typ, appended = client.append("INBOX", "(\\Seen)", None, raw)
        assert typ == "OK" and b"APPENDUID" in appended[0]
        client.select("INBOX")
        typ, data = client.fetch("1", "(FLAGS BODY.PEEK[])")
        assert typ == "OK"
        [(head, body)] = literals(data)
        assert b"\\Seen" in head
        assert body.endswith(raw) and body.startswith(b"X-Pli-Provenance: e2e; signature=valid")
        client.logout()

    await asyncio.to_thread(talk)

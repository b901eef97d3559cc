"""IMAP gateway vs Debian's Dovecot on the same mailbox content.

``python -m bench.bench_imap [-n 10000] [--database-url URL]``

Builds one mailbox of ``n`` messages in a fresh Pli data directory (delivered through the
real delivery service, so every message is sealed), writes the very bytes our gateway
serves (provenance header included) into a Maildir for Dovecot, starts ``pli serve`` and
``dovecot -F`` as separate processes on 127.0.0.1 (both over TLS), then measures, on each:

- SELECT + ``UID FETCH 1:* (UID FLAGS ENVELOPE)`` (warm: after one untimed run);
- ``UID FETCH 1:* BODY.PEEK[]`` (every body);
- an initial ``mbsync`` of the inbox into an empty Maildir, then a no-change resync.

Prints a table with the times and the ratio ours / Dovecot (lower is better).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import imaplib
import os
import pwd
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gateway_imap.provenance import serve as served_bytes
from messaging import Address, MailboxKind
from messaging.types import Provenance, SignatureStatus
from pli.settings import load_settings
from pli.wiring import initialise, open_pli, tls_files

PASSWORD_FILE = "app-password"


def sample(i: int) -> bytes:
    body = ("Compte rendu de consultation, ligne de texte.\r\n" * (20 + i % 40)).encode()
    return (
        f"From: Dr Expediteur <sender{i % 50}@ch-x.fr>\r\n"
        f"To: Dr Destinataire <bench@medecin.pli.localhost>\r\n"
        f"Subject: Message {i} de la suite de mesure\r\n"
        f"Date: Sun, 22 Nov 2026 09:{i % 60:02d}:00 +0100\r\n"
        f"Message-ID: <bench-{i}@ch-x.fr>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    ).encode() + body


async def populate(home: Path, database_url: str | None, count: int) -> tuple[Address, str]:
    overrides: dict[str, object] = {"demo": True, "domain": "pli.localhost"}
    if database_url:
        overrides["database_url"] = database_url
    settings = load_settings(home, **overrides)
    initialise(settings)
    pli = await open_pli(settings)
    try:
        me = Address.parse("bench@medecin.pli.localhost")
        peer = Address.parse("sender@medecin.pli.localhost")
        for address in (me, peer):
            await pli.accounts.create(address, MailboxKind.PER, address.local, "bench passphrase")
        unlocked = await pli.accounts.unlock(peer, "bench passphrase")
        mine = await pli.accounts.unlock(me, "bench passphrase")
        password = (await pli.accounts.create_app_password(mine, "bench")).password
        batch = 64
        for start in range(0, count, batch):
            await asyncio.gather(
                *(
                    pli.delivery.send(peer, unlocked.keys, [me], sample(i))
                    for i in range(start, min(count, start + batch))
                )
            )
        return me, password
    finally:
        await pli.close()


def dovecot_config(root: Path, port: int, cert: Path, key: Path, user: str, group: str) -> Path:
    (root / "run").mkdir(parents=True)
    passwd = root / "passwd"
    passwd.write_text("bench@medecin.pli.localhost:{PLAIN}bench::::::\n")
    conf = root / "dovecot.conf"
    conf.write_text(
        f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
auth_mechanisms = plain
passdb {{
  driver = passwd-file
  args = {passwd}
}}
userdb {{
  driver = static
  args = uid={user} gid={group} home={root}/home/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""
    )
    return conf


def write_maildir(root: Path, count: int, sender: str, owner: str, group: str) -> None:
    maildir = root / "home" / "bench@medecin.pli.localhost" / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        data = served_bytes(sample(i), Provenance.E2E, SignatureStatus.VALID, sender, None)
        (maildir / "cur" / f"{1700000000 + i}.bench{i}.localhost,S={len(data)}:2,").write_bytes(
            data
        )
    subprocess.run(["chown", "-R", f"{owner}:{group}", str(root / "home")], check=True)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def client(port: int, ca: Path, user: str, password: str) -> imaplib.IMAP4:
    conn = imaplib.IMAP4("127.0.0.1", port, timeout=300)
    conn.starttls(ssl.create_default_context(cafile=str(ca)))
    conn.login(user, password)
    return conn


def metadata_fetch(port: int, ca: Path, user: str, password: str) -> None:
    conn = client(port, ca, user, password)
    conn.select("INBOX")
    typ, _ = conn.uid("FETCH", "1:*", "(UID FLAGS ENVELOPE)")
    assert typ == "OK"
    conn.logout()


def body_fetch(port: int, ca: Path, user: str, password: str) -> None:
    conn = client(port, ca, user, password)
    conn.select("INBOX", readonly=True)
    typ, _ = conn.uid("FETCH", "1:*", "BODY.PEEK[]")
    assert typ == "OK"
    conn.logout()


def mbsync_rc(root: Path, port: int, ca: Path, user: str, password: str) -> Path:
    maildir = root / "Mail"
    maildir.mkdir(parents=True)
    rc = root / "mbsyncrc"
    rc.write_text(
        f"""IMAPAccount a
Host localhost
Port {port}
User {user}
Pass {password}
SSLType STARTTLS
CertificateFile {ca}
AuthMechs PLAIN
Timeout 300

IMAPStore remote
Account a

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX

Channel c
Far :remote:INBOX
Near :local:INBOX
Create Near
SyncState *
Sync All
"""
    )
    return rc


def mbsync(rc: Path) -> None:
    result = subprocess.run(
        ["mbsync", "-c", str(rc), "-a"], capture_output=True, text=True, timeout=900, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"mbsync failed: {result.stdout}{result.stderr}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--messages", type=int, default=10_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-imap-"))
    os.chmod(work, 0o755)  # noqa: S103 - Dovecot's mail user must reach its Maildir
    home = work / "pli"
    print(f"populating {args.messages} messages …", file=sys.stderr)
    started = time.perf_counter()
    me, password = asyncio.run(populate(home, args.database_url, args.messages))
    print(f"  {time.perf_counter() - started:.1f} s", file=sys.stderr)
    settings = load_settings(home, demo=True)
    files = tls_files(settings)
    ours_port, dovecot_port = free_port(), free_port()
    env = dict(
        os.environ,
        PLI_HOME=str(home),
        PLI_DEMO="true",
        PLI_HTTP_PORT="0",
        PLI_IMAP_PORT=str(ours_port),
        PLI_IMAPS_PORT="0",
        # The SMTP fronts are not measured: ephemeral ports, so that a server already
        # running on this machine does not stop the bench.
        PLI_SMTP_PORT="0",
        PLI_SUBMISSION_PORT="0",
        PLI_SUBMISSIONS_PORT="0",
        PLI_LOG_LEVEL="WARNING",
    )
    if args.database_url:
        env["PLI_DATABASE_URL"] = args.database_url
    ours = subprocess.Popen(
        [sys.executable, "-m", "pli", "serve"], env=env, stdout=subprocess.PIPE, text=True
    )
    dovecot: subprocess.Popen[bytes] | None = None
    rows: list[tuple[str, float, float]] = []
    try:
        assert ours.stdout is not None
        while not ours.stdout.readline().startswith("ready"):
            if ours.poll() is not None:
                raise RuntimeError("pli serve did not start")
        owner, group = "nobody", "nogroup"
        dove_root = work / "dovecot"
        conf = dovecot_config(dove_root, dovecot_port, files.cert, files.key, owner, group)
        sender = str(Address.parse("sender@medecin.pli.localhost"))
        write_maildir(dove_root, args.messages, sender, owner, group)
        dovecot = subprocess.Popen(["/usr/sbin/dovecot", "-F", "-c", str(conf)])
        time.sleep(1.5)
        targets = {
            "ours": (ours_port, str(me), password),
            "dovecot": (dovecot_port, "bench@medecin.pli.localhost", "bench"),
        }
        results: dict[str, dict[str, float]] = {name: {} for name in targets}
        for name, (port, user, secret) in targets.items():
            metadata_fetch(port, files.ca, user, secret)  # warm-up (Dovecot builds its index)
            meta = functools.partial(metadata_fetch, port, files.ca, user, secret)
            bodies = functools.partial(body_fetch, port, files.ca, user, secret)
            results[name]["SELECT + UID FETCH (UID FLAGS ENVELOPE)"] = min(
                timed(meta) for _ in range(2)
            )
            results[name]["UID FETCH 1:* BODY.PEEK[]"] = timed(bodies)
            sync = functools.partial(
                mbsync, mbsync_rc(work / f"mbsync-{name}", port, files.ca, user, secret)
            )
            results[name]["mbsync initial sync"] = timed(sync)
            results[name]["mbsync no-change resync"] = min(timed(sync) for _ in range(3))
        for label in results["ours"]:
            rows.append((label, results["ours"][label], results["dovecot"][label]))
    finally:
        ours.send_signal(signal.SIGTERM)
        ours.wait(60)
        if dovecot is not None:
            dovecot.send_signal(signal.SIGTERM)
            dovecot.wait(60)
    engine = "PostgreSQL" if args.database_url else "SQLite"
    print(f"\n{args.messages} messages, Pli on {engine}, both over STARTTLS on 127.0.0.1\n")
    print("| operation | Pli | Dovecot | ratio |")
    print("|---|---|---|---|")
    for label, pli_time, dovecot_time in rows:
        ratio = pli_time / dovecot_time
        print(f"| {label} | {pli_time:.2f} s | {dovecot_time:.2f} s | {ratio:.1f}× |")
    shutil.rmtree(work, ignore_errors=True)
    return 0


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


if __name__ == "__main__":
    raise SystemExit(main())

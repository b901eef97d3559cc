"""SMTP receiving throughput: Pli's MX beside Postfix + Dovecot LMTP, driven by smtp-source.

Postfix's ``smtp-source`` sends N messages of a given size over 1 or 20 sessions (``-d``:
several messages per connection) to:

- **pli**: ``pli serve``'s MX. Each ``250`` means the message was typed, sealed for its
  recipient (XChaCha20-Poly1305, Ed25519 operator signature) and committed durably
  (SQLite WAL ``synchronous=FULL``, or PostgreSQL with ``--database-url``);
- **postfix+dovecot**: a private Postfix (``tests/support/postfix.py``) delivering over
  LMTP to a private Dovecot (Maildir): the classic pair, measured until the last message is
  in the Maildir (a Postfix ``250`` only means "queued").

Both MXs require STARTTLS and a client certificate from the trust anchor; ``smtp-source``
speaks plain SMTP, so an identical ``stunnel`` (``protocol = smtp``: STARTTLS with our client
certificate) stands in front of each. Its CPU is not counted on either side.

CPU per message is the servers' user + system time (the whole process tree: Postfix's
master and daemons, Dovecot's, or ``pli serve``), divided by the messages delivered.

    python -m bench.bench_smtp [--quick] [--database-url postgresql+asyncpg://…]

Needs Debian's postfix, dovecot-lmtpd and stunnel4 (``scripts/debian-packages``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from messaging import Address, MailboxKind
from pli.settings import load_settings
from pli.wiring import open_pli
from tests.support.postfix import PostfixPeer, free_port, start_postfix
from tests.support.test_ca import Issued, TestCA, make_ca

SENDER = "bench@peer.bench"
PLI_DOMAIN = "pli.bench"
PAIR_DOMAIN = "pair.bench"
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Row:
    target: str
    size_kb: int
    sessions: int
    messages: int
    seconds: float
    cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu_seconds / self.messages


# -- process-tree CPU -----------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, float, float] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    ppid = int(fields[1])
    own = (int(fields[11]) + int(fields[12])) / TICKS
    reaped = (int(fields[13]) + int(fields[14])) / TICKS
    return ppid, own, reaped


def tree_cpu(root: int) -> float:
    """CPU seconds of ``root`` and its descendants, live and reaped."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            found = _stat(int(entry))
            if found is not None:
                parents[int(entry)] = found[0]
                times[int(entry)] = found[1] + found[2]
    total = 0.0
    for pid, value in times.items():
        walk = pid
        while walk > 1:
            if walk == root:
                total += value
                break
            walk = parents.get(walk, 0)
    return total


# -- the peers ------------------------------------------------------------------------------


def start_stunnel(root: Path, name: str, target: int, ca: TestCA, client: Issued) -> int:
    port = free_port()
    config = root / f"stunnel-{name}.conf"
    config.write_text(
        "foreground = yes\ndebug = 3\n"
        f"output = {root / f'stunnel-{name}.log'}\n"
        "[smtp]\nclient = yes\n"
        f"accept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{target}\n"
        "protocol = smtp\nsslVersionMin = TLSv1.2\nverifyChain = yes\n"
        f"CAfile = {ca.cert_path}\ncert = {client.chain}\nkey = {client.key}\n"
    )
    proc = subprocess.Popen(["stunnel", str(config)], stdout=subprocess.DEVNULL)
    _wait_port(port)
    _children.append(proc)
    return port


def start_dovecot(root: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    base = root / "dovecot"
    mail = base / "vmail"
    for path in (base, base / "run", mail):
        path.mkdir(parents=True, exist_ok=True)
    shutil.chown(mail, "dovecot", "dovecot")
    config = base / "dovecot.conf"
    config.write_text(
        f"base_dir = {base / 'run'}\nstate_dir = {base / 'state'}\n"
        f"log_path = {base / 'dovecot.log'}\n"
        "protocols = lmtp\nlisten = 127.0.0.1\nssl = no\n"
        "default_internal_user = dovecot\ndefault_login_user = dovenull\n"
        f"mail_location = maildir:{mail}/%n\n"
        "first_valid_uid = 1\n"
        "service lmtp {\n  inet_listener lmtp {\n"
        f"    address = 127.0.0.1\n    port = {port}\n  }}\n}}\n"
        "service anvil {\n  chroot =\n}\n"
        "passdb {\n  driver = static\n  args = nopassword=y\n}\n"
        "userdb {\n  driver = static\n"
        f"  args = uid=dovecot gid=dovecot home={mail}/%n allow_all_users=yes\n}}\n"
        "protocol lmtp {\n  postmaster_address = postmaster@pair.bench\n}\n"
    )
    proc = subprocess.Popen(["dovecot", "-F", "-c", str(config)])
    _wait_port(port)
    _children.append(proc)
    return proc, port, mail


def start_pli(
    root: Path, ca: TestCA, server: Issued, database_url: str | None
) -> tuple[subprocess.Popen[str], int]:
    home = root / "pli"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLI_")}
    smtp_port = free_port()
    env |= {
        "PLI_HOME": str(home),
        "PLI_HTTP_PORT": "0",
        "PLI_SMTP_PORT": str(smtp_port),
        "PLI_SUBMISSION_PORT": str(free_port()),
        "PLI_SUBMISSIONS_PORT": str(free_port()),
        "PLI_IMAP_PORT": str(free_port()),
        "PLI_TLS_CERT": str(server.chain),
        "PLI_TLS_KEY": str(server.key),
        "PLI_TRUST_ANCHOR": str(ca.cert_path),
        "PLI_RELAY_PEER_DOMAINS": json.dumps(["peer.bench"]),
        "PLI_LOG_LEVEL": "WARNING",
    }
    if database_url:
        env["PLI_DATABASE_URL"] = database_url
    subprocess.run(
        [sys.executable, "-m", "pli", "init", "--domain", PLI_DOMAIN],
        env=env,
        check=True,
        capture_output=True,
    )
    settings = load_settings(home, database_url=database_url)

    async def create() -> None:
        app = await open_pli(settings)
        try:
            await app.accounts.create(
                Address.parse(f"rcpt@{PLI_DOMAIN}"), MailboxKind.PER, "Bench", "bench pass 1234"
            )
        finally:
            await app.close()

    asyncio.run(create())
    proc = subprocess.Popen(
        [sys.executable, "-m", "pli", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("ready"):
            break
    _wait_port(smtp_port)
    _children.append(proc)
    return proc, smtp_port


_children: list[subprocess.Popen[bytes] | subprocess.Popen[str]] = []


def _wait_port(port: int, timeout: float = 60) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


# -- one measurement ------------------------------------------------------------------------


def smtp_source(port: int, recipient: str, sessions: int, count: int, size: int) -> None:
    done = subprocess.run(
        ["smtp-source", "-d", "-s", str(sessions), "-m", str(count), "-l", str(size)]
        + ["-M", "mx.peer.bench", "-f", SENDER, "-t", recipient, f"127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"smtp-source failed: {done.stdout}{done.stderr}")


def maildir_count(mail: Path) -> int:
    return (
        sum(1 for d in ("new", "cur") for _ in (mail / "rcpt" / d).glob("*"))
        if (mail / "rcpt").exists()
        else 0
    )


def measure_pli(
    proc: subprocess.Popen[str], port: int, sessions: int, count: int, size: int
) -> Row:
    cpu0, t0 = tree_cpu(proc.pid), time.perf_counter()
    smtp_source(port, f"rcpt@{PLI_DOMAIN}", sessions, count, size)
    seconds, cpu = time.perf_counter() - t0, tree_cpu(proc.pid) - cpu0
    return Row("pli", size // 1024, sessions, count, seconds, cpu)


def measure_pair(
    postfix: PostfixPeer,
    dovecot: subprocess.Popen[bytes],
    mail: Path,
    port: int,
    sessions: int,
    count: int,
    size: int,
) -> Row:
    master = int((postfix.directory / "queue" / "pid" / "master.pid").read_text().strip())
    before = maildir_count(mail)
    cpu0 = tree_cpu(master) + tree_cpu(dovecot.pid)
    t0 = time.perf_counter()
    smtp_source(port, f"rcpt@{PAIR_DOMAIN}", sessions, count, size)
    while maildir_count(mail) < before + count:
        time.sleep(0.005)
    seconds = time.perf_counter() - t0
    cpu = tree_cpu(master) + tree_cpu(dovecot.pid) - cpu0
    return Row("postfix+dovecot", size // 1024, sessions, count, seconds, cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages")
    parser.add_argument("--database-url", help="PostgreSQL for pli (default SQLite)")
    args = parser.parse_args()
    plan = [(5 * 1024, 1), (5 * 1024, 20), (200 * 1024, 1), (200 * 1024, 20)]
    counts = {5 * 1024: 60 if args.quick else 400, 200 * 1024: 20 if args.quick else 100}

    root = Path(tempfile.mkdtemp(prefix="pli-bench-smtp-"))
    root.chmod(0o755)
    postfix = None
    try:
        ca = make_ca(root / "ca")
        for path in (root / "ca").iterdir():
            path.chmod(0o644)
        (root / "ca").chmod(0o755)
        client = ca.issue("mx.peer.bench", file_stem="peer-client")
        server = ca.issue(f"mx.{PLI_DOMAIN}", dns_names=("127.0.0.1",), file_stem="pli-server")
        dovecot, lmtp_port, mail = start_dovecot(root)
        postfix = start_postfix(
            ca,
            domain=PAIR_DOMAIN,
            mailboxes=("rcpt",),
            extra_main={
                "virtual_transport": f"lmtp:inet:127.0.0.1:{lmtp_port}",
                "smtpd_client_connection_count_limit": "100",
                "default_process_limit": "100",
            },
        )
        pli, mx_port = start_pli(root, ca, server, args.database_url)
        to_pli = start_stunnel(root, "pli", mx_port, ca, client)
        to_pair = start_stunnel(root, "pair", postfix.port, ca, client)

        # Warm-up: the first connections pay for process start-up on both sides.
        smtp_source(to_pli, f"rcpt@{PLI_DOMAIN}", 2, 10, 5 * 1024)
        smtp_source(to_pair, f"rcpt@{PAIR_DOMAIN}", 2, 10, 5 * 1024)
        while maildir_count(mail) < 10:
            time.sleep(0.01)

        rows: list[tuple[Row, Row]] = []
        for size, sessions in plan:
            count = counts[size]
            ours = measure_pli(pli, to_pli, sessions, count, size)
            theirs = measure_pair(postfix, dovecot, mail, to_pair, sessions, count, size)
            rows.append((ours, theirs))
            print(
                f"  {size // 1024} KB × {sessions}: pli {ours.rate:.1f}/s, "
                f"postfix+dovecot {theirs.rate:.1f}/s",
                file=sys.stderr,
            )
        delivered = count_pli(root, args.database_url)
        expected = 10 + sum(ours.messages for ours, _ in rows)
        if delivered != expected:
            raise RuntimeError(f"pli stored {delivered} messages, {expected} were sent")
        print_table(rows, args.database_url)
    finally:
        for child in reversed(_children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
                try:
                    child.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    child.kill()
        if postfix is not None:
            postfix.close()
        shutil.rmtree(root, ignore_errors=True)


def count_pli(root: Path, database_url: str | None) -> int:
    """Messages in the bench mailbox: every 250 must be a stored message."""
    settings = load_settings(root / "pli", database_url=database_url)

    async def count() -> int:
        app = await open_pli(settings)
        try:
            inbox = await app.delivery.list_messages(Address.parse(f"rcpt@{PLI_DOMAIN}"), "INBOX")
            return len(inbox)
        finally:
            await app.close()

    return asyncio.run(count())


def print_table(rows: list[tuple[Row, Row]], database_url: str | None) -> None:
    engine = "PostgreSQL" if database_url else "SQLite"
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs"
    print(f"Machine: {machine}, Python {platform.python_version()}; pli on {engine}")
    print()
    print(
        "| size | sessions | messages | pli msg/s | pli CPU ms/msg | postfix+dovecot msg/s "
        "| postfix+dovecot CPU ms/msg | ratio pli / pair (msg/s) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for ours, theirs in rows:
        print(
            f"| {ours.size_kb} KB | {ours.sessions} | {ours.messages} | {ours.rate:.1f} "
            f"| {ours.cpu_ms:.2f} | {theirs.rate:.1f} | {theirs.cpu_ms:.2f} "
            f"| {ours.rate / theirs.rate:.2f}× |"
        )


if __name__ == "__main__":
    main()

"""A private Postfix instance: a second operator of the trust space, for the SMTP tests.

Installs nothing (``scripts/debian-packages`` lists Debian's ``postfix``) and never touches
the system's default instance or systemd: everything lives under a test's temporary
directory — its ``main.cf``/``master.cf``, queue, data directory, log file and mail — and it
is started and stopped with ``postfix -c <dir>``. It listens on 127.0.0.1 only, on free
ports chosen at start:

- ``port``: its MX, TLS required (``smtpd_tls_security_level = encrypt``), asking for and
  verifying a client certificate (``smtpd_tls_req_ccert``) against the test CA; mail for
  its domain is accepted for the mailboxes given, refused ``550 5.1.1`` for any other
  (``rejected`` is one such address) and delivered to a Maildir per mailbox that the test
  reads with :meth:`PostfixPeer.messages`;
- ``inject_port``: a plain listener for the test itself, from which Postfix relays onward
  over mutual TLS as a client (:meth:`PostfixPeer.route`) — into our MX, for the inbound
  tests.

Its certificate (``mx.<domain>``, with ``127.0.0.1`` as an IP SAN) comes from
:mod:`tests.support.test_ca`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.test_ca import Issued, TestCA

__all__ = ["PostfixPeer", "free_port", "start_postfix"]

_POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_MASTER_CF = """\
{port}      inet  n       -       n       -       -       smtpd
{inject_port}      inet  n       -       n       -       -       smtpd
  -o smtpd_tls_security_level=none
  -o smtpd_tls_ask_ccert=no
  -o smtpd_tls_req_ccert=no
  -o smtpd_recipient_restrictions=permit_mynetworks,reject
  -o smtpd_relay_restrictions=permit_mynetworks,reject
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       1       1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


@dataclass
class PostfixPeer:
    """A running private Postfix; see the module docstring."""

    directory: Path
    domain: str
    mailboxes: tuple[str, ...]
    ca_file: Path
    cert: Issued
    port: int = field(default_factory=free_port)
    inject_port: int = field(default_factory=free_port)
    routes: dict[str, tuple[str, int]] = field(default_factory=dict)
    extra_main: dict[str, str] = field(default_factory=dict)
    """``main.cf`` parameters added or overridden (the benchmark's LMTP transport)."""
    running: bool = False

    @property
    def config_dir(self) -> Path:
        return self.directory / "etc"

    @property
    def mail_dir(self) -> Path:
        return self.directory / "mail"

    @property
    def log_file(self) -> Path:
        return self.directory / "postfix.log"

    @property
    def rejected(self) -> str:
        """An address of the peer's domain that it refuses at RCPT (``550 5.1.1``)."""
        return f"nobody-here@{self.domain}"

    def address(self, mailbox: str) -> str:
        return f"{mailbox}@{self.domain}"

    def _write_config(self) -> None:
        postfix_uid = _uid("postfix")
        etc, queue, data = self.config_dir, self.directory / "queue", self.directory / "data"
        for path in (etc, queue, data, self.mail_dir):
            path.mkdir(parents=True, exist_ok=True)
        os.chown(data, postfix_uid, -1)
        os.chown(self.mail_dir, postfix_uid, -1)
        self.directory.chmod(0o755)
        mailbox_map = etc / "mailboxes"
        mailbox_map.write_text(
            "".join(f"{self.address(m)} {self.domain}/{m}/\n" for m in self.mailboxes)
        )
        transport = etc / "transport"
        transport.write_text(
            "".join(
                f"{domain} smtp:[{host}]:{port}\n" for domain, (host, port) in self.routes.items()
            )
        )
        main = {
            "compatibility_level": "3.6",
            "queue_directory": str(queue),
            "data_directory": str(data),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": f"mx.{self.domain}",
            "mydomain": self.domain,
            "myorigin": self.domain,
            "mydestination": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "maillog_file": str(self.log_file),
            "maillog_file_prefixes": str(self.directory),
            "smtputf8_enable": "no",
            "biff": "no",
            "append_dot_mydomain": "no",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "relay_domains": "",
            "disable_dns_lookups": "yes",
            "smtp_dns_support_level": "disabled",
            "virtual_mailbox_domains": self.domain,
            "virtual_mailbox_base": str(self.mail_dir),
            "virtual_mailbox_maps": f"texthash:{mailbox_map}",
            "virtual_uid_maps": f"static:{postfix_uid}",
            "virtual_gid_maps": f"static:{_gid('postfix')}",
            "transport_maps": f"texthash:{transport}",
            "smtpd_recipient_restrictions": "reject_unauth_destination",
            "smtpd_relay_restrictions": "reject_unauth_destination",
            # The MX side: TLS required, the client's certificate asked for and verified.
            "smtpd_tls_security_level": "encrypt",
            "smtpd_tls_chain_files": f"{self.cert.key}, {self.cert.chain}",
            "smtpd_tls_CAfile": str(self.ca_file),
            "smtpd_tls_ask_ccert": "yes",
            "smtpd_tls_req_ccert": "yes",
            "smtpd_tls_mandatory_protocols": ">=TLSv1.2",
            "smtpd_tls_protocols": ">=TLSv1.2",
            "smtpd_tls_loglevel": "1",
            # The client side: verify the next hop against the test CA, present our cert.
            "smtp_tls_security_level": "verify",
            "smtp_tls_CAfile": str(self.ca_file),
            "smtp_tls_chain_files": f"{self.cert.key}, {self.cert.chain}",
            "smtp_tls_mandatory_protocols": ">=TLSv1.2",
            "smtp_tls_verify_cert_match": "nexthop, hostname, 127.0.0.1",
            "smtp_tls_loglevel": "1",
            # Quick retries, so that tests of Postfix as a client do not wait for minutes.
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "smtp_connect_timeout": "5s",
        }
        main.update(self.extra_main)
        (etc / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main.items()))
        (etc / "master.cf").write_text(
            _MASTER_CF.format(
                port=f"127.0.0.1:{self.port}", inject_port=f"127.0.0.1:{self.inject_port}"
            )
        )

    def _postfix(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [_POSTFIX, "-c", str(self.config_dir), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def start(self) -> None:
        self._write_config()
        done = self._postfix("start")
        if done.returncode != 0:
            raise RuntimeError(f"postfix start failed: {done.stdout}{done.stderr}{self.log()}")
        self.running = True
        _wait_listening(self.port)
        _wait_listening(self.inject_port)

    def stop(self) -> None:
        if not self.running:
            return
        self._postfix("stop")
        self.running = False
        deadline = time.monotonic() + 20
        pid_file = self.directory / "queue" / "pid" / "master.pid"
        while pid_file.exists() and time.monotonic() < deadline:
            try:
                os.kill(int(pid_file.read_text().strip()), 0)
            except (ProcessLookupError, ValueError):
                break
            time.sleep(0.05)

    def close(self) -> None:
        """Stop the instance and remove its directory."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def route(self, domain: str, host: str, port: int) -> None:
        """Relay mail for ``domain`` to ``host:port`` (applied at the next start/reload)."""
        self.routes[domain] = (host, port)
        if self.running:
            self._write_config()
            self._postfix("reload")

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def wait_for_log(self, text: str, timeout: float = 15.0) -> str:
        """The log once it holds ``text``: Postfix's log daemon writes it asynchronously."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log()
            if text in log:
                return log
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not in Postfix's log:\n{self.log()[-4000:]}")

    def messages(self, mailbox: str) -> list[bytes]:
        """What the mailbox received, oldest first."""
        new = self.mail_dir / self.domain / mailbox / "new"
        if not new.is_dir():
            return []
        files = sorted(new.iterdir(), key=lambda p: (p.stat().st_mtime_ns, p.name))
        return [p.read_bytes() for p in files]

    def wait_for(self, mailbox: str, count: int, timeout: float = 30.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.messages(mailbox)
            if len(got) >= count:
                return got
            time.sleep(0.1)
        raise AssertionError(
            f"{mailbox} got {len(self.messages(mailbox))} of {count} messages\n{self.log()[-4000:]}"
        )

    def queue_is_empty(self) -> bool:
        queue = self.directory / "queue"
        return not any(
            any((queue / part).rglob("*")) for part in ("incoming", "active", "deferred")
        )


def start_postfix(
    ca: TestCA,
    *,
    domain: str = "ch-peer.test",
    mailboxes: tuple[str, ...] = ("bob",),
    extra_main: dict[str, str] | None = None,
) -> PostfixPeer:
    """Issue the peer's certificate and start it; the caller calls :meth:`close`.

    Its directory is made under the system's temporary directory, not pytest's (whose
    mode 0700 Postfix's unprivileged processes could not traverse); ``close`` removes it.
    """
    directory = Path(tempfile.mkdtemp(prefix="pli-postfix-"))
    directory.chmod(0o755)
    issued = ca.issue(
        f"mx.{domain}", dns_names=("127.0.0.1", "localhost"), file_stem=f"postfix-{domain}"
    )
    tls = directory / "tls"
    tls.mkdir()
    tls.chmod(0o755)
    ca_copy = tls / "ca.pem"
    shutil.copyfile(ca.cert_path, ca_copy)
    cert = Issued(
        cert=Path(shutil.copyfile(issued.cert, tls / "cert.pem")),
        key=Path(shutil.copyfile(issued.key, tls / "key.pem")),
        serial=issued.serial,
        chain=Path(shutil.copyfile(issued.chain, tls / "chain.pem")),
    )
    for path in (ca_copy, cert.cert, cert.chain):
        path.chmod(0o644)
    cert.key.chmod(0o600)
    peer = PostfixPeer(
        directory=directory,
        domain=domain,
        mailboxes=mailboxes,
        ca_file=ca_copy,
        cert=cert,
        extra_main=dict(extra_main or {}),
    )
    try:
        peer.start()
    except BaseException:
        peer.close()
        raise
    return peer


def _wait_listening(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def _uid(name: str) -> int:
    import pwd

    return pwd.getpwnam(name).pw_uid


def _gid(name: str) -> int:
    import grp

    return grp.getgrnam(name).gr_gid

"""`pli serve` starts the IMAP gateway: a message sent with the `pli` command is read by
imaplib over STARTTLS and over implicit TLS, with an app password made by the `pli`
command and the local authority `pli init` made, on both engines."""

from __future__ import annotations

import imaplib
import re
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.gateway_imap.conftest import literals
from tests.support.cli import Pli

DOCTOR = "jean.dupont@medecin.pli.test"
COLLEAGUE = "anne.roy@medecin.pli.test"


@pytest.fixture
def pli(tmp_path: Path, database_url: str) -> Pli:
    instance = Pli(home=tmp_path / "home", database_url=database_url)
    instance.run("init", "--demo", "--domain", "pli.test")
    return instance


def test_pli_serve_answers_imap_on_both_ports(pli: Pli) -> None:
    for address, secret in ((DOCTOR, "doctor secret"), (COLLEAGUE, "colleague secret")):
        pli.run("account", "create", address, "--kind", "PER", stdin=f"{secret}\n")
    made = pli.run(
        "account",
        "app-password",
        DOCTOR,
        "create",
        "--label",
        "imaplib",
        stdin="doctor secret\n",
    ).stdout
    [password] = re.findall(r"^\s+(\S{4}-\S{4}-\S{4}-\S{4})$", made, re.MULTILINE)
    pli.run(
        "send",
        "--from",
        COLLEAGUE,
        "--to",
        DOCTOR,
        "--subject",
        "Avis",
        "--body",
        "Bonjour",
        stdin="colleague secret\n",
    )
    env = pli.env() | {
        "PLI_HTTP_PORT": "0",
        "PLI_IMAP_PORT": "0",
        "PLI_IMAPS_PORT": "0",
        "PLI_SMTP_PORT": "0",  # not under test: never collide with a server already running
        "PLI_SUBMISSION_PORT": "0",
        "PLI_SUBMISSIONS_PORT": "0",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "pli", "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        fronts: dict[str, str] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line or line.startswith("ready"):
                break
            name, where = line.split(maxsplit=1)  # "relay  outbound queue, 0 static routes"
            fronts[name] = where
        context = ssl.create_default_context(cafile=str(pli.home / "tls" / "ca.pem"))
        starttls_port = int(fronts["imap"].rsplit(":", 1)[1])
        implicit_port = int(fronts["imaps"].rsplit(":", 1)[1])
        plain = imaplib.IMAP4("localhost", starttls_port, timeout=30)
        plain.starttls(context)
        secure = imaplib.IMAP4_SSL("localhost", implicit_port, ssl_context=context, timeout=30)
        for client in (plain, secure):
            client.login(DOCTOR, password)
            typ, selected = client.select("INBOX")
            assert typ == "OK" and selected == [b"1"]
            typ, data = client.fetch("1", "(RFC822.SIZE BODY.PEEK[])")
            [(head, body)] = literals(data)
            assert b"Subject: Avis" in body
            assert body.startswith(
                b"X-Pli-Provenance: e2e; signature=valid; sender=" + COLLEAGUE.encode()
            )
            assert f"RFC822.SIZE {len(body)}".encode() in head
            client.logout()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0

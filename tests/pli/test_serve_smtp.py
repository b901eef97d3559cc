"""``pli serve`` starts the SMTP fronts: a mail client submits with an app password made by
the command line, over 587 (STARTTLS) and 465 (TLS), trusting the instance's local CA."""

from __future__ import annotations

import signal
import smtplib
import ssl

from tests.pli.test_serve import start
from tests.support.cli import Pli

DOCTOR = "sophie.martin@medecin.pli.test"
NURSE = "paul.durand@medecin.pli.test"


def test_serve_starts_mx_and_submission_and_a_client_submits(pli: Pli):
    for address in (DOCTOR, NURSE):
        pli.run("account", "create", address, stdin=f"secret of {address}\n")
    made = pli.run(
        "account",
        "app-password",
        DOCTOR,
        "create",
        "--label",
        "mutt",
        stdin=f"secret of {DOCTOR}\n",
    ).stdout
    password = [line.strip() for line in made.splitlines() if line.startswith("  ")][-1]
    proc, fronts = start(pli)
    try:
        assert set(fronts) >= {"http", "mx", "submission", "submissions"}
        context = ssl.create_default_context(cafile=str(pli.home / "tls" / "ca.pem"))
        for name in ("submission", "submissions"):
            host, port = fronts[name].split("://")[1].rsplit(":", 1)
            if name == "submission":
                client = smtplib.SMTP(host, int(port), timeout=30)
                client.starttls(context=context)
            else:
                client = smtplib.SMTP_SSL(host, int(port), context=context, timeout=30)
            with client:
                client.login(DOCTOR, password)
                message = f"From: {DOCTOR}\r\nTo: {NURSE}\r\nSubject: via {name}\r\n\r\nbonjour\r\n"
                assert client.sendmail(DOCTOR, [NURSE], message) == {}
        host, port = fronts["mx"].split("://")[1].rsplit(":", 1)
        with smtplib.SMTP(host, int(port), timeout=30) as mx:
            mx.ehlo()
            assert mx.has_extn("starttls")
            assert mx.docmd(f"MAIL FROM:<{DOCTOR}>") == (
                530,
                b"5.7.0 Must issue a STARTTLS command first",
            )
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    listing = pli.run("list", NURSE, stdin=f"secret of {NURSE}\n").stdout
    assert "via submission" in listing and "via submissions" in listing

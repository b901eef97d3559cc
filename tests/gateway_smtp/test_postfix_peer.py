"""The Postfix fixture itself, in both roles: an MX requiring client certificates, and a
client relaying onward over mutual TLS (what the inbound MX tests use it for)."""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest

from tests.support.postfix import start_postfix
from tests.support.test_ca import make_ca

pytestmark = pytest.mark.timeout(120)


def test_one_postfix_relays_to_another_over_mutual_tls(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "ca")
    destination = start_postfix(ca, domain="dest.test", mailboxes=("bob",))
    source = start_postfix(ca, domain="source.test", mailboxes=("alice",))
    try:
        source.route("dest.test", "127.0.0.1", destination.port)
        with smtplib.SMTP("127.0.0.1", source.inject_port, timeout=10) as client:
            client.sendmail(
                "alice@source.test",
                ["bob@dest.test"],
                b"From: alice@source.test\r\nMessage-ID: <relayed@source.test>\r\n\r\nhi\r\n",
            )
        [received] = destination.wait_for("bob", 1)
        assert b"<relayed@source.test>" in received
        # The destination verified the source's certificate, and the source the destination's.
        destination.wait_for_log("Trusted TLS connection established from")
        source.wait_for_log("Verified TLS connection established to")
        # Postfix refuses a client without a certificate (the session is aborted)…
        with smtplib.SMTP("127.0.0.1", destination.port, timeout=10) as anonymous:
            anonymous.starttls(context=ca.client_context())
            try:
                code, _ = anonymous.mail("x@source.test")
            except smtplib.SMTPServerDisconnected:
                code = 421
            assert code >= 400
        destination.wait_for_log("No client certificate presented")
        # … and anything before STARTTLS.
        with smtplib.SMTP("127.0.0.1", destination.port, timeout=10) as plain:
            code, _ = plain.mail("x@source.test")
            assert code == 530  # TLS first
    finally:
        source.close()
        destination.close()
    assert not destination.directory.exists()

"""A first conversation with imaplib over STARTTLS and implicit TLS."""

from __future__ import annotations

import asyncio
import imaplib

from tests.gateway_imap.conftest import Gateway, literals, message


async def test_login_select_fetch_over_starttls_and_993(gateway: Gateway) -> None:
    alice, password = await gateway.person("alice")
    bob, _ = await gateway.person("bob")
    await gateway.send(bob, alice, message("First"))
    await gateway.receive(alice, message("Second"))

    def talk(implicit: bool) -> None:
        client = gateway.imap(alice, password, implicit=implicit)
        typ, data = client.select("INBOX")
        assert typ == "OK" and data == [b"2"]
        typ, data = client.uid("FETCH", "1:*", "(FLAGS RFC822.SIZE BODY.PEEK[])")
        assert typ == "OK"
        bodies = literals(data)
        assert len(bodies) == 2
        for head, body in bodies:
            size = int(head.split(b"RFC822.SIZE ")[1].split(b" ")[0])
            assert size == len(body)
            assert body.startswith(b"X-Pli-Provenance: ")
        assert b"e2e; signature=valid; sender=bob@" in bodies[0][1]
        assert b"gateway; signature=valid; sender=someone@ch-x.fr; peer=mx.ch-x.fr" in bodies[1][1]
        client.logout()

    await asyncio.to_thread(talk, False)
    await asyncio.to_thread(talk, True)


async def test_login_refused_before_tls(gateway: Gateway) -> None:
    alice, password = await gateway.person("alice")

    def talk() -> None:
        client = imaplib.IMAP4("127.0.0.1", gateway.port, timeout=10)
        assert "LOGINDISABLED" in client.capabilities
        assert "STARTTLS" in client.capabilities
        try:
            client.login(str(alice), password)
        except imaplib.IMAP4.error as exc:
            assert "PRIVACYREQUIRED" in str(exc)
        else:
            raise AssertionError("LOGIN before TLS succeeded")
        client.logout()

    await asyncio.to_thread(talk)

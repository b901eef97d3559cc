"""STARTTLS under concurrency: every upgrade completes its handshake (RFC 9051 §6.2.1).

A server that read the client's TLS hello as plaintext (or dropped it) would leave the
handshake waiting until the login timeout; four synchronous clients upgrading 100 sessions
each, at once, must all reach CAPABILITY under TLS.
"""

from __future__ import annotations

import asyncio
import imaplib

from tests.gateway_imap.conftest import Gateway


async def test_four_hundred_concurrent_starttls_upgrades_all_complete(gateway: Gateway) -> None:
    def sessions(count: int) -> int:
        upgraded = 0
        for _ in range(count):
            client = imaplib.IMAP4("127.0.0.1", gateway.port, timeout=15)
            try:
                client.starttls(gateway.client_context())
                typ, data = client.capability()
                assert typ == "OK"
                assert b"STARTTLS" not in data[0] and b"LOGINDISABLED" not in data[0]
                upgraded += 1
            finally:
                client.logout()
        return upgraded

    done = await asyncio.gather(*(asyncio.to_thread(sessions, 100) for _ in range(4)))
    assert done == [100, 100, 100, 100]
